"""Engine level for one model: build the peers, run the workloads interleaved, summarise.

The peers and workloads per model:

* MiniLM-L6: every peer and every engine mode, on the three workloads.
* bge-large shape: heavy on 2 cores (about 0.6 GFLOP per token), so only
  ``CrossEncoder.predict`` and our torch modes, on a few 10-document requests.
* GPU (when torch.cuda.is_available()): CrossEncoder and the pipeline on CUDA, our engine
  in fp32/fp16/bf16 with the GPU token budget.  The aws-samples notebook's handler never
  moves its model to the GPU (as written), so it has no GPU row.
"""

from __future__ import annotations

from pathlib import Path

from . import models, peers, workloads
from .flops import FORMULA, Shape
from .interleave import (
    PeerSpec,
    Reference,
    WorkloadRun,
    build_peers,
    close_all,
    model_max_length,
    share,
    warm_up,
)

HEAVY = {"bge-large"}
GPU_HALF_DTYPES = ("float16", "bfloat16")
# Requests per workload whose scores are also checked against a plain forward pass.
REFERENCE_REQUESTS = {"mixed100": 3, "opensearch10": 5, "rag25": 3}


def plan_workloads(name: str, args, device: str) -> list[workloads.Workload]:
    rounds = workloads.QUICK_ROUNDS if args.quick else workloads.DEFAULT_ROUNDS
    if name in HEAVY:
        return [workloads.opensearch10(max(1, round(2 * args.rounds)), seed=17)]
    if device == "cuda":
        return [workloads.mixed100(max(1, round(4 * rounds["mixed100"] * args.rounds)))]
    return [workloads.build(w, max(1, round(n * args.rounds))) for w, n in rounds.items()]


def peer_specs(name: str, model_dir: Path, args, info: dict, device: str) -> list[PeerSpec]:
    specs: list[PeerSpec] = []
    wanted = list(args.peers)
    # The aws-samples handler and the pipeline cost as much again and show nothing new.
    if name in HEAVY:
        wanted = [p for p in wanted if p == "crossencoder"]
    if device == "cuda":
        wanted = [p for p in wanted if p != "aws-sample"]
    if "crossencoder" in wanted:
        specs.append(PeerSpec("crossencoder", lambda: peers.CrossEncoderPeer(model_dir, device)))
    if "crossencoder" in wanted and device == "cuda":
        # Our fp16/bf16 rows compare with CrossEncoder at the same dtype, as GPU users run it
        # (bench/device/encoders.py does the same), not with its fp32.
        for dtype in GPU_HALF_DTYPES:
            specs.append(PeerSpec(f"crossencoder-{peers.SHORT_DTYPES[dtype]}",
                                  lambda d=dtype: peers.CrossEncoderPeer(model_dir, device,
                                                                         dtype=d)))
    if "aws-sample" in wanted:
        specs.append(PeerSpec("aws-sample", lambda: peers.AwsSamplePeer(model_dir)))
    if "pipeline" in wanted:
        specs.append(PeerSpec("pipeline", lambda: peers.PipelinePeer(model_dir, device)))
    modes = ["fp32-cuda", "fp16-cuda", "bf16-cuda"] if device == "cuda" else args.modes
    for mode in modes:
        specs.append(PeerSpec(f"engine-{mode}", _engine_builder(name, model_dir, mode, args,
                                                                info, device)))
    return specs


def _engine_builder(name, model_dir, mode, args, info, device):
    def build():
        directory = model_dir
        if "bf16" in mode and not info["cpu"]["bf16"]:
            raise RuntimeError("this CPU has neither avx512_bf16 nor amx_bf16")
        if mode.startswith(("onnx", "openvino")):
            if name in HEAVY:
                raise RuntimeError("ONNX export of a 560M-parameter model is left out of"
                                   " this run (minutes on 2 cores)")
            directory = peers.onnx_model_dir(model_dir, args.cache / "onnx",
                                             quantize=mode == "onnx-int8")
        return peers.EnginePeer(directory, mode, batch_tokens=args.batch_tokens,
                                threads=args.threads if device == "cpu" else 0,
                                device="cuda" if device == "cuda" else "cpu")
    return build


def run_model(name: str, args, info: dict, progress, log, device: str = "cpu") -> dict:
    if args.model_dir is not None:
        model_dir = args.model_dir
    else:
        log(f"model {models.title(name)}: building or reusing it under {args.cache}")
        model_dir = models.build(name, args.cache)
    shape = Shape.from_model_dir(model_dir)
    max_length = model_max_length(model_dir)
    plan = plan_workloads(name, args, device)

    log(f"{name}: token lengths and the plain forward pass (the reference)")
    reference = Reference(model_dir, max_length, device="cuda" if device == "cuda" else "cpu")
    lengths, refs = {}, {}
    for w in plan:
        # The heavy model's fp32 path is checked against our fp32 engine only (time).
        k = 0 if name in HEAVY else 1 if args.quick else REFERENCE_REQUESTS.get(w.name, 2)
        lengths[w.name] = [reference.lengths(r.query, r.documents) for r in w.requests]
        refs[w.name] = [reference.score(r.query, r.documents) for r in w.requests[:k]]
    reference.close()

    specs = peer_specs(name, model_dir, args, info, device)
    log(f"{name}: loading {len(specs)} peers")
    loaded, skipped = build_peers(specs, log)
    out = {
        "title": models.title(name),
        "model_dir": str(model_dir),
        "device": device,
        "max_length": max_length,
        "shape": vars(shape),
        "flops_formula": FORMULA,
        "dense_flops_per_token": shape.dense_flops_per_token(),
        "peers": {n: {"label": p.label, "kind": p.kind, "describe": p.describe()}
                  for n, p in loaded.items()},
        "skipped": skipped,
        "workloads": {},
    }
    try:
        if not loaded:
            return out
        warm_up(loaded, plan[0], docs=2 if name in HEAVY else 8)
        prefix = "cuda_" if device == "cuda" else "cpu_"
        gemm = {k[len(prefix):]: v for k, v in info["gemm_flops"].items()
                if k.startswith(prefix)}
        for w in plan:
            task = progress.add_task(f"{name} {w.name}", total=len(w.requests) * len(loaded))
            run = WorkloadRun(w, loaded, shape, lengths[w.name])
            run.run(lambda text, task=task: progress.update(task, advance=1,
                                                            description=f"{name} {text}"))
            progress.update(task, description=f"{name} {w.name} done")
            out["workloads"][w.name] = run.summary(gemm, refs[w.name], top_k=_top_k(w))
            _log_summary(log, name, w.name, out["workloads"][w.name])
    finally:
        close_all(loaded)
    return out


def run_gpu(args, info, progress, log) -> dict:
    out = {}
    for name in args.models:
        out[name] = run_model(name, args, info, progress, log, device="cuda")
    return out


def _top_k(w: workloads.Workload) -> int:
    top = w.requests[0].top_n
    return top if top else min(10, len(w.requests[0].documents))


def _log_summary(log, model: str, workload: str, summary: dict) -> None:
    from .report import crossencoder_for

    for row in summary["results"].values():
        base = crossencoder_for(summary["results"], row).get("pairs_per_s")
        ratio = f" ({row['pairs_per_s'] / base:.2f}x CrossEncoder)" if base else ""
        log(f"{model} {workload} {row['label']}: {row['pairs_per_s']:.1f} pairs/s{ratio},"
            f" p50 {row['p50_ms']:.0f} ms, padding {row['padding_efficiency']:.0%}")


def reshare(models_results: dict, info: dict, device: str = "cpu") -> None:
    """Recompute every row's GEMM shares against the machine's current ceilings."""
    prefix = f"{device}_"
    gemm = {k[len(prefix):]: v for k, v in info["gemm_flops"].items() if k.startswith(prefix)}
    for model in models_results.values():
        for workload in model.get("workloads", {}).values():
            for row in workload["results"].values():
                flops = row.get("model_flops_per_s")
                if flops:
                    row["share_of_fp32_gemm"] = share(flops, gemm.get("float32"))
                    row["share_of_own_gemm"] = share(flops, gemm.get(row["flops_dtype"]))
