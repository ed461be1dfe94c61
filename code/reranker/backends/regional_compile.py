"""RERANK_COMPILE: ``torch.compile`` of an LLM reranker's cache-free modules.

In bf16 on CPU a decoder layer spends as much time around its matrix multiplies as in them:
RMSNorm's casts, powers and products, SiLU and the gate's product each run as their own
kernel over the whole activation.  Inductor fuses them.  What is compiled matters:

- the whole decoder recompiles for the prefix pass, for one-row batches and per cache
  state (75 s before the first request, more on later shapes);
- whole decoder layers each guard on their own cache layer and exhaust the recompile limit;
- each layer's MLP and RMSNorms touch no cache: they compile once, with dynamic shapes, into
  six graphs that every layer shares (rows = 1 or more; 3-d or per-head 4-d for the norms).

Measured (Qwen3-Reranker-0.6B shape, Intel Xeon with AMX, 2 cores, docs/models.md): bf16,
28 layers, +15% / +11% / +23% pairs/s at 10 / 25 / 100 documents; fp32 +0-2% (28 layers)
to +3-10% (8 layers), with scores within 1.8e-6 of the eager model.  The engine's warm-up
scores two documents so that both row shapes compile at load time, never on a user's request.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import sysconfig
from pathlib import Path

import torch

from .base import ModelLoadError


def compile_cache_free(model: torch.nn.Module, device_type: str) -> int:
    """Compiles ``model``'s MLPs and RMSNorms in place; returns how many modules.  Refuses
    (ModelLoadError) where Inductor cannot build kernels or the model has no such module."""
    problem = missing_toolchain(device_type)
    if problem:
        raise ModelLoadError(f"RERANK_COMPILE=true: {problem}; install it (our serving"
                             " image: build it with COMPILER=true) or unset RERANK_COMPILE")
    modules = cache_free_modules(model)
    if not modules:
        raise ModelLoadError("RERANK_COMPILE=true: this model has no decoder MLP or RMSNorm to"
                             " compile (it applies to LLM rerankers); unset RERANK_COMPILE")
    for module in modules:
        module.compile(dynamic=True)
    return len(modules)


def cache_free_modules(model: torch.nn.Module) -> list[torch.nn.Module]:
    """Each decoder layer's ``mlp`` and every ``*RMSNorm`` (Qwen3, Qwen2, Gemma)."""
    return [module for name, module in model.named_modules()
            if name.rsplit(".", 1)[-1] == "mlp" or type(module).__name__.endswith("RMSNorm")]


def missing_toolchain(device_type: str, python_include: str | None = None) -> str | None:
    """What Inductor lacks to build kernels here, None when nothing is missing.

    On CPU it compiles C++ ($CXX, else g++); on CUDA, Triton compiles its launcher in C ($CC,
    else gcc or clang).  Both build Python extensions, so they need Python's headers."""
    if device_type == "cuda":
        if importlib.util.find_spec("triton") is None:
            return "Triton is not installed"
        kind, compiler = "C", os.environ.get("CC") or _first_on_path("gcc", "clang")
    else:
        kind, compiler = "C++", os.environ.get("CXX") or "g++"
    if not shutil.which(compiler):
        return f"no {kind} compiler ({compiler}) on PATH"
    headers = Path(python_include or sysconfig.get_path("include"))
    if not (headers / "Python.h").is_file():
        return f"no Python headers ({headers / 'Python.h'}; Debian: python3-dev)"
    return None


def _first_on_path(*names: str) -> str:
    return next((name for name in names if shutil.which(name)), names[0])
