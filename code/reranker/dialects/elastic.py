"""Elasticsearch's ``amazon_sagemaker`` inference service with ``"api": "elastic"`` (the rerank
task behind a ``text_similarity_reranker`` retriever).

Request ``{"query", "input": str | [str], "return_documents"?, "top_n"?,
"task_settings"?}``; response ``{"rerank": [{"index", "relevance_score", "text"?}]}``, best
first, cut to top_n.  Elasticsearch reads that answer strictly: any other top-level key
fails the search, so nothing else is sent.  ``task_settings`` may carry an LLM reranker's
``instruction``; our ``long_documents``/``max_chunks_per_doc`` sit beside ``query``.
"""

from __future__ import annotations

from ..errors import InvalidRequest
from ..request import RerankRequest, RerankResult
from ..wire import as_float
from . import fields
from .ordering import ranked

NAME = "elastic"
FIELD = "input"
INSTRUCTION = "instruction"  # inside task_settings


def parse(body: dict) -> RerankRequest:
    query = fields.text(body, "query")
    texts = fields.string_or_strings(body, FIELD)  # one document arrives as a plain string
    mode, chunks = fields.long_documents(body)
    return RerankRequest(
        dialect=NAME,
        pairs=[(query, t) for t in texts],
        documents=texts,
        documents_field=FIELD,
        top_n=fields.positive_int(body, "top_n"),
        return_documents=fields.boolean(body, "return_documents", False),
        long_documents=mode,
        max_chunks=chunks,
        instruction=_instruction(body),
        instruction_field=f"task_settings.{INSTRUCTION}",
    )


def _instruction(body: dict) -> str | None:
    settings = body.get("task_settings")
    if settings is None:
        return None
    if not isinstance(settings, dict):
        raise InvalidRequest("task_settings must be an object", field="task_settings")
    if settings.get(INSTRUCTION) is None:
        return None
    return fields.text(settings, INSTRUCTION, label=f"task_settings.{INSTRUCTION}")


def render(result: RerankResult) -> dict:
    request = result.request
    ranking = []
    for i in ranked(result.raw, request.top_n):
        item = {"index": i, "relevance_score": as_float(result.relevance[i])}
        if request.return_documents:
            item["text"] = request.documents[i]
        ranking.append(item)
    return {"rerank": ranking}
