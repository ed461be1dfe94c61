"""Server level: our HTTP server (exact and fast) against the toolkit + multi-model-server
(DLC) stack and Infinity at the same precision.

Ours and the DLC stack serve the same model with the same packaged handler
(code/inference.py), Infinity serves the same model directory with its own torch engine
(bench/infinity_server.py); all on 127.0.0.1, started by the test utilities
(bench/local_server.py, bench/dlc_stack.py).  A closed-loop load generator
(bench/closed_loop.py: C client threads, keep-alive connections, each sending the next
request when the last one answered) runs the 10-document OpenSearch pattern at each
concurrency level, bounded by a request count and a time cap.  Every stack stays up for the
whole run and the levels alternate between them, so background noise hits all alike.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
from collections.abc import Callable
from pathlib import Path

from . import closed_loop
from .workloads import Workload

# Our server in each precision, with RERANK_BACKEND=auto: the runtime the product picks for
# this CPU kind from its measured table (reranker.backends.choice), so the benchmark measures
# what ships.  One 2-thread intra-op team, and OpenMP threads that sleep instead of spinning
# at barriers (the server's default): without OMP_WAIT_POLICY=PASSIVE a 2-thread team
# collapses (3-10x slower) as soon as anything else wants a core.
# The servers get no RERANK_*/SERVE_* variable of the caller's environment (a stray one would
# skew the comparison), and the score cache is off in words: Infinity recomputes every pair.
OURS_ENV = {"RERANK_PRECISION": "exact", "RERANK_THREADS": "2", "OMP_WAIT_POLICY": "PASSIVE",
            "RERANK_CACHE_ROWS": "0"}
OURS_FAST_ENV = {**OURS_ENV, "RERANK_PRECISION": "fast"}
# Infinity at the same precision as each of our modes.
INFINITY_DTYPES = {"infinity": "float32", "infinity-bf16": "bfloat16"}
# Which peer each of our stacks is compared with at the same precision.
SAME_PRECISION = {"ours": "infinity", "ours-fast": "infinity-bf16"}
SAME_PRECISION_OF = {peer: ours for ours, peer in SAME_PRECISION.items()}


# The DLC stack at its best: 2 workers x 1 torch thread each (no oversubscription), fp32.
DLC_WORKERS = 2
DLC_ENV = {"RERANK_THREADS": "1", "OMP_NUM_THREADS": "1", "RERANK_CACHE_ROWS": "0"}
# Seconds a stack may take to load (the JVM and two workers are slow on a busy machine).
READY_TIMEOUT = 300.0


@dataclasses.dataclass(frozen=True)
class Target:
    """A running server: where it listens, its rerank route, and the bodies it is sent."""

    url: str
    route: str
    payloads: list[bytes]
    # What the server says it runs (our GET /info: runtime, dtype, threads, budget, cache).
    served: dict | None = None


def served_settings(base_url: str, timeout: float = 10.0) -> dict | None:
    """Our server's effective engine settings from GET /info, None if it does not say."""
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(base_url + "/info", timeout=timeout) as response:
            return json.loads(response.read()).get("engine")
    except (OSError, urllib.error.URLError, ValueError, AttributeError):
        return None


def bodies(workload: Workload) -> list[bytes]:
    """Cohere-dialect bodies (what OpenSearch's built-in connector sends), every score."""
    return [json.dumps({"query": r.query, "documents": r.documents,
                        "top_n": len(r.documents)}).encode() for r in workload.requests]


def infinity_bodies(workload: Workload) -> list[bytes]:
    from .infinity_server import body

    return [body(r.query, r.documents) for r in workload.requests]


def run_level(base_url: str, payloads: list[bytes], concurrency: int, max_requests: int,
              max_seconds: float, tick: Callable[[], None] = lambda: None,
              route: str = "/invocations") -> dict:
    """Closed loop: ``concurrency`` clients until ``max_requests`` answered or time is up."""
    pairs = len(json.loads(payloads[0])["documents"])
    return closed_loop.run(base_url, route, payloads, concurrency, max_requests, max_seconds,
                           pairs, tick)


def warm(base_url: str, payloads: list[bytes], n: int = 4, route: str = "/invocations") -> None:
    run_level(base_url, payloads, concurrency=2, max_requests=n, max_seconds=60, route=route)


def ours_model_dir(model_dir: Path, env: dict, cache: Path) -> Path:
    """Our server's model directory: the weights plus the ONNX export (fp32, or int8 when
    RERANK_ONNX_MODEL asks for it), so that RERANK_BACKEND=auto can pick any runtime."""
    from .peers import onnx_exporter, onnx_model_dir

    if onnx_exporter() is None or env.get("RERANK_BACKEND") == "torch":
        return model_dir
    return onnx_model_dir(model_dir, cache / "onnx",
                          quantize=env.get("RERANK_ONNX_MODEL") == "int8")


@contextlib.contextmanager
def stacks(model_dir, log: Callable[[str], None], ours_envs: dict[str, dict], cache: Path,
           workload: Workload, dlc: bool = True, infinity: bool = True):
    """Start our server (one per entry of ``ours_envs``), the DLC stack and Infinity where
    their venvs exist; yield ``{name: Target}`` and the reasons for any stack left out."""
    from .dlc_stack import start_dlc
    from .infinity_server import ROUTE, start_infinity
    from .local_server import start_server

    cohere, inf_bodies = bodies(workload), infinity_bodies(workload)

    targets, skipped = {}, {}
    with contextlib.ExitStack() as stack:
        for name, ours_env in ours_envs.items():
            env = {"SERVE_MAX_CONCURRENCY": "256", **ours_env}
            log(f"starting our server ({name})")
            url = stack.enter_context(start_server(ours_model_dir(Path(model_dir), env, cache),
                                                   env=env, ready_timeout=READY_TIMEOUT,
                                                   inherit_settings=False))
            targets[name] = Target(url, "/invocations", cohere, served_settings(url))
        if dlc:
            log(f"starting the DLC stack (toolkit + MMS, {DLC_WORKERS} workers)")
            try:
                url = stack.enter_context(start_dlc(model_dir, env=DLC_ENV, workers=DLC_WORKERS,
                                                    ready_timeout=READY_TIMEOUT,
                                                    inherit_settings=False))
                targets["dlc"] = Target(url, "/invocations", cohere)
            except (RuntimeError, ValueError, OSError) as exc:
                skipped["dlc"] = str(exc).splitlines()[0]
                log(f"skipped the DLC stack: {skipped['dlc']}")
        else:
            skipped["dlc"] = "not requested"
        for name, dtype in INFINITY_DTYPES.items():
            if not infinity or SAME_PRECISION_OF.get(name) not in ours_envs:
                skipped[name] = "not requested"
                continue
            log(f"starting Infinity ({dtype})")
            try:
                url = stack.enter_context(start_infinity(Path(model_dir), dtype=dtype,
                                                         ready_timeout=READY_TIMEOUT))
                targets[name] = Target(url, ROUTE, inf_bodies)
            except (RuntimeError, ValueError, OSError) as exc:
                skipped[name] = str(exc).splitlines()[0]
                log(f"skipped Infinity ({dtype}): {skipped[name]}")
        yield targets, skipped


def run(model_dir, workload: Workload, levels: list[int], max_requests: int,
        max_seconds: float, progress, log: Callable[[str], None], *, cache: Path,
        ours_env: dict | None = None, dlc: bool = True, infinity: bool = True,
        fast: bool = True) -> dict:
    ours_envs = {"ours": dict(ours_env) if ours_env is not None else dict(OURS_ENV)}
    if fast:
        ours_envs["ours-fast"] = dict(OURS_FAST_ENV)
    results: dict = {"workload": workload.name, "levels": levels,
                     "max_requests": max_requests, "max_seconds": max_seconds,
                     "ours_env": ours_envs["ours"], "ours_envs": ours_envs,
                     "dlc_env": dict(DLC_ENV), "dlc_workers": DLC_WORKERS,
                     "infinity_dtypes": dict(INFINITY_DTYPES), "stacks": {}}
    with stacks(model_dir, log, ours_envs, cache, workload, dlc, infinity) as (targets,
                                                                              skipped):
        results["skipped"] = skipped
        results["served"] = {n: t.served for n, t in targets.items() if t.served}
        for target in targets.values():
            warm(target.url, target.payloads, route=target.route)
        task = progress.add_task("server level",
                                 total=len(levels) * len(targets) * max_requests)
        for level in levels:
            for name, target in targets.items():
                progress.update(task, description=f"server {name} c={level}")
                row = run_level(target.url, target.payloads, level, max_requests, max_seconds,
                                tick=lambda: progress.advance(task), route=target.route)
                results["stacks"].setdefault(name, []).append(row)
                log(f"server {name} c={level}: {row['rps']:.1f} rps, p50"
                    f" {row['p50_ms'] or 0:.0f} ms, p99 {row['p99_ms'] or 0:.0f} ms,"
                    f" {row['errors']} errors")
        progress.update(task, completed=len(levels) * len(targets) * max_requests)
    return results
