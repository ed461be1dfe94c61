"""The batcher's cancellation and close, and the engine's clean exit: rows of a request
whose client went away are not computed, close() fails what waits and returns within its
timeout, and a process that exits with scoring threads still running exits 0."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
import weakref

import numpy as np
import pytest

from reranker import batching
from reranker.batching import Batcher
from reranker.errors import Cancelled, EngineClosed


class SlowForward:
    """A forward pass that takes ``seconds`` and counts the rows it computed."""

    def __init__(self, seconds: float = 0.02):
        self.seconds = seconds
        self.rows = 0
        self.started = threading.Event()

    def __call__(self, ids, mask, types):
        self.started.set()
        time.sleep(self.seconds)
        self.rows += len(ids)
        return np.zeros((len(ids), 1), dtype=np.float32)


def batcher(forward) -> Batcher:
    # One row per forward pass, so each row is a point where cancellation can act.
    return Batcher(forward, token_budget=8, max_rows=1, pad_id=0)


ROWS = [[1, 2, 3]] * 200


def test_a_cancelled_request_stops_computing_between_forward_passes():
    forward = SlowForward()
    engine = batcher(forward)
    cancel = threading.Event()
    out = {}

    def run():
        try:
            engine.run(ROWS, None, cancel)
        except Cancelled as exc:
            out["error"] = exc

    thread = threading.Thread(target=run)
    thread.start()
    forward.started.wait(10)
    cancel.set()
    thread.join(10)
    assert isinstance(out.get("error"), Cancelled) and out["error"].status == 499
    time.sleep(0.2)
    assert forward.rows < len(ROWS) // 2  # the rest were dropped, not computed
    assert engine.run([[1]], None).shape == (1, 1)  # and it serves the next caller
    engine.close()


def test_an_already_cancelled_request_is_never_queued():
    forward = SlowForward()
    engine = batcher(forward)
    cancel = threading.Event()
    cancel.set()
    with pytest.raises(Cancelled):
        engine.run(ROWS, None, cancel)
    assert forward.rows == 0
    engine.close()


def test_others_in_the_same_batches_are_still_scored():
    forward = SlowForward(0.005)
    engine = batcher(forward)
    cancel = threading.Event()
    results = {}

    def run(name, rows, token):
        try:
            results[name] = engine.run(rows, None, token)
        except Cancelled:
            results[name] = "cancelled"

    threads = [threading.Thread(target=run, args=("gone", ROWS, cancel)),
               threading.Thread(target=run, args=("kept", [[1, 2]] * 20, None))]
    for thread in threads:
        thread.start()
    cancel.set()
    for thread in threads:
        thread.join(30)
    assert results["gone"] == "cancelled"
    assert results["kept"].shape == (20, 1)
    engine.close()


def test_close_fails_waiting_requests_within_its_timeout():
    forward = SlowForward()
    engine = batcher(forward)
    errors = []

    def run():
        try:
            engine.run(ROWS, None)
        except EngineClosed as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(4)]
    for thread in threads:
        thread.start()
    forward.started.wait(10)
    started = time.monotonic()
    engine.close(timeout=5)
    assert time.monotonic() - started < 5  # one forward pass, not 800 rows
    for thread in threads:
        thread.join(10)
    assert len(errors) == 4 and errors[0].status == 503
    with pytest.raises(EngineClosed):
        engine.run([[1]], None)  # closed for good


def test_interpreter_exit_closes_every_live_batcher(monkeypatch):
    engine = batcher(SlowForward(0))
    assert engine in batching._LIVE
    # Only this batcher: the session's shared engines must outlive this test.
    monkeypatch.setattr(batching, "_LIVE", weakref.WeakSet([engine]))
    batching._close_all()
    assert not engine._thread.is_alive()


EXIT_SCRIPT = """
import sys, threading
from reranker.engine import Reranker
from reranker.settings import Settings

engine = Reranker.from_dir(sys.argv[1], Settings(batch_tokens=64))

def score():
    while True:
        try:
            engine.score("a query", ["a document " * 50] * 50)
        except Exception:
            return

for _ in range(4):
    threading.Thread(target=score, daemon=True).start()
engine.score("q", ["d"])
print("exiting")
"""


def test_a_process_that_exits_while_scoring_exits_0(bert_dir):
    """Daemon threads still scoring at exit: the batcher is closed at exit, so no thread is
    inside a native runtime when Python finalizes (which can abort with SIGABRT)."""
    done = subprocess.run([sys.executable, "-c", EXIT_SCRIPT, str(bert_dir)],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "terminate called" not in done.stderr
    assert done.stdout.strip() == "exiting"


class PoisonedForward(SlowForward):
    """Fails any forward pass that holds a row starting with token 666."""

    def __call__(self, ids, mask, types):
        out = super().__call__(ids, mask, types)
        if any(row[0] == 666 for row in ids):
            raise RuntimeError("index out of range in self")
        return out


def test_a_request_that_breaks_the_forward_pass_fails_alone():
    """Requests that share a round share batches: the one whose rows break the model
    fails, and the others in that round are still answered."""
    forward = PoisonedForward(0.2)
    engine = Batcher(forward, token_budget=64, max_rows=8, pad_id=0)
    results = {}

    def run(name, rows):
        try:
            results[name] = engine.run(rows, None).shape
        except RuntimeError as exc:
            results[name] = str(exc)

    first = threading.Thread(target=run, args=("first", [[1, 2]]))
    first.start()
    forward.started.wait(10)  # the worker is busy: the next two wait and share a round
    threads = [threading.Thread(target=run, args=("good", [[1, 2, 3]] * 2)),
               threading.Thread(target=run, args=("bad", [[666, 2]]))]
    for thread in threads:
        thread.start()
    for thread in [first, *threads]:
        thread.join(30)
    assert results == {"first": (1, 1), "good": (2, 1), "bad": "index out of range in self"}
    engine.close()


def test_a_process_forked_after_loading_is_refused_not_left_waiting():
    """Threads do not survive a fork (multi-model-server forks its workers after loading
    with MMS_PRELOAD_MODEL=true): the child's request is refused at once, 503."""
    import multiprocessing

    engine = batcher(SlowForward(0))

    def child(out):
        try:
            engine.run([[1, 2]], None)
            out.put("scored")
        except Exception as exc:  # noqa: BLE001 - what the child saw goes back whole
            out.put((type(exc).__name__, getattr(exc, "status", None)))

    fork = multiprocessing.get_context("fork")
    out = fork.Queue()
    process = fork.Process(target=child, args=(out,))
    process.start()
    try:
        assert out.get(timeout=30) == ("WorkerGone", 503)
    finally:
        process.join(10)
        engine.close()
    assert process.exitcode == 0


class SlowContinuations:
    """An LLM backend whose continuations take ``seconds`` per batch and are counted."""

    def __init__(self, seconds: float = 0.02):
        self.seconds = seconds
        self.rows = 0
        self.started = threading.Event()

    def prefix(self, ids):
        return "cache"

    def continuations(self, cache, prefix_length, ids, real):
        self.started.set()
        time.sleep(self.seconds)
        self.rows += len(ids)
        return np.zeros((len(ids), 2), dtype=np.float32)


def test_an_llm_request_stops_between_batches_of_its_one_prefix():
    """One query's documents share one prefix: a hang-up still stops the batches left."""
    from reranker.prefix_batching import PrefixBatcher
    from reranker.prompts import PromptGroup

    backend = SlowContinuations()
    engine = PrefixBatcher(backend, token_budget=8, max_rows=1, pad_id=0)
    cancel = threading.Event()
    group = PromptGroup(prefix=[1, 2], rows=[[3, 4]] * 200, pairs=list(range(200)))
    out = {}

    def run():
        try:
            engine.run([group], cancel)
        except Cancelled as exc:
            out["error"] = exc

    thread = threading.Thread(target=run)
    thread.start()
    backend.started.wait(10)
    cancel.set()
    thread.join(10)
    assert isinstance(out.get("error"), Cancelled)
    kept = PromptGroup(prefix=[1, 2], rows=[[3]] * 3, pairs=[0, 1, 2])
    assert engine.run([kept])[0].shape == (3, 2)  # served once the worker is free
    assert backend.rows < 100  # the cancelled rows left were dropped, not computed
    engine.close()
