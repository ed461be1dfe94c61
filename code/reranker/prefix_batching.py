"""Batches of continuations per shared prefix, coalesced across concurrent callers.

An LLM reranker's rows share a prefix per query, so the unit of batching is a prefix and
its continuations: one worker thread owns the model, takes every waiting request, merges
groups with the same prefix (two requests for one query compute it once), runs each
prefix once and its continuations in length-sorted token-budget batches
(:func:`reranker.batching.plan_batches`), each padded only to its own longest row.
Rows of different prefixes never share a batch: they would need different caches.
"""

from __future__ import annotations

import threading
import time

import numpy as np

from .backends.base import RowsDoNotFit
from .batching import Job, Worker, plan_batches, too_large
from .errors import PayloadTooLarge
from .prompts import PromptGroup


class _GroupsJob(Job):
    def __init__(self, groups: list[PromptGroup], cancel: threading.Event | None = None):
        super().__init__(cancel)
        self.groups = groups
        self.results: list[np.ndarray] = [np.empty(0)] * len(groups)


class PrefixBatcher(Worker):
    """Runs a backend's ``prefix``/``continuations`` on one worker thread."""

    thread_name = "reranker-prefix-batcher"

    def __init__(self, backend, *, token_budget: int, max_rows: int, pad_id: int,
                 pad_multiple: int = 1):
        self._backend = backend
        self.token_budget = token_budget
        self.max_rows = max_rows
        self._pad_id = pad_id
        self._pad_multiple = pad_multiple
        self._start()

    def run(self, groups: list[PromptGroup], cancel: threading.Event | None = None
            ) -> list[np.ndarray]:
        """Judged logits ``[rows, judged]`` per group, blocking until scored."""
        if not groups or not any(g.rows for g in groups):
            raise ValueError("nothing to score")
        return self._submit(_GroupsJob(groups, cancel)).results

    def _score(self, jobs: list[_GroupsJob], admit: bool = True) -> None:
        # Rounds take no callers once begun (``admit`` unused): prefixes run in arrival
        # order, and a request is answered when its own prefixes are done.
        by_prefix: dict[tuple[int, ...], list[tuple[_GroupsJob, int]]] = {}
        left = {id(job): len(job.groups) for job in jobs}  # groups each job still waits for
        for job in jobs:
            for g, group in enumerate(job.groups):
                by_prefix.setdefault(tuple(group.prefix), []).append((job, g))
        for prefix, members in by_prefix.items():
            self._check_live(jobs)
            members = [(job, g) for job, g in members if job.error is None]
            if not members:
                continue
            rows = [row for job, g in members for row in job.groups[g].rows]
            row_jobs = [job for job, g in members for _ in job.groups[g].rows]
            try:
                logits = self.score_prefix(list(prefix), rows, row_jobs)
            except PayloadTooLarge as exc:  # the prefix itself does not fit: its requests fail
                for job, _ in members:
                    job.error = job.error or exc
                continue
            except RowsDoNotFit as exc:  # fail the requests of those rows, score the rest
                logits = exc.logits
                owners = [(job, pair) for job, g in members for pair in job.groups[g].pairs]
                for k in exc.rows:
                    job, pair = owners[k]
                    job.error = job.error or too_large(pair)
            offset = 0
            for job, g in members:
                count = len(job.groups[g].rows)
                job.results[g] = logits[offset: offset + count]
                offset += count
                left[id(job)] -= 1
            for job, _ in members:
                # Answered once its last prefix is: a request for one query need not wait
                # for the other queries of its round.
                if not left[id(job)] and job.error is None:
                    job.done.set()

    def score_prefix(self, prefix: list[int], rows: list[list[int]],
                     row_jobs: list[Job] | None = None) -> np.ndarray:
        """One prefix, computed once, and all its continuations.  With ``row_jobs`` (each
        row's job), the rows of a job cancelled or closed meanwhile are dropped before each
        batch (their logits are NaN): one query's thousand documents are one prefix."""
        jobs = list(dict.fromkeys(row_jobs)) if row_jobs is not None else []
        started = time.perf_counter()
        cache = self._backend.prefix(prefix)
        # Metrics count what was computed: the prefix pass goes with the first batch; a
        # backend that cannot share the prefix's cache runs it again in every row.
        shared = getattr(self._backend, "shares_prefix", True)
        carried = [time.perf_counter() - started, len(prefix) if shared else 0]
        per_row = 0 if shared else len(prefix)
        lengths = [len(r) for r in rows]
        out: list[np.ndarray | None] = [None] * len(rows)
        failed: list[int] = []
        for batch in plan_batches(lengths, self.token_budget, self.max_rows):
            if row_jobs is not None:
                self._check_live(jobs)
                batch = [i for i in batch if row_jobs[i].error is None]
                if not batch:
                    continue
            ids, real = self._padded([rows[i] for i in batch])
            started = time.perf_counter()
            try:
                logits = self._backend.continuations(cache, len(prefix), ids, real)
            except RowsDoNotFit as exc:  # the other rows' results are in it
                logits = exc.logits
                failed += [batch[k] for k in exc.rows]
            extra = carried[1] + per_row * len(batch)
            self.observer.forwarded(time.perf_counter() - started + carried[0], len(batch),
                                    int(real.sum()) + extra, ids.size + extra)
            carried = [0.0, 0]
            for k, i in enumerate(batch):
                out[i] = logits[k]
        logits = _stacked(out)
        if failed:
            raise RowsDoNotFit(sorted(failed), logits)
        return logits

    def _padded(self, rows: list[list[int]]) -> tuple[np.ndarray, np.ndarray]:
        longest = max(len(r) for r in rows)
        longest = -(-longest // self._pad_multiple) * self._pad_multiple
        ids = np.full((len(rows), longest), self._pad_id, dtype=np.int64)
        for i, row in enumerate(rows):
            ids[i, : len(row)] = row
        return ids, np.array([len(r) for r in rows], dtype=np.int64)


def _stacked(out: list[np.ndarray | None]) -> np.ndarray:
    """Rows' logits as one array; a row dropped (its job gone) is NaN."""
    width = next((row.shape for row in out if row is not None), (1,))
    return np.stack([np.full(width, np.nan, dtype=np.float32) if row is None else row
                     for row in out])
