"""The shutdown deadline: from SIGTERM to exit within SERVE_SHUTDOWN_TIMEOUT, whatever the load.

SageMaker sends SIGKILL 30 s after SIGTERM.  The deadline is spent in three phases:

1. drain: uvicorn stops accepting and waits for requests in flight, until the deadline less
   a margin; those still running then answer 503 ``shutting_down``;
2. close: the app's shutdown closes the engine, whose batcher drops the rows not computed
   yet and stops after the forward pass in progress (half the margin at most);
3. a watchdog, armed by the signal, ends the process at the deadline if anything (a hook
   stuck in native code, a close that hangs) still holds it.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import threading

import uvicorn

log = logging.getLogger("serving")


@dataclasses.dataclass(frozen=True)
class Phases:
    drain: float
    close: float


def phases(deadline: float) -> Phases:
    margin = min(2.0, deadline / 4)
    return Phases(drain=deadline - margin, close=margin / 2)


class DeadlineServer(uvicorn.Server):
    """uvicorn's server, plus the watchdog that the first SIGTERM or SIGINT arms."""

    def __init__(self, config: uvicorn.Config, deadline: float):
        super().__init__(config)
        self.deadline = deadline
        self._watchdog: threading.Timer | None = None

    def handle_exit(self, sig, frame) -> None:
        if self._watchdog is None:
            self._watchdog = threading.Timer(self.deadline, _expire, args=(self.deadline,))
            self._watchdog.daemon = True
            self._watchdog.start()
        super().handle_exit(sig, frame)


def _expire(deadline: float) -> None:
    # Still 0: requests in flight were answered 503 at the drain's end; what held the
    # process past the deadline is named by the error line.
    log.error("shutdown deadline passed: exiting now", extra={
        "event": "stop", "exit_code": 0, "deadline_seconds": deadline,
        "threads": sorted(t.name for t in threading.enumerate())})
    logging.shutdown()
    os._exit(0)
