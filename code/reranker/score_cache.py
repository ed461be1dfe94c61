"""Rows already scored, so a repeated search costs a tokenization, not a forward pass.

Search traffic repeats itself: popular queries bring back the same hits, a retry or a
second page reranks the same candidates, a RAG pipeline asks again.  A row's logits depend
only on its token ids (and token type ids, or an LLM reranker's shared prefix) for one
loaded model, so the key is a digest of exactly those ids.  Every request option that
changes what is scored (truncation and its direction, a token cap, chunk windows, an
instruction) changes the ids, so it can never answer from a different computation.

One cache belongs to one engine (one model, one precision), holds at most ``capacity``
rows and drops the least recently used first.  It is off unless ``RERANK_CACHE_ROWS`` is
set: a cached row is the score an earlier batch computed, equal to a fresh one within the
engine's usual batch-to-batch difference (within 1e-5 in fp32).
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from collections.abc import Sequence

import numpy as np


def key(*parts: Sequence[int] | None) -> bytes:
    """A 16-byte digest of the id sequences that make a row (None parts are skipped)."""
    digest = hashlib.blake2b(digest_size=16)
    for part in parts:
        if part is None:
            continue
        ids = np.asarray(part, dtype=np.int64)
        # The length first, so [1, 2] + [3] and [1] + [2, 3] differ.
        digest.update(len(ids).to_bytes(8, "little"))
        digest.update(ids.tobytes())
    return digest.digest()


class ScoreCache:
    """A bounded map from row keys to logits rows, safe to share between threads."""

    def __init__(self, capacity: int):
        if capacity < 1:
            raise ValueError("a score cache holds at least one row")
        self.capacity = capacity
        self._rows: OrderedDict[bytes, np.ndarray] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._rows)

    def lookup(self, keys: list[bytes]) -> list[np.ndarray | None]:
        """The cached row of each key, or None; a hit becomes the most recently used."""
        found: list[np.ndarray | None] = []
        with self._lock:
            for k in keys:
                row = self._rows.get(k)
                if row is not None:
                    self._rows.move_to_end(k)
                found.append(row)
        return found

    def store(self, keys: list[bytes], rows: np.ndarray) -> None:
        """Keep each finite row (a NaN is a failure to report, never to replay)."""
        finite = np.isfinite(rows).all(axis=1)
        with self._lock:
            for k, row, ok in zip(keys, rows, finite):
                if not ok:
                    continue
                self._rows[k] = np.array(row, copy=True)
                self._rows.move_to_end(k)
            while len(self._rows) > self.capacity:
                self._rows.popitem(last=False)
