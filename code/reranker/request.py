"""The one internal request and result that every dialect parses into and renders from."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import numpy as np


@dataclasses.dataclass
class RerankRequest:
    """What to score and how to answer, independent of the wire format.

    ``pairs`` are (query, text) in the order the model sees them; ``documents`` keeps what
    the client sent for each pair so a dialect can echo it back.
    """

    dialect: str
    pairs: list[tuple[str, str]]
    documents: Sequence[Any] = ()
    # The request's name for the list of texts, so errors name the client's own field.
    documents_field: str = "documents"
    # ... and for the query of pair {i} (formatted with the pair's index).
    query_field: str = "query"
    # ... and for the document of pair {i}, where it is not documents_field[i] (an HF
    # pipeline's inputs[i].text_pair).
    document_field: str | None = None
    top_n: int | None = None
    return_documents: bool = False
    # None: the engine's setting; "truncate" or "chunk" when the request says so.
    long_documents: str | None = None
    max_chunks: int | None = None
    # False: refuse pairs longer than the model's limit instead of cutting them (TEI).
    truncate: bool = True
    truncation_direction: str = "right"
    # The client's own cap on a pair's tokens (vLLM's truncate_prompt_tokens); the model's
    # limit still applies when it is lower.
    max_tokens: int | None = None
    # The client's cap on each document's own tokens (Cohere's max_tokens_per_doc), applied
    # before the pair or prompt is fitted to the model's limit; None: no cap.
    max_document_tokens: int | None = None
    # LLM rerankers' task instruction (None: the setting's, else the profile's default),
    # and the request's name for it, so errors name the client's own field.
    instruction: str | None = None
    instruction_field: str = "instruction"
    # Dialect-specific switches (raw_scores, function_to_apply, ...), read by its renderer.
    options: dict = dataclasses.field(default_factory=dict)

    def document_template(self) -> str:
        """The field of document ``{i}``, to format with its index."""
        return self.document_field or self.documents_field + "[{i}]"

    def document_name(self, i: int) -> str:
        """The field of document ``i``, as errors name it."""
        return self.document_template().format(i=i)


@dataclasses.dataclass
class RerankResult:
    """Model outputs for each pair of a request, in the request's order.

    ``logits`` has one row per pair (the best chunk's row in chunk mode) and one column per
    label; ``raw`` and ``relevance`` are the two scores dialects choose from.
    """

    request: RerankRequest
    logits: np.ndarray
    raw: np.ndarray
    relevance: np.ndarray
    tokens: int
    model: str
    id2label: dict = dataclasses.field(default_factory=dict)
