"""A closed-loop load generator: C clients on keep-alive connections, bounded in count and
time, each sending its next request when the last one answered (127.0.0.1 only).

Used by the server-level benchmark (bench/server_bench.py) and the device check's server
part (bench/device/servers.py).
"""

from __future__ import annotations

import argparse
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
        tick: Callable[[], None] = lambda: None, timeout: float = 120.0,
        grace: float | None = None) -> dict:
    """``concurrency`` clients POST ``payloads`` in turn to ``route`` until ``max_requests``
    were sent or ``max_seconds`` passed; ``tick`` is called after every answer, and a
    request whose connection waits ``timeout`` seconds for any byte counts as an error (a
    socket timeout: a server that trickles bytes is not cut).

    The level ends ``grace`` seconds after the time cap (default: ``timeout`` + 5, at most
    GRACE_SECONDS), one deadline for every client: a request still in flight then counts as
    an error.  Failed requests enter p50/p99 at the time they took, so timeouts show there.
    """
    url = urlparse(base_url)
    if url.hostname not in ("127.0.0.1", "localhost"):
        raise ValueError(f"load is only sent to this machine, not {url.hostname}")
    tally = _Tally(max_requests, time.perf_counter() + max_seconds)

    def client() -> None:
        conn = http.client.HTTPConnection(url.hostname, url.port, timeout=timeout)
        try:
            while (i := tally.next_index()) is not None:
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
                if tally.record(status, time.perf_counter() - start):
                    tick()
        finally:
            conn.close()

    threads = [threading.Thread(target=client, daemon=True) for _ in range(concurrency)]
    start, cpu = time.perf_counter(), time.process_time()
    for t in threads:
        t.start()
    grace = min(GRACE_SECONDS, timeout + 5) if grace is None else grace
    end = start + max_seconds + grace
    for t in threads:  # one deadline for all: a late thread does not extend the next one's
        t.join(max(0.0, end - time.perf_counter()))
    # A request still in flight was sent before the time cap: it waited at least ``grace``.
    tally.close(waited=grace)
    wall = time.perf_counter() - start
    return tally.summary(concurrency, wall, pairs_per_request) | {
        # The load generator's own CPU seconds: near wall x cores, the client was the limit.
        "client_cpu_s": round(time.process_time() - cpu, 3),
    }


def parse_levels(p: argparse.ArgumentParser, raw: str) -> list[int]:
    """--levels "1,8,32": concurrency levels, each at least 1, or an argparse error (exit 2),
    not a traceback."""
    try:
        levels = [int(x) for x in raw.split(",") if x.strip()]
    except ValueError:
        levels = []
    if not levels or min(levels) < 1:
        p.error(f"--levels must be comma-separated positive integers, got {raw!r}")
    return levels


class _Tally:
    """What the clients sent and got, under one lock; closed at the level's deadline, after
    which a late answer is ignored (its request was already counted as failed)."""

    def __init__(self, max_requests: int, stop_at: float):
        self.lock = threading.Lock()
        self.max_requests, self.stop_at = max_requests, stop_at
        self.issued, self.answered, self.closed = 0, 0, False
        self.ok: list[float] = []
        self.failed: list[float] = []
        self.errors: list[str] = []

    def next_index(self) -> int | None:
        with self.lock:
            if (self.closed or self.issued >= self.max_requests
                    or time.perf_counter() >= self.stop_at):
                return None
            self.issued += 1
            return self.issued

    def record(self, status, elapsed: float) -> bool:
        """Count one answer; False once the level is closed."""
        with self.lock:
            if self.closed:
                return False
            self.answered += 1
            if status == 200:
                self.ok.append(elapsed)
            else:
                self.failed.append(elapsed)
                self.errors.append(str(status))
            return True

    def close(self, waited: float) -> None:
        """End the level; each request sent and not answered (counted under the lock, so a
        client between its answer and its exit is not counted twice) is one failed request
        that took ``waited`` seconds (a lower bound)."""
        with self.lock:
            self.closed = True
            in_flight = self.issued - self.answered
            self.errors += ["no answer by the level's deadline"] * in_flight
            self.failed += [waited] * in_flight

    def summary(self, concurrency: int, wall: float, pairs_per_request: int) -> dict:
        every = self.ok + self.failed
        return {
            "concurrency": concurrency,
            "requests": len(self.ok),
            "errors": len(self.errors),
            "error_samples": sorted(set(self.errors))[:5],
            "seconds": round(wall, 3),
            "rps": len(self.ok) / wall if wall else 0.0,
            "pairs_per_s": len(self.ok) * pairs_per_request / wall if wall else 0.0,
            "p50_ms": _ms(percentile(every, 50)),
            "p99_ms": _ms(percentile(every, 99)),
        }


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else 1000 * seconds
