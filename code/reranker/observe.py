"""What the engine tells an observer about its work: timings and batch shapes.

The engine stays free of any metrics library (it also runs inside the HF DLC, where none
may be installed).  A server that exports metrics hands an object with these
methods to :meth:`reranker.engine.Reranker.observe` (or only those it listens to); by
default nobody listens.

Observers are called on the hot path, from request threads and from the batcher's
worker thread at once: they must be thread-safe and cheap.  One that raises is logged
once and then ignored, so it can never fail a request.
"""

from __future__ import annotations

import logging
from typing import Protocol

log = logging.getLogger(__name__)


class Observer(Protocol):
    def tokenized(self, seconds: float, rows: int, tokens: int) -> None:
        """One request's pairs became ``rows`` model rows of ``tokens`` tokens in all."""

    def waited(self, seconds: float) -> None:
        """One request waited this long in the batcher before the worker took it."""

    def forwarded(self, seconds: float, rows: int, tokens: int, padded_tokens: int) -> None:
        """One forward pass: ``rows`` rows holding ``tokens`` real tokens, computed as
        ``padded_tokens`` (rows x the padded length)."""

    def cached(self, hits: int, misses: int) -> None:
        """One request's rows looked up in the score cache (RERANK_CACHE_ROWS)."""


class NullObserver:
    """The default: nothing listens."""

    def tokenized(self, seconds: float, rows: int, tokens: int) -> None:
        pass

    def waited(self, seconds: float) -> None:
        pass

    def forwarded(self, seconds: float, rows: int, tokens: int, padded_tokens: int) -> None:
        pass

    def cached(self, hits: int, misses: int) -> None:
        pass


NULL = NullObserver()


class Guarded:
    """An observer whose failures are logged once and never reach the caller."""

    def __init__(self, observer: Observer):
        self._observer = observer
        self._failed = False

    def tokenized(self, seconds: float, rows: int, tokens: int) -> None:
        self._call("tokenized", seconds, rows, tokens)

    def waited(self, seconds: float) -> None:
        self._call("waited", seconds)

    def forwarded(self, seconds: float, rows: int, tokens: int, padded_tokens: int) -> None:
        self._call("forwarded", seconds, rows, tokens, padded_tokens)

    def cached(self, hits: int, misses: int) -> None:
        self._call("cached", hits, misses)

    def _call(self, name: str, *args) -> None:
        method = getattr(self._observer, name, None)
        if method is None:  # an observer listens only to what it defines
            return
        try:
            method(*args)
        except Exception:
            if not self._failed:  # a broken observer would otherwise log on every batch
                self._failed = True
                log.exception("the engine's observer failed; its later failures are not "
                              "logged", extra={"event": "observer_failed"})


def guarded(observer: Observer | None) -> Observer:
    return NULL if observer is None else Guarded(observer)
