"""CUDA out-of-memory under a real memory cap: the torch backend halves the batch.

``TorchBackend.forward`` catches ``torch.cuda.OutOfMemoryError`` and scores the two halves
of the batch instead, recursively down to one row, and caps later passes under the size that
failed (reranker/backends/memory_cap.py).  This caps the process's share of the
GPU with ``torch.cuda.set_per_process_memory_fraction`` (a real allocator OOM, not a mock),
sends one batch far over the cap, and checks that it was split and scores the same as
small batches scored without a cap.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .results import Skip

FP32_TOLERANCE = 1e-5


def check(model_dir: Path, device: str, quick: bool) -> dict:
    if device != "cuda":
        raise Skip("no GPU memory to cap on a CPU")
    import torch

    from reranker.backends.torch_backend import TorchBackend

    backend = TorchBackend(str(model_dir), device="cuda", dtype="float32",
                           trust_remote_code=False, use_safetensors=True)
    rows, tokens = 512, 512
    ids = np.random.default_rng(0).integers(1000, 2000, size=(rows, tokens), dtype=np.int64)
    mask = np.ones_like(ids)
    inner = backend._forward
    expected = np.concatenate([inner(ids[i:i + 16], mask[i:i + 16], None)
                               for i in range(0, rows, 16)])
    calls: list[tuple[int, bool]] = []  # (rows, fitted) of every forward attempt

    def counted(*batch):
        try:
            out = inner(*batch)
        except torch.cuda.OutOfMemoryError:
            calls.append((len(batch[0]), False))
            raise
        calls.append((len(batch[0]), True))
        return out

    torch.cuda.empty_cache()
    total = torch.cuda.get_device_properties(0).total_memory
    # The fraction limit counts memory the caching allocator holds (reserved), not only
    # what tensors use (allocated): cap from the former, far below one 512 x 512 batch.
    reserved = torch.cuda.memory_reserved()
    cap = reserved + 2**30
    backend._forward = counted
    torch.cuda.set_per_process_memory_fraction(min(1.0, cap / total))
    try:
        got = backend.forward(ids, mask, None)
    finally:
        torch.cuda.set_per_process_memory_fraction(1.0)
        backend._forward = inner
        del backend
        torch.cuda.empty_cache()
    diff = float(np.abs(got - expected).max())
    fitted = [n for n, ok in calls if ok]
    return {"rows": rows, "tokens": tokens, "cap_gib": round(cap / 2**30, 2),
            "reserved_before_gib": round(reserved / 2**30, 2),
            "forward_calls": len(calls), "failed_attempts": len(calls) - len(fitted),
            "largest_batch_that_fitted": max(fitted, default=0),
            "smallest_batch": min((n for n, _ in calls), default=0), "max_abs": diff,
            "ok": len(calls) > 1 and sum(fitted) == rows and diff <= FP32_TOLERANCE}
