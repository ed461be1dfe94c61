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

from .. import wire
from ..errors import UnknownDialect
from ..request import RerankRequest, RerankResult
from ..wire import JSON, decode_json, encode_json, is_jsonlines_type, media_type
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
        raise _not_an_object()
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
    raise UnknownDialect("the body matches no known format", field="body", hint=_HINT)


def _not_an_object() -> UnknownDialect:
    return UnknownDialect("the body must be a JSON object", field="body", hint=_HINT)


def parse(data, content_type, dialect: str | None = None
          ) -> RerankRequest | lines.RequestLines:
    """Request bytes to the internal request (a jsonlines body: its lines, parsed once
    ``run`` has counted them); ``dialect`` overrides detection."""
    if dialect is not None and dialect not in DIALECTS and dialect not in CHOICES:
        raise UnknownDialect(f"unknown dialect {dialect!r}; one of {sorted(DIALECTS)}",
                             field="dialect")
    content_type = wire.header_text(content_type)
    data = wire.body_data(data, content_type)
    if is_jsonlines_type(media_type(content_type)):
        wire.check_charset(content_type)
        return lines.split(data, lambda line: _parse_one(line, JSON, dialect))
    return _parse_one(data, content_type, dialect)


def _parse_one(data: bytes | str, content_type: str | None, dialect: str | None
               ) -> RerankRequest:
    body = decode_json(data, content_type)
    name = dialect or detect(body)
    if not isinstance(body, dict):
        raise _not_an_object()
    if name in CHOICES:
        name = CHOICES[name](body)
    return DIALECTS[name].parse(body)


def run(request: RerankRequest | lines.RequestLines,
        rerank: Callable[[RerankRequest], RerankResult],
        check_body_documents: Callable[[int], None] | None = None
        ) -> RerankResult | lines.ResultLines:
    """The engine's ``rerank`` on the request, or on each line of a jsonlines body.
    ``check_body_documents`` (the engine's limit) counts a body's lines before any is
    parsed, then their documents together, a line counting one at least: a body of many
    tiny or blank lines costs a parse and an answer line each."""
    if not isinstance(request, lines.RequestLines):
        return rerank(request)
    check = check_body_documents or (lambda count: None)
    check(request.count)
    parsed = lines.parse(request)
    check(parsed.documents)
    return lines.run(parsed, rerank)


def check_accept(accept) -> None:
    """406 unless ``accept`` allows an answer ``render`` can give (a server may check it
    before any work)."""
    wire.check_accept(wire.header_text(accept))


def render(result: RerankResult | lines.ResultLines, accept=None) -> bytes:
    check_accept(accept)
    if isinstance(result, lines.ResultLines):
        return lines.render(result, _render_one)
    return _render_one(result)


def _render_one(result: RerankResult) -> bytes:
    return encode_json(DIALECTS[result.request.dialect].render(result))
