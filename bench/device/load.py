"""A closed-loop load generator: C clients on keep-alive connections, bounded in count and
time, each sending its next request when the last one answered (127.0.0.1 only)."""

from __future__ import annotations

import http.client
import threading
import time
from urllib.parse import urlparse

import numpy as np


def run_level(base_url: str, path: str, payloads: list[bytes], concurrency: int,
              max_requests: int, max_seconds: float, pairs_per_request: int) -> dict:
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
        conn = http.client.HTTPConnection(url.hostname, url.port, timeout=120)
        try:
            while (i := next_index()) is not None:
                start = time.perf_counter()
                try:
                    conn.request("POST", path, body=payloads[i % len(payloads)],
                                 headers={"Content-Type": "application/json"})
                    response = conn.getresponse()
                    response.read()
                    status = response.status
                except (OSError, http.client.HTTPException) as exc:
                    status = type(exc).__name__
                    conn.close()
                    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=120)
                elapsed = time.perf_counter() - start
                with lock:
                    if status == 200:
                        latencies.append(elapsed)
                    else:
                        errors.append(str(status))
        finally:
            conn.close()

    threads = [threading.Thread(target=client, daemon=True) for _ in range(concurrency)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join(max_seconds + 150)
    wall = time.perf_counter() - start
    return {
        "concurrency": concurrency,
        "requests": len(latencies),
        "errors": len(errors),
        "error_samples": sorted(set(errors))[:5],
        "seconds": round(wall, 3),
        "rps": len(latencies) / wall if wall else 0.0,
        "pairs_per_s": len(latencies) * pairs_per_request / wall if wall else 0.0,
        "p50_ms": _ms(latencies, 50),
        "p99_ms": _ms(latencies, 99),
    }


def _ms(latencies: list[float], q: float) -> float | None:
    return 1000 * float(np.percentile(latencies, q)) if latencies else None
