"""Server level: our HTTP server against the toolkit + multi-model-server (DLC) stack.

Both serve the same model with the same packaged handler (code/inference.py) on
127.0.0.1, started by the test utilities (bench/local_server.py, bench/dlc_stack.py).  A
closed-loop load generator (C client threads, keep-alive connections, each sending the
next request when the last one answered) runs the 10-document OpenSearch pattern at each
concurrency level, bounded by a request count and a time cap.  Both stacks stay up for the
whole run and the levels alternate between them, so background noise hits both alike.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import threading
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlparse

from .metrics import percentile
from .workloads import Workload

# Our server: the fastest configuration measured per CPU kind (docs/BENCHMARKS.md, "Which
# mode wins"), one 2-thread intra-op team, and OpenMP threads that sleep instead of spinning
# at barriers (the server's default).  Without OMP_WAIT_POLICY=PASSIVE a 2-thread team
# collapses (3-10x slower) as soon as anything else wants a core: the server's own request
# threads, the load generator, a neighbour.
# Xeon with AMX: bf16 weights (2086 against 332 GFLOP/s of fp32 GEMM), a 2048-token budget.
OURS_ENV_AMX = {"RERANK_DTYPE": "bfloat16", "RERANK_THREADS": "2",
                "RERANK_BATCH_TOKENS": "2048", "OMP_WAIT_POLICY": "PASSIVE"}
# Elsewhere (AMD EPYC: avx512_bf16 without AMX): the exact default, ONNX Runtime fp32, as
# fast as torch bf16 there and within 1e-7 of fp32.
OURS_ENV_EXACT = {"RERANK_BACKEND": "onnx", "RERANK_ONNX_MODEL": "fp32", "RERANK_THREADS": "2",
                  "OMP_WAIT_POLICY": "PASSIVE"}


def ours_env_for(cpu_flags) -> dict:
    return dict(OURS_ENV_AMX if "amx_bf16" in cpu_flags else OURS_ENV_EXACT)


# The DLC stack at its best: 2 workers x 1 torch thread each (no oversubscription), fp32.
DLC_WORKERS = 2
DLC_ENV = {"RERANK_THREADS": "1", "OMP_NUM_THREADS": "1"}
# Seconds a stack may take to load (the JVM and two workers are slow on a busy machine).
READY_TIMEOUT = 300.0


def bodies(workload: Workload) -> list[bytes]:
    """Cohere-dialect bodies (what OpenSearch's built-in connector sends), every score."""
    return [json.dumps({"query": r.query, "documents": r.documents,
                        "top_n": len(r.documents)}).encode() for r in workload.requests]


def run_level(base_url: str, payloads: list[bytes], concurrency: int, max_requests: int,
              max_seconds: float, tick: Callable[[], None] = lambda: None) -> dict:
    """Closed loop: ``concurrency`` clients until ``max_requests`` answered or time is up."""
    url = urlparse(base_url)
    lock = threading.Lock()
    latencies: list[float] = []
    errors: list[str] = []
    issued = [0]
    deadline = time.perf_counter() + max_seconds

    def next_index() -> int | None:
        with lock:
            if issued[0] >= max_requests or time.perf_counter() >= deadline:
                return None
            issued[0] += 1
            return issued[0]

    def client() -> None:
        conn = http.client.HTTPConnection(url.hostname, url.port, timeout=120)
        try:
            while (i := next_index()) is not None:
                body = payloads[i % len(payloads)]
                start = time.perf_counter()
                try:
                    conn.request("POST", "/invocations", body=body,
                                 headers={"Content-Type": "application/json",
                                          "Accept": "application/json"})
                    response = conn.getresponse()
                    response.read()
                    ok = response.status == 200
                    status = response.status
                except (OSError, http.client.HTTPException) as exc:
                    ok, status = False, type(exc).__name__
                    conn.close()
                    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=120)
                elapsed = time.perf_counter() - start
                with lock:
                    if ok:
                        latencies.append(elapsed)
                    else:
                        errors.append(str(status))
                tick()
        finally:
            conn.close()

    threads = [threading.Thread(target=client, daemon=True) for _ in range(concurrency)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - start
    return {
        "concurrency": concurrency,
        "requests": len(latencies),
        "errors": len(errors),
        "error_samples": sorted(set(errors))[:5],
        "seconds": wall,
        "rps": len(latencies) / wall if wall else 0.0,
        "pairs_per_s": len(latencies) * len(json.loads(payloads[0])["documents"]) / wall,
        "p50_ms": _ms(percentile(latencies, 50)),
        "p99_ms": _ms(percentile(latencies, 99)),
    }


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else 1000 * seconds


def warm(base_url: str, payloads: list[bytes], n: int = 4) -> None:
    run_level(base_url, payloads, concurrency=2, max_requests=n, max_seconds=60)


def ours_model_dir(model_dir: Path, env: dict, cache: Path) -> Path:
    """Our server's model directory: the ONNX export its settings ask for, else the model."""
    if env.get("RERANK_BACKEND") != "onnx":
        return model_dir
    from .peers import onnx_model_dir

    return onnx_model_dir(model_dir, cache / "onnx",
                          quantize=env.get("RERANK_ONNX_MODEL", "int8") == "int8")


@contextlib.contextmanager
def stacks(model_dir, log: Callable[[str], None], ours_env: dict, cache: Path,
           dlc: bool = True):
    """Start our server and, when its prerequisites exist, the DLC stack; yield their URLs
    (``{"ours": url, "dlc": url}``) and the reasons for any stack left out."""
    from .dlc_stack import start_dlc
    from .local_server import start_server

    urls, skipped = {}, {}
    with contextlib.ExitStack() as stack:
        env = {"SERVE_MAX_CONCURRENCY": "256", **ours_env}
        log("starting our server")
        ours_dir = ours_model_dir(Path(model_dir), env, cache)
        urls["ours"] = stack.enter_context(start_server(ours_dir, env=env,
                                                        ready_timeout=READY_TIMEOUT))
        if dlc:
            log(f"starting the DLC stack (toolkit + MMS, {DLC_WORKERS} workers)")
            try:
                urls["dlc"] = stack.enter_context(
                    start_dlc(model_dir, env=DLC_ENV, workers=DLC_WORKERS,
                              ready_timeout=READY_TIMEOUT))
            except (RuntimeError, ValueError, OSError) as exc:
                skipped["dlc"] = str(exc).splitlines()[0]
                log(f"skipped the DLC stack: {skipped['dlc']}")
        else:
            skipped["dlc"] = "not requested"
        yield urls, skipped


def run(model_dir, workload: Workload, levels: list[int], max_requests: int,
        max_seconds: float, progress, log: Callable[[str], None], *, cache: Path,
        ours_env: dict | None = None, dlc: bool = True) -> dict:
    payloads = bodies(workload)
    if ours_env is None:
        from reranker import cpu

        ours_env = ours_env_for(cpu.flags())
    ours_env = dict(ours_env)
    results: dict = {"workload": workload.name, "levels": levels,
                     "max_requests": max_requests, "max_seconds": max_seconds,
                     "ours_env": ours_env, "dlc_env": dict(DLC_ENV),
                     "dlc_workers": DLC_WORKERS, "stacks": {}}
    with stacks(model_dir, log, ours_env, cache, dlc) as (urls, skipped):
        results["skipped"] = skipped
        for url in urls.values():
            warm(url, payloads)
        task = progress.add_task("server level", total=len(levels) * len(urls) * max_requests)
        for level in levels:
            for name, url in urls.items():
                progress.update(task, description=f"server {name} c={level}")
                row = run_level(url, payloads, level, max_requests, max_seconds,
                                tick=lambda: progress.advance(task))
                results["stacks"].setdefault(name, []).append(row)
                log(f"server {name} c={level}: {row['rps']:.1f} rps, p50"
                    f" {row['p50_ms'] or 0:.0f} ms, p99 {row['p99_ms'] or 0:.0f} ms,"
                    f" {row['errors']} errors")
        progress.update(task, completed=len(levels) * len(urls) * max_requests)
    return results
