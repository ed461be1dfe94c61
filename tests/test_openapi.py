"""GET /openapi.json: a valid OpenAPI 3.1 document that says what the server does.

Three ways of holding it to that: the routes it lists are the server's; one real request per
dialect, as its clients send it, fits the request schema and is answered in that dialect's
response schema; and schemathesis, generating bodies from the document against a live
server, finds no 5xx, no undocumented status and no answer outside its schema.
"""

from __future__ import annotations

import httpx
import jsonschema
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from openapi_spec_validator import validate
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from example_texts import CAPITAL_DOCS, CAPITAL_QUERY, NYC_AREAS, NYC_QUERY
from serving import openapi, routes

pytestmark = pytest.mark.slow  # starts a server

DOCUMENT = openapi.document()

# What each dialect's clients send (the same shapes as docs/engine.md's table).
EXAMPLES = {
    "cohere": {"query": NYC_QUERY, "documents": NYC_AREAS, "rank_fields": ["facts"],
               "top_n": 2, "return_documents": True},
    "tei": {"query": CAPITAL_QUERY, "texts": CAPITAL_DOCS, "return_text": True,
            "raw_scores": True},
    "topk": {"query": CAPITAL_QUERY, "documents": CAPITAL_DOCS, "topk": 2},
    "pipeline": {"inputs": [{"text": d, "text_pair": CAPITAL_QUERY} for d in CAPITAL_DOCS],
                 "parameters": {"top_k": None}},
    "langchain": {"text_pairs": [[CAPITAL_QUERY, d] for d in CAPITAL_DOCS]},
    "score": {"text_1": CAPITAL_QUERY, "text_2": CAPITAL_DOCS, "model": "any"},
    "elastic": {"query": CAPITAL_QUERY, "input": CAPITAL_DOCS, "top_n": 3,
                "return_documents": True},
}


def conforms(instance, schema_name: str) -> None:
    schema = {"$ref": f"#/components/schemas/{schema_name}", **DOCUMENT}
    jsonschema.Draft202012Validator(schema).validate(instance)


def test_the_document_is_valid_openapi_and_served(client_url):
    validate(DOCUMENT)
    assert httpx.get(client_url + "/openapi.json", timeout=30).json() == DOCUMENT


def test_it_lists_every_route_the_server_answers():
    served = {r.path for r in routes.ROUTES} - {"/endpoints/{name}/invocations",
                                                "/openapi.json"}
    assert set(DOCUMENT["paths"]) == served


@pytest.mark.parametrize("dialect", sorted(EXAMPLES))
def test_each_dialect_answers_in_its_schema(client_url, dialect):
    request_schema, response_schema = openapi.DIALECTS[dialect]
    conforms(EXAMPLES[dialect], request_schema)
    headers = {"X-Amzn-SageMaker-Custom-Attributes": f"dialect={dialect}"}
    answer = httpx.post(client_url + "/invocations", json=EXAMPLES[dialect], headers=headers,
                        timeout=60)
    assert answer.status_code == 200, answer.text
    conforms(answer.json(), response_schema)


def test_errors_answer_in_the_error_schema(client_url):
    answer = httpx.post(client_url + "/v2/rerank", json={"query": "", "documents": ["a"]},
                        timeout=60)
    assert answer.status_code == 422
    conforms(answer.json(), "Error")
    conforms(httpx.get(client_url + "/ping", timeout=30).json(), "Ping")
    conforms(httpx.get(client_url + "/info", timeout=30).json(), "Info")
    conforms(httpx.get(client_url + "/v1/models", timeout=30).json(), "Models")


def test_the_schemas_refuse_what_the_parsers_refuse():
    with pytest.raises(jsonschema.ValidationError):
        conforms({"query": "", "documents": ["a"]}, "CohereRequest")
    with pytest.raises(jsonschema.ValidationError):
        conforms({"query": "q", "texts": ["a"], "truncation_direction": "up"}, "TeiRequest")
    with pytest.raises(jsonschema.ValidationError):
        conforms({"index": 0, "score": 1.0, "extra": 1}, "TeiResponse")


@pytest.fixture(scope="module")
def live_schema(client_url):
    return schemathesis.openapi.from_url(client_url + "/openapi.json")


@pytest.mark.parametrize("path", sorted(DOCUMENT["paths"]))
def test_generated_requests_meet_the_document(live_schema, path):
    # Each operation's strategy driven by hypothesis directly (schemathesis' own pytest
    # plugin does not run on this pytest); bounded: 15 requests an operation.
    for method in DOCUMENT["paths"][path]:
        operation = live_schema[path][method.upper()]

        @given(case=operation.as_strategy())
        @settings(max_examples=15, deadline=None, derandomize=True, database=None,
                  suppress_health_check=list(HealthCheck))
        def meets_the_document(case):
            case.call_and_validate(timeout=60, checks=[
                not_a_server_error, status_code_conformance, content_type_conformance,
                response_schema_conformance])

        meets_the_document()
