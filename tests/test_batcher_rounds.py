"""A round of the batcher's worker: every request waiting when it starts shares its batches,
and each is answered as soon as its own rows are scored, not when the round ends (a small
request that meets a large one returns after its own, shortest-first batches)."""

from __future__ import annotations

import threading
import time

import numpy as np

from reranker.batching import Batcher
from reranker.prefix_batching import PrefixBatcher
from reranker.prompts import PromptGroup

LARGE = [[1, 2, 3]] * 200
SMALL = [[1]]


class GatedForward:
    """The first forward pass waits for ``gate``, so that requests queue up behind it and
    the next round takes them together; every pass then takes ``seconds``."""

    def __init__(self, seconds: float = 0.01):
        self.gate = threading.Event()
        self.started = threading.Event()
        self.seconds = seconds
        self.passes = 0

    def __call__(self, ids, mask, types):
        self.started.set()
        self.gate.wait(30)
        time.sleep(self.seconds)
        self.passes += 1
        return np.arange(len(ids), dtype=np.float32).reshape(-1, 1)


def in_thread(call, forward: GatedForward) -> tuple[threading.Thread, dict]:
    """``call`` on a thread; its answer, and how many passes had run when it came."""
    out = {}

    def run():
        out["value"] = call()
        out["at_pass"] = forward.passes

    thread = threading.Thread(target=run)
    thread.start()
    return thread, out


def queued(worker, count: int) -> None:
    deadline = time.monotonic() + 10
    while worker._queue.qsize() < count and time.monotonic() < deadline:
        time.sleep(0.005)


def test_a_small_request_returns_before_the_large_one_of_its_round():
    forward = GatedForward()
    engine = Batcher(forward, token_budget=8, max_rows=2, pad_id=0)  # one pass: 2 rows
    blocker, _ = in_thread(lambda: engine.run([[7]], None), forward)
    forward.started.wait(10)
    large, large_out = in_thread(lambda: engine.run(LARGE, None), forward)
    queued(engine, 1)
    small, small_out = in_thread(lambda: engine.run(SMALL, None), forward)
    queued(engine, 2)
    forward.gate.set()
    small.join(30)
    large.join(30)
    blocker.join(30)
    assert small_out["value"].shape == (1, 1) and large_out["value"].shape == (200, 1)
    # The small row is the round's shortest: answered after its first pass, long before
    # the 100 passes of the large request end.
    assert small_out["at_pass"] < 50 <= large_out["at_pass"]
    engine.close()


class GatedContinuations:
    """A prefix backend whose first continuation pass waits for ``gate``."""

    def __init__(self):
        self.forward = GatedForward()

    def prefix(self, ids):
        return None

    def continuations(self, cache, prefix_length, ids, real):
        return np.repeat(self.forward(ids, None, None), 2, axis=1)


def test_a_request_for_one_query_returns_before_the_other_queries_of_its_round():
    backend = GatedContinuations()
    forward = backend.forward
    engine = PrefixBatcher(backend, token_budget=8, max_rows=2, pad_id=0)
    blocker, _ = in_thread(lambda: engine.run([PromptGroup([9], [[7]], [0])]), forward)
    forward.started.wait(10)
    small, small_out = in_thread(lambda: engine.run([PromptGroup([1], [[3]], [0])]), forward)
    queued(engine, 1)
    large, large_out = in_thread(
        lambda: engine.run([PromptGroup([2], [[4, 5, 6]] * 200, list(range(200)))]), forward)
    queued(engine, 2)
    forward.gate.set()
    small.join(30)
    large.join(30)
    blocker.join(30)
    assert small_out["value"][0].shape == (1, 2) and large_out["value"][0].shape == (200, 2)
    assert small_out["at_pass"] < 50 <= large_out["at_pass"]
    engine.close()


def test_a_request_queued_while_a_round_runs_joins_it():
    """Not only those waiting when a round begins: a small request that queues while a
    large one is being scored is answered after a pass or two, not when the round ends."""
    forward = GatedForward()
    engine = Batcher(forward, token_budget=8, max_rows=2, pad_id=0)
    large, large_out = in_thread(lambda: engine.run(LARGE, None), forward)
    forward.started.wait(10)  # the large request's round has begun: its first pass waits
    small, small_out = in_thread(lambda: engine.run(SMALL, None), forward)
    queued(engine, 1)
    forward.gate.set()
    small.join(30)
    large.join(30)
    assert small_out["value"].shape == (1, 1) and large_out["value"].shape == (200, 1)
    assert small_out["at_pass"] < 10 and large_out["at_pass"] >= 100
    engine.close()


def test_a_request_the_round_has_no_room_for_begins_the_next_and_none_passes_it():
    """A round takes newcomers only while their rows fit (as many as it began with, 256 at
    least), so the rows it began with are put off that much at most; a larger newcomer
    begins the next round, and a small one queued after it does not pass it."""
    forward = GatedForward(seconds=0.005)
    engine = Batcher(forward, token_budget=8, max_rows=2, pad_id=0)
    first, first_out = in_thread(lambda: engine.run([[1, 2, 3]] * 300, None), forward)
    forward.started.wait(10)
    second, second_out = in_thread(lambda: engine.run([[1, 2]] * 400, None), forward)
    queued(engine, 1)
    small, small_out = in_thread(lambda: engine.run(SMALL, None), forward)
    queued(engine, 2)
    forward.gate.set()
    for thread in (first, second, small):
        thread.join(60)
    # The first round: its own 150 passes, the 400 shorter rows waited for the next one.
    assert first_out["at_pass"] <= 152
    assert first_out["at_pass"] <= small_out["at_pass"] < second_out["at_pass"]
    engine.close()
