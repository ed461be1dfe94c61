"""Do CUDA graphs or torch.compile pay for these models?  Measured, not assumed.

The engine runs the model eagerly (SDPA attention).  This times one forward pass at the
batch shapes the engine forms (its padded batches: rows x longest row) in bf16, eagerly,
compiled by inductor, and compiled with CUDA graphs (``mode="reduce-overhead"``), and
reports each against eager along with the compile time a server would pay at start-up
per shape.  On a CPU only the eager path runs (the dry run checks the code, not the
speed).  It runs last: compiling is slow, and nothing else waits for it.
"""

from __future__ import annotations

import time
from pathlib import Path

from .results import Skip

# (rows, tokens): a small latency-bound batch (a 10-hit request) and a full token budget.
SHAPES = ((10, 128), (64, 256))
MODES = ("eager", "inductor", "cuda-graphs")


def measure(model_dir: Path, device: str, quick: bool, time_left,
            save=lambda shapes: None) -> dict:
    """Each shape's modes; ``save`` gets the shapes done so far after each one, so a run
    stopped in a later compile keeps them."""
    import torch
    from transformers import AutoModelForSequenceClassification

    dtype = torch.bfloat16 if device == "cuda" else torch.float32
    model = AutoModelForSequenceClassification.from_pretrained(
        model_dir, dtype=dtype, attn_implementation="sdpa").to(device).eval()
    modes, missing = _modes(device)
    shapes = ((2, 16),) if quick else SHAPES
    out: dict = {}
    for rows, tokens in shapes:
        ids = torch.randint(1000, 2000, (rows, tokens), device=device)
        # Padded rows, as the engine's length-sorted batches have: an all-ones mask would let
        # eager attention drop it (a mask-free kernel) where a compiled graph cannot.
        mask = torch.ones_like(ids)
        mask[1::2, tokens // 2:] = 0
        row: dict = {}
        for mode in modes:
            if time_left() < (15 if mode == "eager" else 90):  # a cold compile takes a minute
                row[mode] = {"skipped": "time budget spent"}
                continue
            try:
                row[mode] = _time_mode(model, mode, ids, mask, device)
            except Skip as exc:
                row[mode] = {"skipped": str(exc)}
            except Exception as exc:  # a compiler failure is a finding, not a crash
                row[mode] = {"error": f"{type(exc).__name__}: {exc}"[:400]}
        eager = row.get("eager", {}).get("ms")
        for mode in modes[1:]:
            ms = row.get(mode, {}).get("ms")
            if eager and ms:
                row[mode]["speedup_vs_eager"] = eager / ms
        out[f"{rows}x{tokens}"] = row
        save(out)
    return {"shapes": out, "dtype": str(dtype), "compile_skipped": missing}


def _modes(device: str) -> tuple[tuple[str, ...], str | None]:
    """The modes to time, and what is missing for Inductor to build CUDA kernels (then only
    eager runs: a compile would fail only after tracing the whole model)."""
    if device != "cuda":
        return ("eager",), None
    from reranker.backends.regional_compile import missing_toolchain

    missing = missing_toolchain("cuda")
    return (("eager",), missing) if missing else (MODES, None)


def _time_mode(model, mode: str, ids, mask, device: str) -> dict:
    import torch

    torch._dynamo.reset()
    if mode == "eager":
        fn = model
    else:
        options = {"mode": "reduce-overhead"} if mode == "cuda-graphs" else {}
        fn = torch.compile(model, dynamic=False, **options)
    started = time.perf_counter()
    with torch.inference_mode():
        for _ in range(3):  # compile, record graphs, settle
            fn(input_ids=ids, attention_mask=mask)
        _sync(device)
        first = time.perf_counter() - started
        runs = 20
        start = time.perf_counter()
        for _ in range(runs):
            fn(input_ids=ids, attention_mask=mask)
        _sync(device)
    return {"ms": 1000 * (time.perf_counter() - start) / runs, "warm_up_s": round(first, 2)}


def _sync(device: str) -> None:
    if device == "cuda":
        import torch

        torch.cuda.synchronize()
