"""Where and in what a torch backend computes: device, dtype and CPU threads."""

from __future__ import annotations

import logging

import torch

from .. import cpu
from .base import ModelLoadError

log = logging.getLogger(__name__)

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def pick_device(requested: str) -> torch.device:
    if requested == "cuda" and not torch.cuda.is_available():
        raise ModelLoadError("RERANK_DEVICE=cuda but no CUDA device is visible")
    if requested == "auto":
        requested = "cuda" if torch.cuda.is_available() else "cpu"
    return torch.device(requested)


def pick_dtype(requested: str, device: torch.device) -> str:
    if device.type == "cuda":
        if requested in ("auto", "bfloat16"):
            return "bfloat16" if torch.cuda.is_bf16_supported() else "float16"
        return requested
    if requested == "float16":
        raise ModelLoadError("RERANK_DTYPE=float16 is for GPUs; on CPU use float32 or bfloat16")
    return "float32" if requested == "auto" else requested


def place(device: str, dtype: str, threads: int) -> tuple[torch.device, str]:
    """The device and dtype a backend computes in, with torch's CPU threads set."""
    chosen = pick_device(device)
    dtype = pick_dtype(dtype, chosen)
    if chosen.type == "cpu" and threads:
        torch.set_num_threads(threads)
    if chosen.type == "cpu" and dtype == "bfloat16" and not cpu.has_bf16():
        log.warning("this CPU has no avx512_bf16/AMX: bfloat16 will be slower than float32")
    return chosen, dtype
