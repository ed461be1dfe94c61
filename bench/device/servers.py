"""Server level on the device: our server against Infinity, same model, same precision.

Our server (``python -m serving``, started by bench/local_server.py as ``make serve``
runs it) and Infinity (``infinity_emb v2``, from the kit's second wheel set, in its own folder
so its older uvicorn and click never meet ours) serve the same model directory in fp16 on
127.0.0.1.  A closed-loop client (bench/closed_loop.py) sends the 10-hit OpenSearch
pattern in Cohere's format at each concurrency level, bounded by a request count and a
time cap; the two servers run one after the other (one GPU, no sharing).
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

from .. import closed_loop, infinity_server, workloads
from ..local_server import free_port, start_server
from .results import Results, Skip

SERVED_NAME = "reranker"


def payloads(pairs: int = 10, rounds: int = 16) -> list[dict]:
    work = workloads.opensearch10(rounds, seed=101)
    return [{"query": r.query, "documents": list(r.documents[:pairs])} for r in work.requests]


# Requests per client at least, so that start and wind-down do not make a level's numbers
# (128 clients with 400 requests would send three each); the time cap still bounds it.
PER_CLIENT = 25
# Seconds a request may take on the device before it counts as an error: a stalled server
# must not hold the load generator for minutes.
REQUEST_TIMEOUT = 30.0


def measure(model_dir: Path, *, device: str, levels: list[int], max_requests: int,
            max_seconds: float, infinity_site: Path | None, results: Results,
            key: tuple[str, ...], time_left: Callable[[], float],
            per_client: int = PER_CLIENT) -> dict:
    bodies = payloads()
    dtype = "float16" if device == "cuda" else "float32"

    def ready_s() -> float:  # a server that hangs at start-up must not eat what follows
        return max(30.0, min(120.0, time_left() - 30))

    stacks = {"ours": lambda: ours(model_dir, device, dtype, ready_s())}
    if infinity_site is not None:
        stacks["infinity"] = lambda: infinity(model_dir, device, dtype, infinity_site,
                                              ready_s())
    else:
        results.put(key + ("stacks", "infinity"), {"skipped": "the Infinity wheels are not"
                                                  " installed (build/device-kit/wheels/infinity)"})
    for name, start in stacks.items():
        if time_left() < 30:
            results.put(key + ("stacks", name), {"skipped": "time budget spent"})
            continue
        free_before = free_gpu_bytes(device)
        try:
            with start() as (url, path, body):
                encoded = [json.dumps(body(b)).encode() for b in bodies]
                closed_loop.run(url, path, encoded, 2, 4, 60, 10,  # warm-up
                                timeout=REQUEST_TIMEOUT)
                rows = []
                for level in levels:
                    seconds = min(max_seconds, max(2.0, time_left() - 20))
                    rows.append(closed_loop.run(
                        url, path, encoded, level, max(max_requests, per_client * level),
                        seconds, len(bodies[0]["documents"]), timeout=REQUEST_TIMEOUT))
                    results.put(key + ("stacks", name), {
                        "levels": rows, "dtype": dtype,
                        "gpu_memory": gpu_memory(device, free_before)})
        except Skip as exc:
            results.put(key + ("stacks", name), {"skipped": str(exc)})
        except Exception as exc:  # a peer that fails to start: say why, keep ours
            results.put(key + ("stacks", name), {"error": f"{type(exc).__name__}: {exc}"[:1500]})
    return {"targets": targets(results.get(key))}


@contextlib.contextmanager
def ours(model_dir: Path, device: str, dtype: str, ready_timeout: float = 300.0
         ) -> Iterator[tuple[str, str, Callable]]:
    # Only these settings and the server's defaults (score cache off): none of the caller's.
    env = {"SERVE_MAX_CONCURRENCY": "256", "RERANK_DEVICE": device, "RERANK_DTYPE": dtype,
           "RERANK_CACHE_ROWS": "0"}
    with start_server(model_dir, env=env, ready_timeout=ready_timeout,
                      inherit_settings=False) as url:
        yield url, "/v1/rerank", lambda b: {**b, "top_n": len(b["documents"])}


@contextlib.contextmanager
def infinity(model_dir: Path, device: str, dtype: str, site: Path,
             ready_timeout: float = 300.0) -> Iterator[tuple[str, str, Callable]]:
    port = free_port()
    env = dict(os.environ, PYTHONPATH=str(site), HF_HUB_OFFLINE="1",
               INFINITY_ANONYMOUS_USAGE_STATS="0", DO_NOT_TRACK="1", PYTHONUNBUFFERED="1")
    command = [sys.executable, "-m", "infinity_emb.cli", "v2", "--model-id", str(model_dir),
               "--served-model-name", SERVED_NAME, "--host", "127.0.0.1", "--port", str(port),
               "--device", device, "--dtype", dtype, "--engine", "torch",
               # Its warm-up calls tokenizer.batch_encode_plus, which transformers 5
               # removed; the load generator's warm-up requests take its place.
               "--no-model-warmup"]
    with tempfile.NamedTemporaryFile(prefix="infinity-", suffix=".log", delete=False) as log:
        log_path = Path(log.name)
        proc = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        infinity_server.wait_ready(proc, url, ready_timeout, log_path)
        yield url, "/rerank", lambda b: {**b, "model": SERVED_NAME}
    finally:
        infinity_server.stop(proc)
        log_path.unlink(missing_ok=True)


def free_gpu_bytes(device: str) -> int | None:
    if device != "cuda":
        return None
    import torch

    return torch.cuda.mem_get_info()[0]


def gpu_memory(device: str, free_before: int | None) -> dict | None:
    """Device memory the server under test took (another process: read as what was free
    before it started less what is free now, so this checker's own memory is left out)."""
    if device != "cuda" or free_before is None:
        return None
    import torch

    free, total = torch.cuda.mem_get_info()
    return {"server_gib": round((free_before - free) / 2**30, 2),
            "used_gib": round((total - free) / 2**30, 2), "total_gib": round(total / 2**30, 1)}


def targets(node: dict) -> dict:
    """Our server against Infinity at 32 clients, from this model's section."""
    stacks = node.get("stacks", {})

    def at(name, level):
        for row in stacks.get(name, {}).get("levels", []):
            if row["concurrency"] == level:
                return row
        return None

    ours_row, inf_row = at("ours", 32), at("infinity", 32)
    if not (ours_row and inf_row and inf_row["rps"]):
        return {}
    return {"c32_rps_vs_infinity": ours_row["rps"] / inf_row["rps"],
            "c32_p99_ms": {"ours": ours_row["p99_ms"], "infinity": inf_row["p99_ms"]},
            "c32_p99_no_worse": (ours_row["p99_ms"] or 0) <= (inf_row["p99_ms"] or 0)}
