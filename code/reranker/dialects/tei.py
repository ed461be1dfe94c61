"""Text Embeddings Inference's /rerank (the connector of OpenSearch's SageMaker
reranker tutorial speaks it).

Request ``{"query", "texts", "raw_scores"?, "return_text"?, "truncate"?,
"truncation_direction"?}``; response ``[{"index", "score", "text"?}]`` sorted by score.
"""

from __future__ import annotations

from ..request import RerankRequest, RerankResult
from ..wire import as_float
from . import fields
from .ordering import ranked

NAME = "tei"


def parse(body: dict) -> RerankRequest:
    query = fields.text(body, "query")
    texts = fields.strings(body, "texts")
    mode, chunks = fields.long_documents(body)
    return RerankRequest(
        dialect=NAME,
        pairs=[(query, t) for t in texts],
        documents=texts,
        documents_field="texts",
        # TEI servers run with auto-truncate in practice; truncate=false asks for a 413.
        truncate=fields.boolean(body, "truncate", True),
        truncation_direction=fields.choice(body, "truncation_direction", ("right", "left"),
                                           "right"),
        long_documents=mode,
        max_chunks=chunks,
        instruction=fields.instruction(body),
        return_documents=fields.boolean(body, "return_text", False),
        options={"raw_scores": fields.boolean(body, "raw_scores", False)},
    )


def render(result: RerankResult) -> list:
    request = result.request
    scores = result.raw if request.options.get("raw_scores") else result.relevance
    out = []
    for i in ranked(result.raw):
        item = {"index": i, "score": as_float(scores[i])}
        if request.return_documents:
            item["text"] = request.documents[i]
        out.append(item)
    return out
