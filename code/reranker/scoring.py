"""From logits to scores: raw (a logit) and relevance (a probability in 0..1).

One label: raw = the logit, relevance = sigmoid.  Two labels (some ms-marco ELECTRA
models): raw = positive minus negative logit, relevance = softmax of the positive class;
sigmoid(raw) equals that softmax, so both scores order documents identically.
"""

from __future__ import annotations

import numpy as np

from .backends.base import ModelLoadError


class ModelShapeError(ModelLoadError, ValueError):
    """The model does not score like a cross-encoder (a load error, kept a ValueError for
    callers that caught it as one)."""


def check_num_labels(num_labels: int) -> None:
    if num_labels not in (1, 2):
        raise ModelShapeError(
            f"a cross-encoder has 1 or 2 output labels; this model has {num_labels}"
        )


def raw_scores(logits: np.ndarray) -> np.ndarray:
    logits = logits.astype(np.float64, copy=False)
    if logits.shape[1] == 1:
        return logits[:, 0]
    return logits[:, 1] - logits[:, 0]


def sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits.astype(np.float64) - logits.max(axis=1, keepdims=True)
    exp = np.exp(shifted)
    return exp / exp.sum(axis=1, keepdims=True)


def relevance_scores(logits: np.ndarray) -> np.ndarray:
    if logits.shape[1] == 1:
        return sigmoid(logits[:, 0].astype(np.float64))
    return softmax(logits)[:, 1]


def apply_function(logits: np.ndarray, function: str) -> np.ndarray:
    """The text-classification pipeline's ``function_to_apply`` over every label."""
    logits = logits.astype(np.float64)
    if function == "sigmoid":
        return sigmoid(logits)
    if function == "softmax":
        return softmax(logits)
    return logits


def pipeline_default_function(num_labels: int) -> str:
    return "sigmoid" if num_labels == 1 else "softmax"
