"""The ranking every dialect shares: best score first, ties in input order.

Dialects rank by the raw score whichever score they report: relevance is a sigmoid of it
(the same order), but it reaches exactly 1.0 past a logit of about 37, where an LLM
reranker's log-odds or gemma's logit(Yes) can be, and would tie documents the model tells
apart."""

from __future__ import annotations

import numpy as np


def ranked(scores: np.ndarray, top_n: int | None = None) -> list[int]:
    order = sorted(range(len(scores)), key=lambda i: (-float(scores[i]), i))
    return order if top_n is None else order[:top_n]
