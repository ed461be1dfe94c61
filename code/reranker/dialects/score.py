"""vLLM's score API (``POST /score``, ``/v1/score``), which vLLM's docs use for Qwen3-Reranker
and bge-reranker.

Request: two sides, named ``text_1``/``text_2``, ``queries``/``documents``,
``queries``/``items`` or ``data_1``/``data_2``, each a string or a list of strings. One
query scores every document; otherwise the two lists pair up by position. Optional
``truncate_prompt_tokens`` (a cap on each pair's tokens; -1: the model's limit),
``use_activation`` (false: raw logits), ``model`` (a string or null), ``priority`` (0),
and our ``long_documents``/``max_chunks_per_doc``.

Response ``{"id", "object": "list", "created", "model", "data": [{"index", "object":
"score", "score"}], "usage"}``, one score per pair, in input order.
"""

from __future__ import annotations

import time
import uuid

from ..errors import InvalidRequest
from ..request import RerankRequest, RerankResult
from ..wire import as_float
from . import fields

NAME = "score"

# vLLM's names for the two sides, in the order it tries them.
SIDES = (("queries", "documents"), ("queries", "items"), ("data_1", "data_2"),
         ("text_1", "text_2"))


def matches(body: dict) -> bool:
    return any(left in body for left, _ in SIDES)


def parse(body: dict) -> RerankRequest:
    left, right = _side_names(body)
    queries = _texts(body, left)
    texts = _texts(body, right, allow_empty=True)
    # Errors name the query as sent: a string, one in a list, or pair i's own.
    query_field = (f"{left}[{{i}}]" if len(queries) != 1
                   else left if isinstance(body[left], str) else f"{left}[0]")
    if len(queries) == 1:
        queries = queries * len(texts)
    elif len(queries) != len(texts):
        raise InvalidRequest(f"{left} has {len(queries)} texts and {right} {len(texts)}: send"
                             f" one {left} text, or as many as {right}", field=left)
    fields.model(body)
    fields.priority(body)
    mode, chunks = fields.long_documents(body)
    return RerankRequest(
        dialect=NAME,
        pairs=list(zip(queries, texts)),
        documents=texts,
        documents_field=right,
        query_field=query_field,
        document_field=right if isinstance(body[right], str) else None,
        long_documents=mode,
        max_chunks=chunks,
        max_tokens=fields.token_cap(body),
        instruction=fields.instruction(body),
        options={"raw_scores": not fields.activation(body)},
    )


def _side_names(body: dict) -> tuple[str, str]:
    for left, right in SIDES:
        if left in body and right in body:
            return left, right
    pairs = " or ".join(f"{a} and {b}" for a, b in SIDES)
    for left, right in SIDES:
        if left in body:
            raise InvalidRequest(f"{right} is required beside {left} (send {pairs})",
                                 field=right)
    raise InvalidRequest(f"text_1 is required: send {pairs}", field="text_1")


def _texts(body: dict, field: str, allow_empty: bool = False) -> list[str]:
    if isinstance(body[field], dict):
        raise InvalidRequest(f"{field}: multimodal content is not supported; send text",
                             field=field)
    texts = fields.string_or_strings(body, field)
    if not allow_empty:
        for i, text in enumerate(texts):
            if not text.strip():
                raise InvalidRequest(f"{field}[{i}] must not be empty", field=f"{field}[{i}]")
    return texts


def render(result: RerankResult) -> dict:
    scores = result.raw if result.request.options.get("raw_scores") else result.relevance
    return {
        "id": f"score-{uuid.uuid4().hex}",
        "object": "list",
        "created": int(time.time()),
        "model": result.model,
        "data": [{"index": i, "object": "score", "score": as_float(s)}
                 for i, s in enumerate(scores)],
        "usage": {"prompt_tokens": result.tokens, "total_tokens": result.tokens,
                  "completion_tokens": 0},
    }
