"""CUDA out-of-memory: split the batch, remember the size that fits, fail only what cannot.

A forward pass that runs out of memory is retried in halves, but only after its
``except`` block is left: the exception's traceback holds the failed pass's frames and so
its activations, which would otherwise stay allocated while the halves run.  Each part is
padded only to its own longest row, so the long rows of a length-sorted batch go apart
from the short ones.  The size that failed lowers a cap on padded tokens (rows x width)
per pass (unless the pass held a row that fails even alone), so every later batch is cut
under it before it runs instead of failing once first.  The cap is never raised again
(memory lost to fragmentation or to another process seldom comes back); a restart resets
it.  A row that does not fit even alone is reported in
:class:`~reranker.backends.base.RowsDoNotFit` with the other rows' results, so only its
request fails.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import numpy as np
import torch

from .base import RowsDoNotFit

log = logging.getLogger(__name__)

# Runs rows [start, stop) of the batch, padded to ``width``: logits [stop - start, labels].
RowsFn = Callable[[int, int, int], np.ndarray]


def padded_widths(lengths: np.ndarray, multiple: int, limit: int) -> np.ndarray:
    """Each row's real length rounded up to the padding multiple, within the batch width."""
    return np.minimum(-(-np.asarray(lengths) // multiple) * multiple, limit)


class MemoryCap:
    """The learned limit on padded tokens per forward pass (0: none learned yet)."""

    def __init__(self) -> None:
        self.tokens = 0
        self.failures = 0

    def run(self, call: RowsFn, widths: np.ndarray, labels: int) -> np.ndarray:
        """Logits of every row (``widths[i]``: row i's padded width), in passes under the
        cap, halving a pass that runs out of memory.  Raises RowsDoNotFit for the rows that
        do not fit alone, after every other row was scored."""
        out = np.full((len(widths), labels), np.nan, dtype=np.float32)
        pending = self._plan(widths)[::-1]
        failed: list[int] = []
        too_big: list[tuple[int, int, int]] = []  # multi-row passes that ran out of memory
        while pending:
            start, stop = pending.pop()
            width = int(widths[start:stop].max())
            logits = self._attempt(call, start, stop, width)
            if logits is not None:
                out[start:stop] = logits
            elif stop - start == 1:
                failed.append(start)
            else:
                too_big.append((start, stop, (stop - start) * width))
                middle = (start + stop) // 2
                pending += [(middle, stop), (start, middle)]
        # A pass that held a row too big even alone says nothing about batches without it.
        for start, stop, tokens in too_big:
            if not any(start <= row < stop for row in failed):
                self._lower(tokens)
        if failed:
            raise RowsDoNotFit(failed, out)
        return out

    def _plan(self, widths: np.ndarray) -> list[tuple[int, int]]:
        """Consecutive parts whose rows x longest width stay within the cap (one row at
        least); the whole batch while no cap is learned."""
        if not self.tokens:
            return [(0, len(widths))]
        parts, start, longest = [], 0, 0
        for i, width in enumerate(widths):
            longest = max(longest, int(width))
            if i > start and (i + 1 - start) * longest > self.tokens:
                parts.append((start, i))
                start, longest = i, int(width)
        parts.append((start, len(widths)))
        return parts

    def _attempt(self, call: RowsFn, start: int, stop: int, width: int) -> np.ndarray | None:
        try:
            return call(start, stop, width)
        except torch.cuda.OutOfMemoryError:
            pass  # handled below, once the exception and its traceback are released
        self.failures += 1
        torch.cuda.empty_cache()
        return None

    def _lower(self, tokens: int) -> None:
        halved = tokens // 2
        if not self.tokens or halved < self.tokens:
            self.tokens = halved
            log.warning("CUDA out of memory at %d padded tokens: passes are now capped at %d",
                        tokens, halved, extra={"event": "memory_cap", "cap_tokens": halved})
