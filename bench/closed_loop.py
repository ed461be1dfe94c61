"""A closed-loop load generator: C clients on keep-alive connections, bounded in count and
time, each sending its next request when the last one answered (127.0.0.1 only).

Used by the server-level benchmark (bench/server_bench.py) and the device check's server
part (bench/device/servers.py).
"""

from __future__ import annotations

import http.client
import threading
import time
from collections.abc import Callable
from urllib.parse import urlparse

from .metrics import percentile

HEADERS = {"Content-Type": "application/json", "Accept": "application/json"}
# Seconds a client may still take after the time cap (its last request in flight).
GRACE_SECONDS = 150


def run(base_url: str, route: str, payloads: list[bytes], concurrency: int, max_requests: int,
        max_seconds: float, pairs_per_request: int,
        tick: Callable[[], None] = lambda: None, timeout: float = 120.0) -> dict:
    """``concurrency`` clients POST ``payloads`` in turn to ``route`` until ``max_requests``
    were sent or ``max_seconds`` passed; ``tick`` is called after every answer, and a
    request whose connection waits ``timeout`` seconds for any byte counts as an error (a
    socket timeout: a server that trickles bytes is not cut)."""
    url = urlparse(base_url)
    if url.hostname not in ("127.0.0.1", "localhost"):
        raise ValueError(f"load is only sent to this machine, not {url.hostname}")
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
        conn = http.client.HTTPConnection(url.hostname, url.port, timeout=timeout)
        try:
            while (i := next_index()) is not None:
                start = time.perf_counter()
                try:
                    conn.request("POST", route, body=payloads[i % len(payloads)],
                                 headers=HEADERS)
                    response = conn.getresponse()
                    response.read()
                    status = response.status
                except (OSError, http.client.HTTPException) as exc:
                    status = type(exc).__name__
                    conn.close()
                    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=timeout)
                elapsed = time.perf_counter() - start
                with lock:
                    if status == 200:
                        latencies.append(elapsed)
                    else:
                        errors.append(str(status))
                tick()
        finally:
            conn.close()

    threads = [threading.Thread(target=client, daemon=True) for _ in range(concurrency)]
    start, cpu = time.perf_counter(), time.process_time()
    for t in threads:
        t.start()
    for t in threads:
        t.join(max_seconds + min(GRACE_SECONDS, timeout + 5))
    wall = time.perf_counter() - start
    return {
        "concurrency": concurrency,
        "requests": len(latencies),
        "errors": len(errors),
        "error_samples": sorted(set(errors))[:5],
        "seconds": round(wall, 3),
        "rps": len(latencies) / wall if wall else 0.0,
        "pairs_per_s": len(latencies) * pairs_per_request / wall if wall else 0.0,
        "p50_ms": _ms(percentile(latencies, 50)),
        "p99_ms": _ms(percentile(latencies, 99)),
        # The load generator's own CPU seconds: near wall x cores, the client was the limit.
        "client_cpu_s": round(time.process_time() - cpu, 3),
    }


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else 1000 * seconds
