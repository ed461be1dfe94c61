"""`make gpu-check`: the engine's GPU path, checked and measured in one command.

    python -m bench.gpu_check                  # on CUDA: MiniLM-L6 and the bge-large shape
    python -m bench.gpu_check --device cpu --model-dir DIR --quick   # the same code on CPU

What it runs, each part in its own section of the JSON it writes:

1. parity: our fp32 engine against a plain fp32 forward pass (one pair at a time), which
   must agree within 1e-5; bf16 and fp16 against it, with deviation and Kendall tau;
2. OOM splitting: a batch too big for a memory cap (torch's per-process memory fraction, a
   real allocator OOM) is halved by the backend until it fits, with the same scores;
3. batching across requests: our server on the device at concurrency 1/8/32;
4. pairs/s of our engine (fp32/fp16/bf16) against CrossEncoder.predict in fp16, for
   MiniLM-L6 and the bge-large shape, and the share of the device's bf16 GEMM rate.

On a CPU (``--device cpu``) the parity, throughput and server parts run as they would on
a GPU; fp16 and the OOM part are reported as skipped (no GPU memory to cap).  Sized to
finish within 6 minutes on one GPU; each part has a request cap.
"""

from __future__ import annotations

import argparse
import datetime
import json
import time
from pathlib import Path

import numpy as np

from . import models, workloads
from .flops import Shape
from .metrics import Deviation
from .run import parse_levels

ROOT = models.ROOT
FP32_TOLERANCE = 1e-5
GPU_MODES = {"fp32": "float32", "fp16": "float16", "bf16": "bfloat16"}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.gpu_check",
                                description=__doc__.splitlines()[0])
    p.add_argument("--device", choices=["cuda", "cpu"], default="cuda")
    p.add_argument("--model-dir", type=Path, default=None,
                   help="check this model directory only (default: MiniLM-L6 and bge-large)")
    p.add_argument("--quick", action="store_true", help="fewer requests (the CPU test)")
    p.add_argument("--levels", default="1,8,32", help="server concurrency levels")
    p.add_argument("--cache", type=Path, default=ROOT / "build" / "bench")
    p.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    args = p.parse_args(argv)
    args.levels = parse_levels(p, args.levels)
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    import torch

    if args.device == "cuda" and not torch.cuda.is_available():
        print("gpu-check: no CUDA device is visible (run with --device cpu to check the code)")
        return 2
    from . import machine

    started = time.perf_counter()
    info = machine.describe(measure_gemm=False)
    peak = machine.gemm_rate("bfloat16" if args.device == "cuda" or info["cpu"]["bf16"]
                             else "float32", device=args.device,
                             sizes=(4096, 8192) if args.device == "cuda" else (1024,),
                             seconds=0.5 if args.quick else 1.0)
    results = {"machine": info, "device": args.device, "peak_gemm_flops": peak, "models": {}}
    targets = ([("custom", args.model_dir)] if args.model_dir else
               [(n, models.build(n, args.cache)) for n in ("minilm", "bge-large")])
    for name, model_dir in targets:
        _log(f"{name}: parity, throughput")
        results["models"][name] = check_model(Path(model_dir), args, peak,
                                              heavy=name == "bge-large")
    first = Path(targets[0][1])
    _log("OOM splitting")
    results["oom_split"] = check_oom_split(first, args.device)
    _log("server: batching across concurrent requests")
    results["server"] = check_server(first, args)
    results["elapsed_s"] = time.perf_counter() - started
    results["ok"] = all(m["parity"]["fp32"]["max_abs"] <= FP32_TOLERANCE
                        for m in results["models"].values()) \
        and results["oom_split"].get("ok", True) and results["server"].get("errors", 0) == 0
    return _write(args, results)


def check_model(model_dir: Path, args, peak: float, *, heavy: bool) -> dict:
    from .interleave import Reference, model_max_length
    from .peers import CrossEncoderPeer, EnginePeer

    docs = 10 if heavy else 100
    rounds = 1 if args.quick else (2 if heavy else 4)
    work = workloads.mixed100(rounds) if not heavy else workloads.opensearch10(rounds * 4)
    requests = [(r.query, r.documents[:docs]) for r in work.requests]
    reference = Reference(model_dir, model_max_length(model_dir), device=args.device)
    refs = [reference.score(q, d) for q, d in requests[:2]]
    lengths = [reference.lengths(q, d) for q, d in requests]
    reference.close()
    shape = Shape.from_model_dir(model_dir)
    useful = sum(shape.flops(x) for x in lengths)
    pairs = sum(len(d) for _, d in requests)
    out = {"parity": {}, "pairs_per_s": {}, "share_of_peak": {}, "skipped": {}}
    for mode, dtype in GPU_MODES.items():
        if args.device == "cpu" and dtype == "float16":
            out["skipped"][mode] = "fp16 is for GPUs"
            continue
        peer = EnginePeer(model_dir, f"{mode}-cuda" if args.device == "cuda" else mode,
                          device=args.device)
        try:
            seconds, scores = _timed(peer, requests)
        finally:
            peer.close()
        dev = Deviation(top_k=10)
        for got, ref in zip(scores, refs):
            dev.add(got, ref)
        out["parity"][mode] = dev.summary()
        out["pairs_per_s"][f"ours {mode}"] = pairs / seconds
        out["share_of_peak"][f"ours {mode}"] = useful / seconds / peak
    ce = CrossEncoderPeer(model_dir, args.device)
    if args.device == "cuda":
        ce.model.model.half()  # CrossEncoder in fp16: how GPU users run it
    seconds, _ = _timed(ce, requests)
    label = "CrossEncoder fp16" if args.device == "cuda" else "CrossEncoder fp32"
    out["pairs_per_s"][label] = pairs / seconds
    out["share_of_peak"][label] = useful / seconds / peak
    return out


def _timed(peer, requests) -> tuple[float, list[np.ndarray]]:
    peer.score(requests[0][0], requests[0][1][:8])  # warm-up: kernels, allocator
    scores, seconds = [], 0.0
    for query, documents in requests:
        start = time.perf_counter()
        scores.append(np.asarray(peer.score(query, documents), dtype=np.float64))
        seconds += time.perf_counter() - start
    return seconds, scores


def check_oom_split(model_dir: Path, device: str) -> dict:
    """A batch over a real memory cap is halved until it fits, and scores the same."""
    if device != "cuda":
        return {"skipped": "no GPU memory to cap on CPU"}
    import torch

    from reranker.backends.torch_backend import TorchBackend

    backend = TorchBackend(str(model_dir), device="cuda", dtype="float32",
                           trust_remote_code=False, use_safetensors=True)
    rows, tokens = 512, 512
    ids = np.random.default_rng(0).integers(1000, 2000, size=(rows, tokens), dtype=np.int64)
    mask = np.ones_like(ids)
    calls = []
    inner = backend._forward

    def counted(*batch):
        calls.append(len(batch[0]))
        return inner(*batch)

    expected = np.concatenate([inner(ids[i:i + 16], mask[i:i + 16], None)
                               for i in range(0, rows, 16)])
    torch.cuda.empty_cache()
    total = torch.cuda.get_device_properties(0).total_memory
    cap = torch.cuda.memory_allocated() + 2**30  # far below one 512x512 batch
    backend._forward = counted
    torch.cuda.set_per_process_memory_fraction(min(1.0, cap / total))
    try:
        got = backend.forward(ids, mask, None)
    finally:
        torch.cuda.set_per_process_memory_fraction(1.0)
        backend._forward = inner
    diff = float(np.abs(got - expected).max())
    return {"rows": rows, "tokens": tokens, "cap_gib": round(cap / 2**30, 2),
            "forward_calls": len(calls), "smallest_batch": min(calls), "max_abs": diff,
            "ok": len(calls) > 1 and diff <= FP32_TOLERANCE}


def check_server(model_dir: Path, args) -> dict:
    from .local_server import start_server
    from .server_bench import bodies, run_level, warm

    payloads = bodies(workloads.opensearch10(16, seed=101))
    env = {"SERVE_MAX_CONCURRENCY": "256", "RERANK_DEVICE": args.device}
    requests = 12 if args.quick else 300
    levels = []
    with start_server(model_dir, env=env, ready_timeout=300) as url:
        warm(url, payloads)
        for level in args.levels:
            levels.append(run_level(url, payloads, level, max_requests=requests,
                                    max_seconds=20 if args.quick else 30))
    return {"levels": levels, "errors": sum(r["errors"] for r in levels)}


def _write(args, results: dict) -> int:
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H%M%SZ")
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f"gpu-check-{args.device}-{stamp}.json"
    path.write_text(json.dumps(results, indent=1, default=float) + "\n")
    print(summary(results))
    print(f"results: {path}")
    return 0 if results["ok"] else 1


def summary(results: dict) -> str:
    lines = [f"gpu-check on {results['device']}: peak GEMM (bf16 where supported)"
             f" {results['peak_gemm_flops'] / 1e9:.0f} GFLOP/s"]
    for name, m in results["models"].items():
        for mode, dev in m["parity"].items():
            lines.append(f"  {name} {mode}: max |diff| {dev['max_abs']:.2e},"
                         f" Kendall tau {dev['kendall_tau_mean']:.4f}")
        for label, rate in m["pairs_per_s"].items():
            lines.append(f"  {name} {label}: {rate:.1f} pairs/s,"
                         f" {m['share_of_peak'][label]:.1%} of peak")
    oom = results["oom_split"]
    lines.append("  OOM split: " + (oom.get("skipped") or
                                    f"{oom['forward_calls']} calls, smallest batch"
                                    f" {oom['smallest_batch']}, max |diff| {oom['max_abs']:.2e}"))
    for row in results["server"]["levels"]:
        lines.append(f"  server c={row['concurrency']}: {row['rps']:.1f} rps,"
                     f" p99 {row['p99_ms'] or 0:.0f} ms, errors {row['errors']}")
    lines.append("OK" if results["ok"] else "FAILED")
    return "\n".join(lines)


def _log(message: str) -> None:
    print(f"gpu-check: {message}", flush=True)


if __name__ == "__main__":
    raise SystemExit(main())
