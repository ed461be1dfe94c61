"""Batches of continuations per shared prefix, coalesced across concurrent callers.

An LLM reranker's rows share a prefix per query, so the unit of batching is a prefix and
its continuations: one worker thread owns the model, takes every waiting request, merges
groups with the same prefix (two requests for one query compute it once), runs each
prefix once and its continuations in length-sorted token-budget batches
(:func:`reranker.batching.plan_batches`), each padded only to its own longest row.
Rows of different prefixes never share a batch: they would need different caches.
"""

from __future__ import annotations

import queue
import threading

import numpy as np

from .batching import plan_batches
from .prompts import PromptGroup


class _Job:
    __slots__ = ("groups", "results", "error", "done")

    def __init__(self, groups: list[PromptGroup]):
        self.groups = groups
        self.results: list[np.ndarray] = []
        self.error: BaseException | None = None
        self.done = threading.Event()


class PrefixBatcher:
    """Runs a backend's ``prefix``/``continuations`` on one worker thread."""

    def __init__(self, backend, *, token_budget: int, max_rows: int, pad_id: int,
                 pad_multiple: int = 1):
        self._backend = backend
        self.token_budget = token_budget
        self.max_rows = max_rows
        self._pad_id = pad_id
        self._pad_multiple = pad_multiple
        self._queue: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._loop, name="reranker-prefix-batcher",
                                        daemon=True)
        self._thread.start()

    def run(self, groups: list[PromptGroup]) -> list[np.ndarray]:
        """Judged logits ``[rows, judged]`` per group, blocking until scored."""
        if not groups or not any(g.rows for g in groups):
            raise ValueError("nothing to score")
        job = _Job(groups)
        self._queue.put(job)
        job.done.wait()
        if job.error is not None:
            raise job.error
        return job.results

    def close(self) -> None:
        self._queue.put(None)
        self._thread.join(timeout=30)

    def _loop(self) -> None:
        while True:
            job = self._queue.get()
            if job is None:
                return
            jobs = [job]
            while True:  # every caller already waiting joins this round
                try:
                    more = self._queue.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    self._queue.put(None)
                    break
                jobs.append(more)
            self._score(jobs)

    def _score(self, jobs: list[_Job]) -> None:
        try:
            by_prefix: dict[tuple[int, ...], list[tuple[_Job, int]]] = {}
            for job in jobs:
                job.results = [np.empty(0)] * len(job.groups)
                for g, group in enumerate(job.groups):
                    by_prefix.setdefault(tuple(group.prefix), []).append((job, g))
            for prefix, members in by_prefix.items():
                rows = [row for job, g in members for row in job.groups[g].rows]
                logits = self.score_prefix(list(prefix), rows)
                offset = 0
                for job, g in members:
                    count = len(job.groups[g].rows)
                    job.results[g] = logits[offset: offset + count]
                    offset += count
        except BaseException as exc:  # the callers re-raise it; the worker lives on
            for job in jobs:
                job.error = exc
        finally:
            for job in jobs:
                job.done.set()

    def score_prefix(self, prefix: list[int], rows: list[list[int]]) -> np.ndarray:
        """One prefix, computed once, and all its continuations."""
        cache = self._backend.prefix(prefix)
        lengths = [len(r) for r in rows]
        out: list[np.ndarray | None] = [None] * len(rows)
        for batch in plan_batches(lengths, self.token_budget, self.max_rows):
            ids, real = self._padded([rows[i] for i in batch])
            logits = self._backend.continuations(cache, len(prefix), ids, real)
            for k, i in enumerate(batch):
                out[i] = logits[k]
        return np.stack(out)

    def _padded(self, rows: list[list[int]]) -> tuple[np.ndarray, np.ndarray]:
        longest = max(len(r) for r in rows)
        longest = -(-longest // self._pad_multiple) * self._pad_multiple
        ids = np.full((len(rows), longest), self._pad_id, dtype=np.int64)
        for i, row in enumerate(rows):
            ids[i, : len(row)] = row
        return ids, np.array([len(r) for r in rows], dtype=np.int64)
