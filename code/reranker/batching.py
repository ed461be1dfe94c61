"""Length-sorted, token-budget batches, coalesced across concurrent callers.

Padding is the main waste of a cross-encoder: one padded batch of mixed-length pairs
computes several times its real tokens.  Rows are sorted by length and cut into batches
whose padded size (rows x longest row) stays within a token budget, each padded only to
its own longest row.  One worker thread owns the model, so callers on many threads (the
HTTP server's requests) share batches while tokenization runs on their own threads.

A caller may pass a ``threading.Event`` that cancels its rows (its client hung up): rows
not yet computed are dropped between forward passes.  ``close()`` drops every waiting
row the same way, so a shutdown waits for one forward pass at most; it also runs at
interpreter exit, so no worker thread is inside a native runtime when Python finalizes.
"""

from __future__ import annotations

import atexit
import logging
import queue
import threading
import time
import weakref
from collections.abc import Callable, Sequence

import numpy as np

from . import observe
from .backends.base import RowsDoNotFit
from .errors import Cancelled, EngineClosed, TooLargeForDevice, WorkerGone

log = logging.getLogger(__name__)

# ids [b, t], attention mask [b, t], token types [b, t] or None -> logits [b, labels]
ForwardFn = Callable[[np.ndarray, np.ndarray, "np.ndarray | None"], np.ndarray]


def plan_batches(lengths: Sequence[int], token_budget: int, max_rows: int) -> list[list[int]]:
    """Indices grouped into batches, shortest rows first, within ``token_budget``."""
    order = sorted(range(len(lengths)), key=lambda i: lengths[i])
    batches: list[list[int]] = []
    current: list[int] = []
    for i in order:
        # Sorted ascending, so this row is the longest of the batch it joins.
        if current and (lengths[i] * (len(current) + 1) > token_budget or len(current) >= max_rows):
            batches.append(current)
            current = []
        current.append(i)
    if current:
        batches.append(current)
    return batches


def pad_batch(rows: Sequence[Sequence[int]], pad_id: int, multiple: int = 1):
    """Right-padded int64 matrix and its attention mask, padded to the longest row."""
    longest = max(len(r) for r in rows)
    longest = -(-longest // multiple) * multiple
    ids = np.full((len(rows), longest), pad_id, dtype=np.int64)
    mask = np.zeros((len(rows), longest), dtype=np.int64)
    for i, row in enumerate(rows):
        ids[i, : len(row)] = row
        mask[i, : len(row)] = 1
    return ids, mask


# Rows a running round takes from callers that queue meanwhile, at least (as many as it
# began with, where more): what the rows it began with may be put off by.
ROUND_ROOM_ROWS = 256

# How often a waiting caller looks at its cancel event and at close().
_POLL_SECONDS = 0.1


class Job:
    """One caller's work on a worker's queue: what it asks, and how it ends."""

    def __init__(self, cancel: threading.Event | None = None):
        self.cancel = cancel
        self.error: BaseException | None = None
        self.done = threading.Event()
        self.queued_at = time.perf_counter()

    @property
    def cancelled(self) -> bool:
        return self.cancel is not None and self.cancel.is_set()


class _RowsJob(Job):
    def __init__(self, ids, type_ids, cancel: threading.Event | None = None):
        super().__init__(cancel)
        self.ids = ids
        self.type_ids = type_ids
        self.logits: np.ndarray | None = None


class Worker:
    """One worker thread that owns the model; callers queue jobs and wait for them.

    Every caller already waiting when the worker is free joins the same round, so
    concurrent requests share forward passes.  A job whose ``cancel`` is set, or any job
    once ``close()`` was called, is dropped before the next forward pass (``_check_live``).
    Subclasses score a round in ``_score(jobs)``; one that takes callers queued while the
    round runs (``_admitted``) appends them to ``jobs``, so the round answers them too.
    """

    thread_name = "reranker-batcher"

    def _start(self) -> None:
        # Told about every forward pass and every wait; see observe.py.
        self.observer: observe.Observer = observe.NULL
        self._queue: queue.SimpleQueue[Job | None] = queue.SimpleQueue()
        # Jobs a running round had no room for (Batcher._admitted): the next round's first.
        self._deferred: list[Job] = []
        self._closed = threading.Event()
        self._thread = threading.Thread(target=self._loop, name=self.thread_name, daemon=True)
        self._thread.start()
        _LIVE.add(self)

    def _submit(self, job: Job) -> Job:
        """Queues ``job`` and blocks until it is done.

        Raises Cancelled once its cancel event is set, EngineClosed once close() was called,
        and the job's own error."""
        if self._closed.is_set():
            raise EngineClosed()
        if not self._thread.is_alive():
            raise WorkerGone()
        if job.cancelled:
            raise Cancelled("the client closed the connection")
        self._queue.put(job)
        while not job.done.wait(_POLL_SECONDS):
            # The worker drops the job's rows when it reaches them; the caller need not wait.
            if job.cancelled:
                raise Cancelled("the client closed the connection")
            if self._closed.is_set() and not self._thread.is_alive():
                raise EngineClosed()
        if job.error is not None:
            raise job.error
        return job

    def close(self, timeout: float = 10.0) -> None:
        """Stop the worker: jobs not computed yet fail with EngineClosed; waits at most
        ``timeout`` seconds (one forward pass) for the pass in progress."""
        self._closed.set()
        self._queue.put(None)
        if self._thread is not threading.current_thread():
            self._thread.join(timeout=timeout)

    def _loop(self) -> None:
        while True:
            job = self._deferred.pop(0) if self._deferred else self._queue.get()
            if job is None:
                return
            jobs = [job]
            while True:  # take every caller that is already waiting: they share batches
                try:
                    more = self._queue.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    self._queue.put(None)
                    break
                jobs.append(more)
            taken = time.perf_counter()
            for j in jobs:
                self.observer.waited(taken - j.queued_at)
            try:
                self._score(jobs)
            except Exception as exc:
                self._score_alone(jobs, exc)
            except BaseException as exc:  # the callers re-raise it; the worker lives on
                for j in jobs:
                    if not j.done.is_set():  # one answered already keeps its answer
                        j.error = j.error or exc
            finally:
                for j in jobs:
                    j.done.set()

    def _score_alone(self, jobs: list, exc: Exception) -> None:
        """A round failed: score each of its jobs on its own, so that the request whose rows
        broke the forward pass fails alone and those that met it in the round are answered
        (a round's cost again, only when something failed)."""
        if len(jobs) == 1:
            jobs[0].error = jobs[0].error or exc
            return
        log.warning("a round of %d requests failed; scoring each alone", len(jobs),
                    exc_info=exc)
        for j in jobs:
            if j.error is not None or j.done.is_set():  # failed, or answered before the fault
                continue
            try:
                self._score([j], admit=False)  # alone: nobody joins it
            except BaseException as alone:  # the caller re-raises it
                j.error = alone

    def _score(self, jobs: list, admit: bool = True) -> None:
        raise NotImplementedError

    def _check_live(self, jobs: list[Job]) -> None:
        """Before each forward pass: fail the jobs cancelled or closed since the last one,
        so their rows are not computed."""
        for j in jobs:
            if j.done.is_set():  # answered already (its rows are all scored)
                continue
            if j.error is None and self._closed.is_set():
                j.error = EngineClosed()
            elif j.error is None and j.cancelled:
                j.error = Cancelled("the client closed the connection")


class _Runner:
    """What every way of running the model shares: its limits and how rows are padded."""

    def __init__(self, forward: ForwardFn, *, token_budget: int, max_rows: int, pad_id: int,
                 pad_multiple: int = 1):
        self._forward = forward
        self.token_budget = token_budget
        self.max_rows = max_rows
        self._pad_id = pad_id
        self._pad_multiple = pad_multiple
        self.observer: observe.Observer = observe.NULL

    def _padded(self, ids: Sequence[Sequence[int]], type_ids: Sequence[Sequence[int]] | None):
        """ids, attention mask and token types (None without types), padded together."""
        padded, mask = pad_batch(ids, self._pad_id, self._pad_multiple)
        types = None if type_ids is None else pad_batch(type_ids, 0, self._pad_multiple)[0]
        return padded, mask, types

    def _forward_observed(self, ids: Sequence[Sequence[int]],
                          type_ids: Sequence[Sequence[int]] | None) -> np.ndarray:
        padded, mask, types = self._padded(ids, type_ids)
        started = time.perf_counter()
        logits = self._forward(padded, mask, types)
        self.observer.forwarded(time.perf_counter() - started, len(ids),
                                sum(len(row) for row in ids), padded.size)
        return logits


class Batcher(_Runner, Worker):
    """Runs ``forward`` on one worker thread over batches drawn from all waiting callers."""

    def __init__(self, forward: ForwardFn, **limits):
        super().__init__(forward, **limits)
        self._start()

    def run(self, ids: list[list[int]], type_ids: list[list[int]] | None,
            cancel: threading.Event | None = None) -> np.ndarray:
        """Logits for each row, blocking until the worker has scored them."""
        if not ids:
            raise ValueError("nothing to score")
        return self._submit(_RowsJob(ids, type_ids, cancel)).logits

    def _score(self, jobs: list[_RowsJob], admit: bool = True) -> None:
        """The round's rows, shortest first, a batch at a time.  Callers that queue while it
        runs join it (``admit``), their rows sorted in with those left, while it has room
        for them (as many rows again as it began with, ROUND_ROOM_ROWS at least): a small
        request then waits for a batch, not for the round, and the rows the round began
        with are put off by that much at most.  Without newcomers the batches are
        plan_batches' own."""
        order = sorted(((j, r) for j in jobs for r in range(len(j.ids))), key=_row_length)
        room = max(len(order), ROUND_ROOM_ROWS) if admit else 0
        results = {id(j): [None] * len(j.ids) for j in jobs}
        left = {id(j): len(j.ids) for j in jobs}  # rows each job still waits for
        at = 0  # order[at:] is what is left
        while True:
            self._check_live(jobs)
            newcomers = self._admitted(room) if room > 0 else []
            for job in newcomers:
                jobs.append(job)
                results[id(job)], left[id(job)] = [None] * len(job.ids), len(job.ids)
                room -= len(job.ids)
            if newcomers:
                order = sorted(order[at:] + [(j, r) for j in newcomers
                                             for r in range(len(j.ids))], key=_row_length)
                at = 0
            members, at = self._next_batch(order, at)
            if not members:
                return
            self._forward_members(members, results)
            self._release_finished(members, results, left)

    def _next_batch(self, order: list, at: int) -> tuple[list, int]:
        """The shortest rows left from ``order[at]`` on, within the token budget and the row
        limit (as plan_batches cuts them), skipping rows whose request has failed."""
        members: list = []
        while at < len(order) and len(members) < self.max_rows:
            job, r = order[at]
            if job.error is not None:
                at += 1
                continue
            if members and len(job.ids[r]) * (len(members) + 1) > self.token_budget:
                break
            members.append(order[at])
            at += 1
        return members, at

    def _admitted(self, room: int) -> list:
        """Callers queued since the round began, in order, while their rows fit in
        ``room``; the first that does not waits to begin the next round, and those after
        it wait behind it (no later caller passes it)."""
        taken = []
        while not self._deferred:
            try:
                job = self._queue.get_nowait()
            except queue.Empty:
                break
            if job is None:  # close(): its sentinel stays for the loop
                self._queue.put(None)
                break
            if len(job.ids) > room:
                self._deferred.append(job)
                break
            self.observer.waited(time.perf_counter() - job.queued_at)
            taken.append(job)
            room -= len(job.ids)
        return taken

    def _forward_members(self, members: list, results: dict) -> None:
        """One forward pass over ``members`` (job, row), each row's logits kept in
        ``results``; rows that do not fit fail their requests, the others are scored."""
        types = (None if members[0][0].type_ids is None
                 else [j.type_ids[r] for j, r in members])
        try:
            logits = self._forward_observed([j.ids[r] for j, r in members], types)
        except RowsDoNotFit as exc:
            logits = exc.logits
            for k in exc.rows:
                job, r = members[k]
                job.error = job.error or too_large(r)
        for k, (job, r) in enumerate(members):
            results[id(job)][r] = logits[k]

    @staticmethod
    def _release_finished(members, results, left) -> None:
        """Answer each job whose last row was in this batch: a small request that shares a
        round with a large one returns after its own rows (shortest first), not the round's."""
        for job, _ in members:
            left[id(job)] -= 1
            if left[id(job)] or job.done.is_set():
                continue
            if job.error is None:
                job.logits = np.stack(results[id(job)])
            job.done.set()


class Unbatched(_Runner):
    """For a backend that forms its own batches (``batches_itself``): each request goes to
    ``forward`` whole, on the caller's thread, padded to its longest row."""

    def run(self, ids: list[list[int]], type_ids: list[list[int]] | None,
            cancel: threading.Event | None = None) -> np.ndarray:
        if not ids:
            raise ValueError("nothing to score")
        if cancel is not None and cancel.is_set():
            raise Cancelled("the client closed the connection")
        try:
            return self._forward_observed(ids, type_ids)
        except RowsDoNotFit as exc:
            raise too_large(exc.rows[0]) from None

    def close(self, timeout: float = 10.0) -> None:
        pass


def _row_length(row) -> int:
    job, r = row
    return len(job.ids[r])


def too_large(row: int) -> TooLargeForDevice:
    """The error of a request whose row ``row`` does not fit in device memory alone; the
    engine names the document it came from."""
    return TooLargeForDevice(f"row {row} does not fit in the GPU's memory even scored alone",
                             row=row)


# Every worker not yet garbage-collected, closed at interpreter exit: a worker thread
# still inside a native runtime (onnxruntime, torch) when Python finalizes can abort the
# process ("terminate called without an active exception").
_LIVE: weakref.WeakSet[Worker] = weakref.WeakSet()


@atexit.register
def _close_all() -> None:
    for batcher in list(_LIVE):
        batcher.close(timeout=5.0)
