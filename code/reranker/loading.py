"""Open an unpacked model directory safely and build the backend that will run it.

Backends are picked through :data:`BACKENDS`, a registry of factories keyed by the
RERANK_BACKEND name; a new runtime is one entry here and one module under backends/.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

from . import cpu
from . import model_dir as model_facts
from .backends import choice
from .backends.base import WHAT_A_RERANKER_IS, Backend, ModelLoadError
from .profiles import Profile
from .settings import Settings

__all__ = ["BACKENDS", "ModelLoadError", "choose_backend", "inspect_model_dir", "load_backend",
           "plan"]


def inspect_model_dir(model_dir: str) -> model_facts.ModelDir:
    """The directory's facts, refused unless the engine can tokenize for it."""
    facts = model_facts.read(model_dir)
    if not facts.tokenizer_json:
        raise ModelLoadError(
            f"{model_dir!r} has no tokenizer.json: the engine needs a fast tokenizer"
            " (package the model with `make package`, which writes one)"
        )
    return facts


def check_architecture(facts: model_facts.ModelDir) -> None:
    """A cross-encoder's config.json names a *ForSequenceClassification architecture; a bare
    encoder (BertModel, XLMRobertaModel: bi-encoders such as bge-m3) has no head to score
    with, whichever runtime would run it (the torch load also checks its weights)."""
    architectures = facts.config.get("architectures") or []
    if architectures and not str(architectures[0]).endswith("ForSequenceClassification"):
        raise ModelLoadError(
            f"{facts.path!r} is a {architectures[0]} (config.json's architectures): it has no"
            f" trained classification head to score pairs with. {WHAT_A_RERANKER_IS}")


def choose_backend(facts: model_facts.ModelDir, settings: Settings, cuda: bool,
                   cpu_facts: cpu.CpuFacts | None = None) -> str:
    """The runtime that serves: RERANK_BACKEND, or for "auto" see :func:`plan`."""
    return plan(facts, settings, cuda, cpu_facts).backend


def plan(facts: model_facts.ModelDir, settings: Settings, cuda: bool,
         cpu_facts: cpu.CpuFacts | None = None) -> Settings:
    """``settings`` with the runtime and dtype decided.

    On CUDA, torch.  On CPU, RERANK_BACKEND=auto takes the measured fastest runtime for
    this CPU kind and RERANK_PRECISION (reranker.backends.choice; ``cpu_facts`` defaults to
    RERANK_CPU_FEATURES or this machine), except that a directory with only an int8 graph
    runs the graph it has.  A CPU dtype left at auto is fp32 for exact, bf16 for fast where
    the CPU has bf16 arithmetic."""
    if settings.device == "cuda" or (cuda and settings.device != "cpu"):
        return _plan_gpu(settings)
    name, dtype = _plan_cpu(facts, settings, cpu_facts or cpu.facts(settings.cpu_features))
    if name == "onnx" and settings.onnx_runtime == "openvino":
        name = "openvino"  # the older spelling of RERANK_BACKEND=openvino
    return dataclasses.replace(settings, backend=name, dtype=dtype)


def _plan_gpu(settings: Settings) -> Settings:
    name = "torch" if settings.backend == "auto" else settings.backend
    exact = settings.dtype == "auto" and settings.precision == "exact"
    return dataclasses.replace(settings, backend=name,
                               dtype="float32" if exact else settings.dtype)


def _plan_cpu(facts: model_facts.ModelDir, settings: Settings,
              cpu_facts: cpu.CpuFacts) -> tuple[str, str]:
    name, dtype = settings.backend, settings.dtype
    if dtype == "float16":
        raise ModelLoadError("RERANK_DTYPE=float16 is for GPUs; on CPU use float32 or bfloat16")
    # An explicit bf16 reads as the fast precision.
    fast = settings.precision == "fast" or dtype == "bfloat16"
    if name == "auto" and facts.onnx and model_facts.ONNX_FILES["fp32"] not in facts.onnx:
        name = "onnx"  # only an int8 (or custom) graph: it was asked for by packaging it
    elif name == "auto":
        option = choice.cpu_option(facts, "fast" if fast else "exact", cpu_facts)
        name, dtype = option.backend, dtype if dtype != "auto" else option.dtype
    if dtype == "auto":
        dtype = "bfloat16" if fast and cpu_facts.bf16 else "float32"
    return name, dtype


def _weights_allowed(facts: model_facts.ModelDir, settings: Settings) -> None:
    if not facts.safetensors:
        if not facts.pickle:
            raise ModelLoadError(f"{facts.path!r} has no weights (model.safetensors)")
        if not settings.allow_pickle:
            raise ModelLoadError(
                f"{facts.path!r} has only pickle weights (pytorch_model.bin); convert them to"
                " safetensors (`make package` does) or set RERANK_ALLOW_PICKLE=true to load"
                " them weights-only"
            )


def _torch(facts: model_facts.ModelDir, settings: Settings) -> Backend:
    _weights_allowed(facts, settings)
    from .backends.torch_backend import TorchBackend

    return TorchBackend(
        facts.path,
        device=settings.device,
        dtype=settings.dtype,
        trust_remote_code=settings.trust_remote_code,
        use_safetensors=facts.safetensors,
        threads=settings.threads,
    )


def _needs_onnx(facts: model_facts.ModelDir, settings: Settings) -> None:
    if not facts.onnx:
        raise ModelLoadError(f"RERANK_BACKEND={settings.backend} but"
                             f" {facts.path!r}/onnx has no .onnx file")


def _onnx(facts: model_facts.ModelDir, settings: Settings) -> Backend:
    _needs_onnx(facts, settings)
    if settings.onnx_runtime != "onnxruntime":
        raise ModelLoadError(f"RERANK_ONNX_RUNTIME={settings.onnx_runtime!r}: use onnxruntime"
                             " or openvino")
    from .backends.onnx_backend import OnnxBackend

    return OnnxBackend(facts.path, settings=settings)


def _openvino(facts: model_facts.ModelDir, settings: Settings) -> Backend:
    _needs_onnx(facts, settings)
    from .backends.openvino_backend import OpenVinoBackend

    return OpenVinoBackend(facts.path, settings=settings)


BACKENDS: dict[str, Callable[[model_facts.ModelDir, Settings], Backend]] = {
    "torch": _torch,
    "onnx": _onnx,
    "openvino": _openvino,
}


def _causal(facts: model_facts.ModelDir, settings: Settings, judged: list[int],
            head: str = "causal") -> Backend:
    _weights_allowed(facts, settings)
    from .backends.causal_backend import CausalBackend

    return CausalBackend(facts.path, judged, device=settings.device, dtype=settings.dtype,
                         trust_remote_code=settings.trust_remote_code,
                         use_safetensors=facts.safetensors, threads=settings.threads,
                         compiled=settings.compile, head=head)


def load_backend(model_dir: str, settings: Settings, profile: Profile | None = None,
                 judged: list[int] | None = None) -> Backend:
    """The runtime for the directory; an LLM reranker's ``profile`` says which head (the
    causal one needs the ``judged`` token ids; a converted one-label head does not)."""
    facts = inspect_model_dir(model_dir)
    import torch

    cuda = torch.cuda.is_available()
    if profile is not None:
        if settings.backend not in ("auto", "torch"):
            raise ModelLoadError(f"RERANK_BACKEND={settings.backend}: LLM rerankers"
                                 f" ({profile.name}) run on the torch backend only")
        settings = plan(facts, dataclasses.replace(settings, backend="torch"), cuda)
        return _causal(facts, settings, judged or [], profile.head)
    if settings.compile:
        raise ModelLoadError("RERANK_COMPILE=true applies to LLM rerankers; this model is a"
                             " cross-encoder, whose fastest runtime is chosen without it:"
                             " unset RERANK_COMPILE")
    check_architecture(facts)
    settings = plan(facts, settings, cuda)
    name = settings.backend
    if name not in BACKENDS:
        raise ModelLoadError(f"RERANK_BACKEND={name!r}: use auto or one of {sorted(BACKENDS)}")
    return BACKENDS[name](facts, settings)
