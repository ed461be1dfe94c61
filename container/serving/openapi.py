"""``GET /openapi.json``: the server's API as an OpenAPI 3.1 document, for client generators
and API tools (TEI and Infinity publish theirs the same way).

The request schemas say what each dialect's parser accepts (code/reranker/dialects/), the
response schemas what its ``render`` writes; tests/test_openapi.py holds both to that, by
example per dialect and by schemathesis against a live server.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

import reranker

_REF = "#/components/schemas/"


def ref(name: str) -> dict:
    return {"$ref": _REF + name}


def _string(**extra) -> dict:
    return {"type": "string", **extra}


def _text() -> dict:
    return _string(minLength=1)


def _strings(item: dict | None = None) -> dict:
    return {"type": "array", "items": item or _string()}


def _one_or_many(item: dict) -> dict:
    return {"anyOf": [item, {"type": "array", "items": item, "minItems": 1}]}


def _positive() -> dict:
    return {"type": "integer", "minimum": 1}


def _boolean() -> dict:
    return {"type": "boolean"}


def _obj(properties: dict, required: tuple[str, ...] = (), closed: bool = False) -> dict:
    schema = {"type": "object", "properties": properties, "required": list(required)}
    if closed:
        schema["additionalProperties"] = False
    return schema


# Options every query dialect takes (our extensions and vLLM's).
_COMMON = {
    "long_documents": {"enum": ["truncate", "chunk"]},
    "max_chunks_per_doc": _positive(),
    "instruction": _string(description="an LLM reranker's task instruction"),
}

_REQUESTS = {
    "CohereRequest": _obj({
        "query": _text(),
        "documents": _strings({"anyOf": [_string(), {"type": "object"}]}),
        "top_n": _positive(), "return_documents": _boolean(),
        "rank_fields": _strings(), "model": {"type": ["string", "null"]},
        "max_tokens_per_doc": {**_positive(), "description": "each document's first that many"
                               " tokens are scored"},
        "raw_scores": _boolean(), "use_activation": _boolean(),
        "truncate_prompt_tokens": {"type": "integer"}, **_COMMON,
    }, ("query", "documents")),
    "TeiRequest": _obj({
        "query": _text(), "texts": _strings(), "raw_scores": _boolean(),
        "return_text": _boolean(), "truncate": _boolean(),
        "truncation_direction": {"enum": ["right", "left", "Right", "Left"]}, **_COMMON,
    }, ("query", "texts")),
    "TopkRequest": _obj({
        "query": _text(), "documents": _strings(), "topk": _positive(), **_COMMON,
    }, ("query", "documents", "topk")),
    "PipelineRequest": _obj({
        "inputs": _one_or_many(_obj({"text": _string(), "text_pair": _string()},
                                    ("text", "text_pair"))),
        "parameters": _obj({"function_to_apply": {"enum": ["sigmoid", "softmax", "none"]},
                            "top_k": {"type": ["integer", "null"], "minimum": 1}}),
        **_COMMON,
    }, ("inputs",)),
    "LangchainRequest": _obj({
        "text_pairs": {"type": "array", "minItems": 1, "items": {
            "type": "array", "prefixItems": [_text(), _string()], "minItems": 2,
            "maxItems": 2}},
        "raw_scores": _boolean(), **_COMMON,
    }, ("text_pairs",)),
    "ScoreRequest": _obj({
        "text_1": _one_or_many(_text()), "text_2": _one_or_many(_string()),
        "model": {"type": ["string", "null"]}, "use_activation": _boolean(),
        "truncate_prompt_tokens": {"type": "integer"}, "priority": {"const": 0},
        **_COMMON,
    }, ("text_1", "text_2")),
    "ElasticRequest": _obj({
        "query": _text(), "input": _one_or_many(_string()), "top_n": _positive(),
        "return_documents": _boolean(),
        "task_settings": _obj({"instruction": _string()}),
        "long_documents": _COMMON["long_documents"],
        "max_chunks_per_doc": _COMMON["max_chunks_per_doc"],
    }, ("query", "input")),
}

_SCORE = {"type": "number"}
_INDEX = {"type": "integer", "minimum": 0}
_LABEL = _obj({"label": _string(), "score": _SCORE}, ("label", "score"), closed=True)
_PIPELINE_ANSWER = {"anyOf": [_LABEL, {"type": "array", "items": _LABEL}]}

_RESPONSES = {
    "CohereResponse": _obj({
        "id": _string(), "model": _string(),
        "results": {"type": "array", "items": _obj(
            {"index": _INDEX, "relevance_score": _SCORE, "document": {"type": "object"}},
            ("index", "relevance_score"), closed=True)},
        "meta": {"type": "object"},
        "usage": _obj({"total_tokens": {"type": "integer"}}, ("total_tokens",)),
    }, ("id", "results"), closed=True),
    "TeiResponse": {"type": "array", "items": _obj(
        {"index": _INDEX, "score": _SCORE, "text": _string()}, ("index", "score"),
        closed=True)},
    "TopkResponse": {"type": "array", "items": _obj(
        {"index": _INDEX, "score": _SCORE}, ("index", "score"), closed=True)},
    "PipelineResponse": {"anyOf": [_PIPELINE_ANSWER,
                                   {"type": "array", "items": _PIPELINE_ANSWER}]},
    "LangchainResponse": _obj({"scores": {"type": "array", "items": _SCORE}}, ("scores",),
                              closed=True),
    "ScoreResponse": _obj({
        "id": _string(), "object": {"const": "list"}, "created": {"type": "integer"},
        "model": _string(),
        "data": {"type": "array", "items": _obj(
            {"index": _INDEX, "object": {"const": "score"}, "score": _SCORE},
            ("index", "object", "score"), closed=True)},
        "usage": {"type": "object"},
    }, ("id", "object", "created", "model", "data", "usage"), closed=True),
    "ElasticResponse": _obj({"rerank": {"type": "array", "items": _obj(
        {"index": _INDEX, "relevance_score": _SCORE, "text": _string()},
        ("index", "relevance_score"), closed=True)}}, ("rerank",), closed=True),
    "Error": _obj({"error": _obj({
        "type": _string(), "message": _string(), "field": _string(),
        "request_id": _string(), "line": {"type": "integer"}}, ("type", "message"))},
        ("error",)),
    "Ping": _obj({"status": _string()}, ("status",)),
    "Info": _obj({"model_id": _string(), "version": _string()}, ("model_id", "version")),
    "Models": _obj({"object": {"const": "list"}, "data": {"type": "array", "items": _obj(
        {"id": _string(), "object": {"const": "model"}}, ("id", "object"))}},
        ("object", "data")),
}

# (request schemas, response schemas) by route; /invocations takes every dialect.
DIALECTS = {
    "cohere": ("CohereRequest", "CohereResponse"),
    "tei": ("TeiRequest", "TeiResponse"),
    "topk": ("TopkRequest", "TopkResponse"),
    "pipeline": ("PipelineRequest", "PipelineResponse"),
    "langchain": ("LangchainRequest", "LangchainResponse"),
    "score": ("ScoreRequest", "ScoreResponse"),
    "elastic": ("ElasticRequest", "ElasticResponse"),
}


def _errors(*statuses: int) -> dict:
    reasons = {400: "the body is not what the route reads", 413: "too large: too many"
               " documents, a text over the limit, or a body over the size limit",
               415: "a content type the route does not read", 422: "a field is wrong: the"
               " error names it", 500: "the model computed a non-finite score"
               " (non_finite_score), or a fault of ours (internal_error, with request_id)",
               503: "loading, overloaded, or past SERVE_REQUEST_TIMEOUT: retry after"
               " Retry-After"}
    return {str(s): {"description": reasons[s],
                     "content": {"application/json": {"schema": ref("Error")}}}
            for s in statuses}


def _rerank(summary: str, dialects: tuple[str, ...]) -> dict:
    def union(i: int) -> dict:
        names = [DIALECTS[d][i] for d in dialects]
        return ref(names[0]) if len(names) == 1 else {"anyOf": [ref(n) for n in names]}

    return {"post": {
        "summary": summary,
        "requestBody": {"required": True,
                        "content": {"application/json": {"schema": union(0)}}},
        "responses": {"200": {"description": "scores",
                              "content": {"application/json": {"schema": union(1)}}},
                      **_errors(400, 413, 415, 422, 500, 503)}}}


def _get(summary: str, schema: str, ready: bool = True) -> dict:
    responses = {"200": {"description": summary,
                         "content": {"application/json": {"schema": ref(schema)}}}}
    if ready:
        responses.update(_errors(503))
    return {"get": {"summary": summary, "responses": responses}}


def document() -> dict:
    every = tuple(DIALECTS)
    return {
        "openapi": "3.1.0",
        "info": {"title": "Reranker server", "version": reranker.__version__,
                 "description": "Rerank documents for a query: SageMaker's /invocations in"
                                " every dialect, and the native routes of TEI, Cohere,"
                                " Infinity and vLLM."},
        "paths": {
            "/ping": _get("200 once the model is loaded and warm", "Ping"),
            "/invocations": _rerank("SageMaker's route: the dialect is detected from the body"
                                    " (or X-Amzn-SageMaker-Custom-Attributes: dialect=...)",
                                    every),
            "/rerank": _rerank("TEI's route; a body with documents is Cohere's shape"
                               " (Infinity, vLLM)", ("tei", "cohere")),
            "/v1/rerank": _rerank("Cohere's v1 route", ("cohere",)),
            "/v2/rerank": _rerank("Cohere's v2 route", ("cohere",)),
            "/score": _rerank("vLLM's score API", ("score",)),
            "/v1/score": _rerank("vLLM's score API", ("score",)),
            "/info": _get("TEI's description of the served model", "Info"),
            "/v1/models": _get("the served model, OpenAI-style (vLLM, Infinity)", "Models"),
        },
        "components": {"schemas": {**_REQUESTS, **_RESPONSES}},
    }


def openapi(request: Request) -> Response:
    return JSONResponse(document())
