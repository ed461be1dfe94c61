"""Small statistics: percentiles, score deviation and rank agreement."""

from __future__ import annotations

import numpy as np


def percentile(values, q: float) -> float | None:
    values = list(values)
    return float(np.percentile(values, q)) if values else None


def kendall_tau(a, b) -> float:
    """Kendall's tau-b between two score lists (1.0 = same order)."""
    from scipy.stats import kendalltau

    if len(a) < 2:
        return 1.0
    tau = kendalltau(a, b).statistic
    return 1.0 if np.isnan(tau) else float(tau)


def top_k_overlap(a, b, k: int) -> float:
    """Share of the reference's top k that the other ranking also puts in its top k."""
    k = min(k, len(a))
    top_a = set(np.argsort(-np.asarray(a), kind="stable")[:k].tolist())
    top_b = set(np.argsort(-np.asarray(b), kind="stable")[:k].tolist())
    return len(top_a & top_b) / k


class Deviation:
    """Accumulates, over requests, how far one peer's scores are from a reference's."""

    def __init__(self, top_k: int = 10):
        self.top_k = top_k
        self.max_abs = 0.0
        self.taus: list[float] = []
        self.overlaps: list[float] = []
        self.spread: list[float] = []

    def add(self, scores, reference) -> None:
        scores, reference = np.asarray(scores, float), np.asarray(reference, float)
        self.max_abs = max(self.max_abs, float(np.max(np.abs(scores - reference))))
        self.taus.append(kendall_tau(scores, reference))
        self.overlaps.append(top_k_overlap(reference, scores, self.top_k))
        self.spread.append(float(np.std(reference)))

    def summary(self) -> dict:
        if not self.taus:
            return {}
        spread = float(np.mean(self.spread))
        return {
            "max_abs": self.max_abs,
            "max_abs_over_spread": self.max_abs / spread if spread else None,
            "kendall_tau_mean": float(np.mean(self.taus)),
            "kendall_tau_min": float(np.min(self.taus)),
            f"top{self.top_k}_overlap_mean": float(np.mean(self.overlaps)),
            f"top{self.top_k}_overlap_min": float(np.min(self.overlaps)),
            "reference_score_std": spread,
        }
