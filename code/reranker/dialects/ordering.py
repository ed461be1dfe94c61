"""The ranking every dialect shares: best score first, ties in input order."""

from __future__ import annotations

import numpy as np


def ranked(scores: np.ndarray, top_n: int | None = None) -> list[int]:
    order = sorted(range(len(scores)), key=lambda i: (-float(scores[i]), i))
    return order if top_n is None else order[:top_n]
