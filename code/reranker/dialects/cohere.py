"""Cohere / Together / Jina rerank API (and OpenSearch's built-in cohere.rerank functions).

Request ``{"query", "documents": [str | object], "top_n"?, "return_documents"?,
"rank_fields"?, "max_tokens_per_doc"?, "model"?}``; response sorted by ``relevance_score``
(0..1), cut to top_n.  ``max_tokens_per_doc`` (Cohere v2) keeps each document's first that
many tokens of the model's own tokenizer; absent or null, only the model's limit cuts.
Infinity and vLLM answer this shape on /rerank too; their ``raw_scores`` (Infinity) and
``use_activation: false`` (vLLM) ask for raw logits, vLLM's ``truncate_prompt_tokens`` caps
each pair's tokens.
"""

from __future__ import annotations

import uuid

from ..errors import InvalidRequest
from ..request import RerankRequest, RerankResult
from ..wire import as_float
from . import fields
from .ordering import ranked

NAME = "cohere"


def parse(body: dict) -> RerankRequest:
    query = fields.text(body, "query")
    documents = fields.array(body, "documents")
    rank_fields = _rank_fields(body)
    texts = [_document_text(doc, i, rank_fields) for i, doc in enumerate(documents)]
    fields.model(body)
    mode, chunks = fields.long_documents(body)
    return RerankRequest(
        dialect=NAME,
        pairs=[(query, t) for t in texts],
        documents=documents,
        top_n=fields.positive_int(body, "top_n"),
        return_documents=fields.boolean(body, "return_documents", False),
        long_documents=mode,
        max_chunks=chunks,
        max_tokens=fields.token_cap(body),
        max_document_tokens=fields.positive_int(body, "max_tokens_per_doc"),
        instruction=fields.instruction(body),
        options={"raw_scores": fields.boolean(body, "raw_scores", False)
                 or not fields.activation(body)},
    )


def _rank_fields(body: dict) -> list[str] | None:
    if body.get("rank_fields") is None:
        return None
    return fields.strings(body, "rank_fields", documents=False)


def _document_text(doc, index: int, rank_fields: list[str] | None) -> str:
    if isinstance(doc, str):
        return doc
    where = f"documents[{index}]"
    if not isinstance(doc, dict):
        raise InvalidRequest(f"{where} must be a string or an object", field=where)
    names = rank_fields or ["text"]
    values = []
    for name in names:
        value = doc.get(name)
        if not isinstance(value, str):
            state = "is missing" if value is None else "is not a string"
            hint = "" if rank_fields else " (or name the fields to rank with rank_fields)"
            raise InvalidRequest(f"{where}.{name} {state}{hint}", field=f"{where}.{name}")
        values.append(value)
    if len(names) == 1:
        return values[0]
    # Cohere's convention for several fields: one "name: value" line each, in the given order.
    return "\n".join(f"{n}: {v}" for n, v in zip(names, values))


def render(result: RerankResult) -> dict:
    request = result.request
    scores = result.raw if request.options.get("raw_scores") else result.relevance
    results = []
    for i in ranked(result.raw, request.top_n):
        item = {"index": i, "relevance_score": as_float(scores[i])}
        if request.return_documents:
            doc = request.documents[i]
            item["document"] = {"text": doc} if isinstance(doc, str) else doc
        results.append(item)
    return {
        "id": str(uuid.uuid4()),
        "model": result.model,
        "results": results,
        "meta": {"api_version": {"version": "1"}, "billed_units": {"search_units": 1}},
        "usage": {"total_tokens": result.tokens},
    }
