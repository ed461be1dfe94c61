"""A bounded number of requests in flight: beyond it, 503 at once instead of growing latency.

Admitted requests wait in the engine's batcher, so the bound is also the queue's length.
Only the event loop touches the counter, so it needs no lock.
"""

from __future__ import annotations

import contextlib

from .errors import Overloaded


class Admission:
    def __init__(self, limit: int):
        self.limit = limit
        self.in_flight = 0

    @contextlib.contextmanager
    def slot(self):
        if self.in_flight >= self.limit:
            raise Overloaded(f"{self.in_flight} requests in flight, the limit "
                             f"(SERVE_MAX_CONCURRENCY); retry shortly")
        self.in_flight += 1
        try:
            yield
        finally:
            self.in_flight -= 1
