"""LangChain's ``SagemakerEndpointCrossEncoder`` (behind ``CrossEncoderReranker`` on SageMaker).

Request ``{"text_pairs": [[query, text], ...], "raw_scores"?}``; response
``{"scores": [...]}``, one score per pair in input order (LangChain sorts them itself).
Scores are 0..1 like the other dialects unless ``raw_scores`` (our extension) asks for logits.
"""

from __future__ import annotations

from ..errors import InvalidRequest
from ..request import RerankRequest, RerankResult
from ..wire import as_float
from . import fields

NAME = "langchain"
FIELD = "text_pairs"


def parse(body: dict) -> RerankRequest:
    pairs = [_pair(item, f"{FIELD}[{i}]") for i, item in enumerate(fields.array(body, FIELD))]
    mode, chunks = fields.long_documents(body)
    return RerankRequest(
        dialect=NAME,
        pairs=pairs,
        documents=[text for _, text in pairs],
        documents_field=FIELD,
        query_field=f"{FIELD}[{{i}}][0]",
        document_field=f"{FIELD}[{{i}}][1]",
        long_documents=mode,
        max_chunks=chunks,
        instruction=fields.instruction(body),
        options={"raw_scores": fields.boolean(body, "raw_scores", False)},
    )


def _pair(item, where: str) -> tuple[str, str]:
    if not isinstance(item, list) or len(item) != 2:
        raise InvalidRequest(f"{where} must be a [query, text] pair of two strings", field=where)
    query = fields.text({"q": item[0]}, "q", label=f"{where}[0]")
    text = fields.text({"t": item[1]}, "t", label=f"{where}[1]", allow_empty=True)
    return query, text


def render(result: RerankResult) -> dict:
    scores = result.raw if result.request.options.get("raw_scores") else result.relevance
    return {"scores": [as_float(s) for s in scores]}
