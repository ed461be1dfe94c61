"""Wire dialects: detect the format from the body, parse it, render the answer in kind.

| dialect  | request keys                    | response                               |
|----------|---------------------------------|----------------------------------------|
| cohere   | query, documents (no topk)      | {id, model, results[{index, relevance_score}]} |
| tei      | query, texts                    | [{index, score}]                       |
| topk     | query, documents, topk          | [{index, score}] raw logits, cut to topk |
| pipeline | inputs {text, text_pair}        | {label, score} (a list for a list)     |
| langchain| text_pairs [[query, text], ...] | {scores: [...]} in input order         |
| score    | text_1/text_2, queries/documents| {data: [{index, score}]} in input order (vLLM) |
| elastic  | query, input                    | {rerank: [{index, relevance_score}]} (Elastic) |

application/jsonlines bodies carry one request per line, each in any dialect (``lines``).
"""

from __future__ import annotations

from collections.abc import Callable

from ..errors import UnknownDialect
from ..request import RerankRequest, RerankResult
from ..wire import JSON, check_accept, decode_json, encode_json, is_jsonlines_type, media_type
from . import cohere, elastic, langchain, lines, pipeline, score, tei, topk

DIALECTS = {m.NAME: m for m in (cohere, tei, topk, pipeline, langchain, score, elastic)}

# Names that stand for a choice between dialects, made by the body: two APIs share the path
# /rerank, TEI's (query, texts) and the Cohere shape that Infinity and vLLM answer there
# (query, documents); TEI's, the route's first owner, names what is missing.
CHOICES = {"rerank": lambda body: cohere.NAME if "documents" in body else tei.NAME}

_HINT = ('send {"query", "documents"} (Cohere), {"query", "texts"} (TEI),'
         ' {"query", "documents", "topk"}, {"inputs": {"text", "text_pair"}} (HF pipeline)'
         ', {"text_pairs": [[query, text], ...]} (LangChain)'
         ', {"text_1", "text_2"} (vLLM score) or {"query", "input"} (Elasticsearch)')


def detect(body) -> str:
    if not isinstance(body, dict):
        raise UnknownDialect(f"the body must be a JSON object: {_HINT}", field="body")
    if "inputs" in body:
        return pipeline.NAME
    if "text_pairs" in body:
        return langchain.NAME
    if score.matches(body):
        return score.NAME
    if elastic.FIELD in body:
        return elastic.NAME
    if "texts" in body:
        return tei.NAME
    if "documents" in body or "query" in body:
        return topk.NAME if "topk" in body else cohere.NAME
    raise UnknownDialect(f"the body matches no known format: {_HINT}", field="body")


def parse(data: bytes | str, content_type: str | None, dialect: str | None = None
          ) -> RerankRequest | lines.RequestLines:
    """Request bytes to the internal request (one per line for jsonlines); ``dialect``
    overrides detection."""
    if dialect is not None and dialect not in DIALECTS and dialect not in CHOICES:
        raise UnknownDialect(f"unknown dialect {dialect!r}; one of {sorted(DIALECTS)}",
                             field="dialect")
    if is_jsonlines_type(media_type(content_type)):
        return lines.parse(data, lambda line: _parse_one(line, JSON, dialect))
    return _parse_one(data, content_type, dialect)


def _parse_one(data: bytes | str, content_type: str | None, dialect: str | None
               ) -> RerankRequest:
    body = decode_json(data, content_type)
    name = dialect or detect(body)
    if not isinstance(body, dict):
        raise UnknownDialect(f"the body must be a JSON object: {_HINT}", field="body")
    if name in CHOICES:
        name = CHOICES[name](body)
    return DIALECTS[name].parse(body)


def run(request: RerankRequest | lines.RequestLines,
        rerank: Callable[[RerankRequest], RerankResult],
        check_body_documents: Callable[[int], None] | None = None
        ) -> RerankResult | lines.ResultLines:
    """The engine's ``rerank`` on the request, or on each line of a jsonlines body, whose
    lines' documents ``check_body_documents`` (the engine's limit) counts together first."""
    if isinstance(request, lines.RequestLines):
        if check_body_documents is not None:
            check_body_documents(len(request.pairs))
        return lines.run(request, rerank)
    return rerank(request)


def render(result: RerankResult | lines.ResultLines, accept: str | None = None) -> bytes:
    check_accept(accept)
    if isinstance(result, lines.ResultLines):
        return lines.render(result, _render_one)
    return _render_one(result)


def _render_one(result: RerankResult) -> bytes:
    return encode_json(DIALECTS[result.request.dialect].render(result))
