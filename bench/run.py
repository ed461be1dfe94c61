"""`make bench`: measure our engine and server against what users run today, in one run.

    python -m bench                 # the full run (about 13-16 min on 2 cores)
    python -m bench --quick         # MiniLM only, fewer requests, short server levels (~4 min)

Writes bench/results/<date>.json, <date>.png and <date>.md (the tables).  The full run with
every measuring option at its default also rewrites its block of docs/BENCHMARKS.md; any
other run leaves that file alone unless --doc names it (a partial run must not replace the
committed full-run figures).  See docs/BENCHMARKS.md for what is measured and how.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import sys
import time
from pathlib import Path

from reranker import cpu

from . import closed_loop, models

ROOT = models.ROOT
DOC = ROOT / "docs" / "BENCHMARKS.md"
CPU_MODES = ("fp32", "bf16", "onnx", "onnx-int8", "openvino", "openvino-bf16")
# Every runtime the auto table (reranker.backends.choice) picks from, in both precisions.
QUICK_MODES = ("fp32", "onnx", "openvino", "bf16", "openvino-bf16", "onnx-int8")
PEERS = ("crossencoder", "aws-sample", "pipeline")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true",
                   help="MiniLM only, fewer requests and modes, short server levels (~4 min)")
    p.add_argument("--models", default=None,
                   help="comma-separated: minilm,bge-large (default: both; quick: minilm)")
    p.add_argument("--model-dir", type=Path, default=None,
                   help="benchmark this model directory instead of the built ones")
    p.add_argument("--rounds", type=_positive(float), default=1.0,
                   help="scale the number of requests per workload (default 1.0)")
    p.add_argument("--modes", default=None,
                   help=f"engine modes on CPU (default: {','.join(CPU_MODES)};"
                        f" quick: {','.join(QUICK_MODES)})")
    p.add_argument("--peers", default=",".join(PEERS), help="peers to compare with")
    p.add_argument("--threads", type=_positive(int), default=cpu.usable_cores(),
                   help="threads for every peer and GEMM measurement (default: the cores"
                        " this process may run on)")
    p.add_argument("--batch-tokens", type=_at_least_zero(int), default=0,
                   help="engine token budget per forward pass (0: the engine's default)")
    p.add_argument("--no-engine", dest="engine", action="store_false", default=True,
                   help="skip the engine level (server level only)")
    p.add_argument("--server", dest="server", action="store_true", default=True)
    p.add_argument("--no-server", dest="server", action="store_false",
                   help="skip the server level")
    p.add_argument("--no-dlc", dest="dlc", action="store_false", default=True,
                   help="server level without the toolkit + MMS stack")
    p.add_argument("--no-infinity", dest="infinity", action="store_false", default=True,
                   help="server level without Infinity (.venv-infinity)")
    p.add_argument("--no-fast-server", dest="fast_server", action="store_false", default=True,
                   help="server level with our exact mode only (no RERANK_PRECISION=fast)")
    p.add_argument("--levels", default=None,
                   help="server concurrency levels (default 1,8,32; quick 1,8)")
    p.add_argument("--ours-env", default=None, metavar="K=V,...",
                   help="our server's RERANK_*/SERVE_* settings (default: the best found,"
                        " see bench/server_bench.py)")
    p.add_argument("--server-requests", type=_positive(int), default=None,
                   help="requests per level and stack (default 300; quick 40)")
    p.add_argument("--server-seconds", type=_positive(float), default=None,
                   help="time cap per level and stack (default 20; quick 6)")
    p.add_argument("--cache", type=Path, default=ROOT / "build" / "bench",
                   help="where models and ONNX exports are built once")
    p.add_argument("--out", type=Path, default=ROOT / "bench" / "results",
                   help="directory for the JSON results and the PNG chart")
    p.add_argument("--doc", default=None,
                   help="Markdown file whose generated block is rewritten (default:"
                        " docs/BENCHMARKS.md on a full run with default options, else none;"
                        " --doc '' never)")
    p.add_argument("--gemm-seconds", type=_positive(float), default=None,
                   help="seconds per GEMM-rate measurement (default 2; quick 0.5)")
    args = p.parse_args(argv)
    args.doc = _doc(args, p)
    args.levels = args.levels or ("1,8" if args.quick else "1,8,32")
    args.modes = args.modes or ",".join(QUICK_MODES if args.quick else CPU_MODES)
    args.levels = closed_loop.parse_levels(p, args.levels)
    if args.ours_env is not None:
        pairs = [x.split("=", 1) for x in args.ours_env.split(",") if x.strip()]
        if any(len(kv) != 2 or not kv[0].strip() for kv in pairs):
            p.error(f"--ours-env must be K=V pairs separated by commas, got {args.ours_env!r}")
        args.ours_env = {k.strip(): v.strip() for k, v in pairs}
    args.modes = _choices(p, "--modes", args.modes, CPU_MODES)
    args.peers = _choices(p, "--peers", args.peers, PEERS)
    if args.model_dir is not None:
        if not (args.model_dir / "config.json").is_file():
            p.error(f"--model-dir {args.model_dir} has no config.json")
        args.models = ["custom"]
    else:
        default = "minilm" if args.quick else "minilm,bge-large"
        args.models = _choices(p, "--models", args.models or default, tuple(models.MODELS))
    args.server_requests = args.server_requests or (40 if args.quick else 300)
    args.server_seconds = args.server_seconds or (6.0 if args.quick else 20.0)
    args.gemm_seconds = args.gemm_seconds or (0.5 if args.quick else 2.0)
    return args


# Options that only say where things go: a run that changes nothing else is a full run.
_WHERE_OPTIONS = ("cache", "out", "doc")


def _doc(args: argparse.Namespace, p: argparse.ArgumentParser) -> Path | None:
    """--doc as given ('' for none); not given: DOC on a full run (no measuring option
    given, or each at its default value), else None.  Reads the options as parsed."""
    if args.doc is not None:
        # Path('') would be the current directory.
        return Path(args.doc) if args.doc.strip() else None
    defaults = vars(p.parse_args([]))
    full = all(value == defaults[key] for key, value in vars(args).items()
               if key not in _WHERE_OPTIONS)
    return DOC if full else None


def _positive(kind):
    """An argparse type: a number above zero."""
    def parse(raw: str):
        value = _number(kind, raw)
        if value <= 0:
            raise argparse.ArgumentTypeError(f"must be positive, got {raw!r}")
        return value
    return parse


def _at_least_zero(kind):
    """An argparse type: zero or more."""
    def parse(raw: str):
        value = _number(kind, raw)
        if value < 0:
            raise argparse.ArgumentTypeError(f"must be 0 or more, got {raw!r}")
        return value
    return parse


def _number(kind, raw: str):
    try:
        return kind(raw)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {raw!r}") from None


def _choices(p, flag: str, raw: str, allowed) -> list[str]:
    values = [x.strip() for x in raw.split(",") if x.strip()]
    unknown = [x for x in values if x not in allowed]
    if unknown:
        p.error(f"{flag}: unknown {', '.join(unknown)}; choose from {', '.join(allowed)}")
    return values


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    import torch
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    torch.set_num_threads(args.threads)  # every in-process peer shares this setting
    console = Console(stderr=True)
    started = time.perf_counter()
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
               TimeElapsedColumn())
    with Progress(*columns, console=console, transient=False) as progress:
        def log(message: str) -> None:
            progress.console.print(f"[dim]{time.perf_counter() - started:6.1f}s[/] {message}")

        from . import engine_level, llm_rerankers, machine

        log(f"measuring GEMM rates ({args.threads} threads)")
        info = machine.describe(gemm_seconds=args.gemm_seconds)
        log("GEMM: " + ", ".join(f"{k} {v / 1e9:.0f} GFLOP/s"
                                 for k, v in info["gemm_flops"].items()))
        results = {"machine": info, "config": _config(args), "models": {}}
        for name in args.models if args.engine else []:
            results["models"][name] = engine_level.run_model(name, args, info, progress, log)
        if results["models"]:
            machine.remeasure_cpu(info, args.gemm_seconds)
            engine_level.reshare(results["models"], info)
            log("GEMM (best of two): " + ", ".join(f"{k} {v / 1e9:.0f} GFLOP/s"
                                                   for k, v in info["gemm_flops"].items()))
        if args.engine and args.model_dir is None:  # Qwen3-Reranker-0.6B's shape (llm_rerankers)
            results["llm_rerankers"] = llm_rerankers.run(args.cache, 2 if args.quick else 8, 1,
                                                         log=log)
        if info["gpu"] and args.engine:
            results["gpu"] = engine_level.run_gpu(args, info, progress, log)
        if args.server:
            results["server"] = _server(args, progress, log)
    results["elapsed_s"] = time.perf_counter() - started
    return _write(args, results, console)


def _server(args, progress, log) -> dict:
    from . import server_bench, workloads

    name = args.models[0]
    model_dir = args.model_dir or models.build(name, args.cache)
    rounds = max(8, int(40 * args.rounds))
    try:
        return server_bench.run(model_dir, workloads.opensearch10(rounds, seed=101),
                                args.levels, args.server_requests, args.server_seconds,
                                progress, log, cache=args.cache, ours_env=args.ours_env,
                                dlc=args.dlc, infinity=args.infinity,
                                fast=args.fast_server) | {"model": name}
    except Exception as exc:  # the engine level's numbers must still be written
        log(f"server level failed: {exc}")
        return {"error": f"{type(exc).__name__}: {str(exc).splitlines()[0]}", "model": name}


def _config(args) -> dict:
    return {"quick": args.quick, "models": args.models, "modes": args.modes,
            "peers": args.peers, "threads": args.threads, "rounds_scale": args.rounds,
            "batch_tokens": args.batch_tokens, "levels": args.levels,
            "server_requests": args.server_requests, "server_seconds": args.server_seconds,
            "infinity": args.infinity, "fast_server": args.fast_server,
            "engine_level": args.engine,
            "command": " ".join(["python -m bench", *sys.argv[1:]])}


def _write(args, results: dict, console) -> int:
    from . import chart, report

    results["targets"] = report.targets(results)
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H%M%SZ")
    args.out.mkdir(parents=True, exist_ok=True)
    json_path = args.out / f"{stamp}.json"
    png_path = args.out / f"{stamp}.png"
    md_path = args.out / f"{stamp}.md"
    json_path.write_text(json.dumps(results, indent=1, default=float) + "\n")
    chart.draw(results, png_path)
    md_path.write_text(report.standalone(results, json_path, png_path))
    if args.doc:
        report.update_doc(args.doc, results, json_path, png_path)
    console.print(report.console_summary(results), markup=False, highlight=False)
    console.print(f"results: {json_path}\nchart:   {png_path}\ntables:  {md_path}"
                  + (f"\ndoc:     {args.doc} (its block for this CPU kind rewritten)"
                     if args.doc else f"\ndoc:     {DOC.name} left as it is (not a full run"
                                      " with default options; --doc PATH writes one)"))
    return 0
