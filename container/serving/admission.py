"""A bounded number of requests in flight: beyond it, 503 at once instead of growing latency.

A slot is held until the request's work has ended, not until its answer is written: a
client that hangs up (or a request past its deadline) keeps its slot until the thread
working on it stops, so the work queued behind the slots never outgrows the bound.
Only the event loop touches the counter (done callbacks run on it), so it needs no lock.
"""

from __future__ import annotations

from collections.abc import Callable

from .errors import Overloaded


class Admission:
    def __init__(self, limit: int):
        self.limit = limit
        self.in_flight = 0

    def take(self) -> Callable[[], None]:
        """A slot, or Overloaded; returns the call that gives it back (once, however often
        it is called)."""
        if self.in_flight >= self.limit:
            raise Overloaded(f"{self.in_flight} requests in flight, the limit "
                             f"(SERVE_MAX_CONCURRENCY); retry shortly")
        self.in_flight += 1
        given_back = False

        def give_back(*_) -> None:
            nonlocal given_back
            if not given_back:
                given_back = True
                self.in_flight -= 1
        return give_back
