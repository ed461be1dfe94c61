"""The aws-samples bge-reranker-large notebook's hand-written handler:
``{"query", "documents", "topk"}``.

Answers ``[{"index", "score"}]`` sorted and cut to topk, with raw logits as scores,
exactly what that handler returned, so clients written against it keep working.
"""

from __future__ import annotations

from ..request import RerankRequest, RerankResult
from ..wire import as_float
from . import fields
from .ordering import ranked

NAME = "topk"


def parse(body: dict) -> RerankRequest:
    query = fields.text(body, "query")
    documents = fields.strings(body, "documents")
    mode, chunks = fields.long_documents(body)
    return RerankRequest(
        dialect=NAME,
        pairs=[(query, d) for d in documents],
        documents=documents,
        top_n=fields.positive_int(body, "topk", required=True),
        long_documents=mode,
        max_chunks=chunks,
        instruction=fields.instruction(body),
    )


def render(result: RerankResult) -> list:
    return [{"index": i, "score": as_float(result.raw[i])}
            for i in ranked(result.raw, result.request.top_n)]
