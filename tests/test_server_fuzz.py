"""The hostile-JSON fuzz of test_errors.py, through the real HTTP server: zero 5xx.

Every POST route answers every body with a result or a
typed 4xx whose JSON body names the problem, and the server keeps serving."""

from __future__ import annotations

import json

import httpx
import pytest
from hypothesis import HealthCheck, given, settings

from test_errors import json_bodies

pytestmark = pytest.mark.slow  # starts a server

# Every POST route: SageMaker's, the runtime API path, and the native TEI, Cohere and vLLM
# ones.
ROUTES = ["/invocations", "/endpoints/fuzz/invocations", "/rerank", "/v1/rerank", "/v2/rerank",
          "/score"]


def check_answer(response: httpx.Response) -> None:
    status, payload = response.status_code, response.json()
    if status == 424:  # the runtime API path wraps the container's answer in a ModelError
        status, payload = payload["OriginalStatusCode"], json.loads(payload["OriginalMessage"])
    assert status < 500, response.text
    if status >= 400:
        assert payload["error"]["message"], payload


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=json_bodies)
def test_fuzz_hostile_json_over_http(client, body):
    for route in ROUTES:
        check_answer(client.post(route, content=body,
                                 headers={"Content-Type": "application/json"}))


COHERE = (b'{"query": "\\ud800", "documents": ["a\\udfff", {"text": "\\udc00"}],'
          b' "return_documents": true}')
TEI = b'{"query": "\\ud800", "texts": ["\\udfff"], "return_text": true}'
PIPELINE = b'{"inputs": [{"text": "\\ud800", "text_pair": "\\udbff"}]}'
SCORE = b'{"text_1": "\\ud800", "text_2": ["\\udfff"]}'


@pytest.mark.parametrize("route,body", [
    *[(route, body) for route in ROUTES[:2] for body in (COHERE, TEI, PIPELINE)],
    ("/rerank", TEI), ("/rerank", COHERE), ("/v1/rerank", COHERE), ("/v2/rerank", COHERE),
    ("/score", SCORE),
])
def test_lone_surrogates_are_scored_over_http(client, route, body):
    response = client.post(route, content=body, headers={"Content-Type": "application/json"})
    assert response.status_code == 200, response.text
    if body not in (PIPELINE, SCORE):  # the others echo the texts back, repaired
        assert "\ufffd" in response.text
    assert client.post(route, content=body).status_code == 200  # and it still serves
