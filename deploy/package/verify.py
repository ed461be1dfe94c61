"""Verifying a staged model: a cross-encoder that loads with our engine and scores a pair.

An archive that was written is known to serve; with ONNX, the export is checked against
torch and loaded once more through the engine's ONNX backend.
"""

from __future__ import annotations

import math
from pathlib import Path

from deploy.errors import UserError, first_line
from deploy.package import model_kind
from reranker import model_dir as model_facts

ONNX_TOLERANCE = {"fp32": 1e-4, "int8": 5e-2}
PROBE = ("what does a reranker do?", "A cross-encoder scores a query and a document together.")


def check_cross_encoder(staging: Path) -> dict:
    """A sequence-classification model with 1 or 2 labels, an LLM reranker (the engine's
    verify decides whether its family is supported), or a clear refusal."""
    config = model_kind.read_config(staging)
    if model_kind.is_llm(config):
        return config
    architectures = config.get("architectures") or []
    if architectures and not any(a.endswith("ForSequenceClassification") for a in architectures):
        raise UserError(f"not a cross-encoder: config.json names {', '.join(architectures)};"
                        " a reranker is a *ForSequenceClassification model or an LLM"
                        " reranker (*ForCausalLM of a supported family)")
    labels = model_facts.num_labels(config)
    if labels not in (1, 2):
        raise UserError(f"not a cross-encoder: the model has {labels} output labels (a"
                        " reranker has 1, or 2 for some ms-marco models)")
    return config


def verify(model_dir: Path, backend: str = "torch") -> dict:
    """Load with our engine and score one pair: the archive is known to serve.  An LLM
    reranker is checked in bf16 (its own precision; fp32 would double the memory: 33 GB
    for an 8B model), and only where the memory it needs is free."""
    from transformers.utils import logging as hf_logging

    from deploy.package import weights
    from reranker.engine import Reranker
    from reranker.settings import Settings

    hf_logging.disable_progress_bar()  # a weight-loading bar per check is noise
    llm = model_kind.is_llm(model_kind.read_config(model_dir))
    dtype = "bfloat16" if llm and backend != "onnx" else "auto"  # an LLM runs on torch
    _check_memory(weights.parameter_count(model_dir) * (2 if dtype == "bfloat16" else 4))
    try:
        engine = Reranker.from_dir(str(model_dir), Settings(warmup=False, backend=backend,
                                                            dtype=dtype))
    except Exception as exc:
        raise UserError(f"the model does not load with the engine: {first_line(exc)}") from None
    try:
        score = engine.score(PROBE[0], [PROBE[1]])[0]
        info = engine.describe()
        profile = engine.profile
    finally:
        engine.close()
    if not math.isfinite(score):
        raise UserError(f"the model scored a test pair as {score}: the weights are broken")
    found = {"max_length": info["max_length"], "num_labels": info["num_labels"]}
    if profile is not None:  # an LLM reranker: which prompt, after whose reference
        found["prompt"] = f"{profile.name}, as {profile.reference}"
    return found


def _check_memory(weight_bytes: int) -> None:
    """Refused in one line, rather than killed by the kernel, where the weights (and a
    fifth more for the forward pass) do not fit in the memory free now."""
    free = _available_bytes()
    needed = weight_bytes * 1.2
    if free is not None and needed > free:
        raise UserError(f"checking that the model loads needs about {needed / 1e9:.1f} GB of"
                        f" memory and {free / 1e9:.1f} GB is free: check it on a larger"
                        " machine, or skip the check (package --no-check, NO_CHECK=1 under"
                        " make; inspect without --check): the archive is then not known to"
                        " serve")


def _available_bytes() -> int | None:
    """MemAvailable from /proc/meminfo; None where it cannot be read (not Linux)."""
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def onnx_exporter():
    """deploy.package.onnx_export.export_onnx, imported only when asked for."""
    try:
        from deploy.package.onnx_export import export_onnx
    except ModuleNotFoundError as exc:
        if exc.name != "deploy.package.onnx_export":
            raise UserError(f"ONNX export needs {exc.name}: {exc}") from None
        raise UserError("ONNX export is not available in this checkout"
                        " (deploy/package/onnx_export.py is missing)") from None
    return export_onnx


def export_onnx(export, staging: Path, args) -> dict:
    tolerance = args.onnx_tolerance or ONNX_TOLERANCE[args.onnx]
    report = export(staging, staging, quantize=args.onnx == "int8", tolerance=tolerance)
    if args.check:
        verify(staging, backend="onnx")
    return report
