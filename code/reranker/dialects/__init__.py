"""Wire dialects: detect the format from the body, parse it, render the answer in kind.

| dialect  | request keys                    | response                               |
|----------|---------------------------------|----------------------------------------|
| cohere   | query, documents (no topk)      | {id, model, results[{index, relevance_score}]} |
| tei      | query, texts                    | [{index, score}]                       |
| topk     | query, documents, topk          | [{index, score}] raw logits, cut to topk |
| pipeline | inputs {text, text_pair}        | {label, score} (a list for a list)     |
"""

from __future__ import annotations

from ..errors import UnknownDialect
from ..request import RerankRequest, RerankResult
from ..wire import check_accept, decode_json, encode_json
from . import cohere, pipeline, tei, topk

DIALECTS = {m.NAME: m for m in (cohere, tei, topk, pipeline)}

_HINT = ('send {"query", "documents"} (Cohere), {"query", "texts"} (TEI),'
         ' {"query", "documents", "topk"} or {"inputs": {"text", "text_pair"}} (HF pipeline)')


def detect(body) -> str:
    if not isinstance(body, dict):
        raise UnknownDialect(f"the body must be a JSON object: {_HINT}", field="body")
    if "inputs" in body:
        return pipeline.NAME
    if "texts" in body:
        return tei.NAME
    if "documents" in body or "query" in body:
        return topk.NAME if "topk" in body else cohere.NAME
    raise UnknownDialect(f"the body matches no known format: {_HINT}", field="body")


def parse(data: bytes | str, content_type: str | None, dialect: str | None = None
          ) -> RerankRequest:
    """Request bytes to the internal request; ``dialect`` overrides detection."""
    body = decode_json(data, content_type)
    if dialect is not None and dialect not in DIALECTS:
        raise UnknownDialect(f"unknown dialect {dialect!r}; one of {sorted(DIALECTS)}",
                             field="dialect")
    name = dialect or detect(body)
    if not isinstance(body, dict):
        raise UnknownDialect(f"the body must be a JSON object: {_HINT}", field="body")
    return DIALECTS[name].parse(body)


def render(result: RerankResult, accept: str | None = None) -> bytes:
    check_accept(accept)
    return encode_json(DIALECTS[result.request.dialect].render(result))
