"""The backend contract: what the engine may ask of any model runtime.

Like text-embeddings-inference's ``Backend`` trait, a backend states its health, its batch
limits and padding, and turns padded int64 batches into logits.  The engine reads these
attributes and nothing else; a new runtime implements this Protocol and registers a
factory in :data:`reranker.loading.BACKENDS`.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np


class ModelLoadError(RuntimeError):
    """The model directory cannot be served; the message says what is missing.

    The one error type of loading: every backend and the model-directory checks raise it
    (or a subclass), so a server and the hooks catch one type."""


class RowsDoNotFit(RuntimeError):
    """Rows of one forward pass that ran out of device memory even alone.

    ``rows`` are their indices in the batch; ``logits`` holds every other row's result
    (NaN for these), so the runner fails only the requests that sent them."""

    def __init__(self, rows: list[int], logits: np.ndarray):
        super().__init__(f"rows {rows} do not fit in device memory even alone")
        self.rows = rows
        self.logits = logits


# What a servable checkpoint looks like, for the errors that refuse one.
WHAT_A_RERANKER_IS = (
    "a cross-encoder checkpoint is a *ForSequenceClassification model whose files hold its"
    " trained head (classifier.* or score.*: config.json's architectures names it), or a"
    " causal-LM reranker of a supported family (docs/models.md)"
)


@runtime_checkable
class Backend(Protocol):
    # Registry name: "torch", "onnx", "openvino".
    name: str
    # Where it computes, always a plain string: "cpu" or "cuda" (never a torch.device).
    device_type: str
    # What it computes in: "float32", "bfloat16", "float16", "int8".
    dtype: str
    num_labels: int
    # Sequence lengths are padded up to a multiple of this (tensor cores like 8).
    pad_multiple: int
    # Preferred padded tokens per forward pass; 0 takes the settings' default for the
    # device and dtype.  RERANK_BATCH_TOKENS, when set, wins over both.
    batch_tokens: int
    # True when forward() accepts any number of rows and forms its own batches (a
    # vLLM-style backend): the engine then skips its Batcher and calls forward directly.
    batches_itself: bool

    def forward(self, ids: np.ndarray, mask: np.ndarray,
                types: np.ndarray | None) -> np.ndarray:
        """Logits ``[rows, num_labels]`` (float32) for right-padded ``[rows, tokens]`` int64
        ids, attention mask and token types (None when the model has none)."""

    def health(self) -> bool:
        """True while the backend can score (a lost GPU makes it False)."""

    def describe(self) -> dict:
        """Facts for logs and /ping-style reports: runtime, versions, threads."""


def first_line(exc: BaseException) -> str:
    """A runtime's error, cut to one readable line for a ModelLoadError message."""
    lines = str(exc).strip().splitlines()
    return lines[0][:300] if lines else type(exc).__name__
