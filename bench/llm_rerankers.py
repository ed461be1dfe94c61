"""LLM reranker benchmark: our engine vs sentence-transformers' CrossEncoder on Qwen3-Reranker.

The model is Qwen3-Reranker-0.6B's shape (Qwen3ForCausalLM: 28 layers, hidden 1024, 16
heads, 8 key/value heads, head_dim 128, intermediate 3072, vocabulary 151,669) with random
weights (same compute) and the model card's prompt as its chat template, which is how
CrossEncoder prompts a causal LM; the engine recognises the family and builds the same
prompt.  Per precision (exact: fp32; fast: bf16 where the CPU has bf16 arithmetic, with
CrossEncoder cast to the same dtype) and request size (10, 25, 100 documents): pairs/s of
each, their ratio, the largest score difference, the share of tokens the shared prefix
saves, and for fast how far its scores and ranks move from the exact engine's.

    python -m bench.llm_rerankers --layers 4 --rounds 1     # a short run on a small CPU
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from . import metrics, models, workloads
from .device import llm

SIZES = (10, 25, 100)
PRECISIONS = ("exact", "fast")


def build(cache: Path, layers: int) -> Path:
    from demo_models.llm import qwen3_reranker_shape

    out = cache / "models" / f"qwen3-reranker-0.6b-shape-{layers}l"
    if not (out / "config.json").is_file():
        qwen3_reranker_shape(out, num_hidden_layers=layers)
    return out


def requests(size: int, rounds: int, seed: int = 23) -> list[tuple[str, list[str]]]:
    """RAG-style candidates: passages of 15-150 words (a search hit's snippet or chunk)."""
    gen = workloads.TextGenerator(seed + size)
    out = []
    for _ in range(rounds):
        docs = [gen.text(int(min(150, max(15, gen.rng.lognormvariate(4.0, 0.5)))))
                for _ in range(size)]
        out.append((gen.query(), docs))
    return out


def _timed(score, reqs) -> tuple[float, list[np.ndarray]]:
    started = time.perf_counter()
    scores = [np.asarray(score(q, d), dtype=np.float64) for q, d in reqs]
    return time.perf_counter() - started, scores


def _cross_encoder(model_dir: Path, dtype):
    """CrossEncoder as users run it at this precision (bf16: the model cast, as on GPUs)."""
    import torch
    from sentence_transformers import CrossEncoder

    cross = CrossEncoder(str(model_dir), device="cpu", max_length=llm.MAX_LENGTH)
    cross.model.to(dtype)
    identity = torch.nn.Identity()

    def score(query, docs):
        return cross.predict([(query, d) for d in docs], activation_fn=identity,
                             show_progress_bar=False)

    return score


def _precision(model_dir: Path, precision: str, sizes, rounds: int, exact_scores: dict,
               log, compiled: bool = False) -> dict:
    """Engine and CrossEncoder at one precision; ``exact_scores`` (size -> the exact
    engine's scores) is filled by the exact run and read by the fast one."""
    import torch

    from reranker.engine import Reranker
    from reranker.settings import Settings

    engine = Reranker.from_dir(str(model_dir), Settings(warmup=True, precision=precision,
                                                        compile=compiled))
    dtype = getattr(torch, engine.describe()["dtype"])
    cross_score = _cross_encoder(model_dir, dtype)
    out = {"engine": engine.describe(), "sizes": {}}
    try:
        cross_score("warm-up", ["warm-up document"])
        for size in sizes:
            reqs = requests(size, rounds)
            ours_s, ours = _timed(lambda q, d: engine.score(q, d, raw=True), reqs)
            cross_s, theirs = _timed(cross_score, reqs)
            pairs = size * rounds
            encoded = [engine.prompts.encode([(q, d) for d in docs]) for q, docs in reqs]
            row = {
                "pairs": pairs,
                "engine_pairs_per_s": pairs / ours_s,
                "crossencoder_pairs_per_s": pairs / cross_s,
                "ratio": cross_s / ours_s,
                "max_abs_score_diff": float(max(np.abs(a - b).max()
                                                for a, b in zip(ours, theirs))),
                "prefix_tokens_saved": 1 - (sum(e.computed for e in encoded)
                                            / sum(e.tokens for e in encoded)),
            }
            if precision == "exact":
                exact_scores[size] = ours
            elif size in exact_scores:  # how far the fast engine moves from the exact one
                row["max_abs_dev_vs_exact"] = float(max(
                    np.abs(a - b).max() for a, b in zip(ours, exact_scores[size])))
                row["min_kendall_tau_vs_exact"] = min(
                    metrics.kendall_tau(a, b) for a, b in zip(ours, exact_scores[size]))
            out["sizes"][size] = row
            log(_line(precision, out["engine"]["dtype"], size, row))
    finally:
        engine.close()
    return out


def _line(precision: str, dtype: str, size: int, row: dict) -> str:
    line = (f"{precision} ({dtype}) {size:>3} docs: engine {row['engine_pairs_per_s']:.2f}"
            f" pairs/s, CrossEncoder {row['crossencoder_pairs_per_s']:.2f} pairs/s,"
            f" ratio {row['ratio']:.2f}x, max |diff| {row['max_abs_score_diff']:.2e},"
            f" prefix saves {row['prefix_tokens_saved']:.0%} of tokens")
    if "min_kendall_tau_vs_exact" in row:
        line += (f"; vs exact: max |dev| {row['max_abs_dev_vs_exact']:.2e},"
                 f" tau {row['min_kendall_tau_vs_exact']:.3f}")
    return line


def run(cache: Path, layers: int = 28, rounds: int = 2, sizes=SIZES, threads: int = 0,
        precisions=PRECISIONS, log=print, compiled: bool = False) -> dict:
    """Per precision (RERANK_PRECISION: exact = fp32; fast = bf16 where the CPU has bf16
    arithmetic), the engine (with RERANK_COMPILE when ``compiled``) against CrossEncoder
    at the same dtype."""
    return compare(build(cache, layers),
                   f"Qwen3-Reranker-0.6B shape, {layers} of 28 layers, random weights",
                   rounds, sizes, threads, precisions, log, compiled)


def compare(model_dir: Path, label: str, rounds: int = 2, sizes=SIZES, threads: int = 0,
            precisions=PRECISIONS, log=print, compiled: bool = False) -> dict:
    """:func:`run` on any Qwen3-Reranker directory whose chat template is the card's."""
    import torch

    if threads:
        torch.set_num_threads(threads)
    results = {"model": label, "threads": torch.get_num_threads(), "compiled": compiled,
               "precisions": {}}
    exact_scores: dict = {}
    for precision in sorted(precisions, key=lambda p: p != "exact"):  # exact first
        results["precisions"][precision] = _precision(model_dir, precision, sizes, rounds,
                                                      exact_scores, log, compiled)
    return results


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.llm_rerankers",
                                description=__doc__.splitlines()[0])
    p.add_argument("--layers", type=int, default=28,
                   help="decoder layers of the 28 (fewer: a short run on a small CPU)")
    p.add_argument("--rounds", type=int, default=2, help="requests per size")
    p.add_argument("--sizes", default=",".join(map(str, SIZES)))
    p.add_argument("--threads", type=int, default=0)
    p.add_argument("--precisions", default=",".join(PRECISIONS),
                   help="RERANK_PRECISION values to run, comma-separated (exact, fast)")
    p.add_argument("--cache", type=Path, default=models.ROOT / "build" / "bench")
    p.add_argument("--out", type=Path, default=None, help="write the results as JSON here")
    p.add_argument("--compile", action="store_true",
                   help="the engine with RERANK_COMPILE=true (needs a C++ compiler)")
    args = p.parse_args(argv)
    if not 1 <= args.layers <= 28 or args.rounds < 1:
        p.error("--layers must be in 1..28 and --rounds at least 1")
    try:
        sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    except ValueError:
        p.error(f"--sizes must be integers separated by commas, got {args.sizes!r}")
    precisions = [x.strip() for x in args.precisions.split(",") if x.strip()]
    if not precisions or set(precisions) - set(PRECISIONS):
        p.error(f"--precisions takes {', '.join(PRECISIONS)}, got {args.precisions!r}")
    results = run(args.cache, args.layers, args.rounds, sizes, args.threads, precisions,
                  compiled=args.compile)
    if args.out:
        args.out.write_text(json.dumps(results, indent=1, default=str) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
