"""The hostile-JSON fuzz of test_errors.py, through the real HTTP server: zero 5xx.

Both routes (/invocations and the runtime API path) answer every body with a result or a
typed 4xx whose JSON body names the problem, and the server keeps serving."""

from __future__ import annotations

import json

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from test_errors import GOOD, json_bodies

from serverutil import suite_server

pytestmark = pytest.mark.slow  # starts a server

ROUTES = ["/invocations", "/endpoints/fuzz/invocations"]


@pytest.fixture(scope="module")
def client(bert_dir):
    with suite_server(bert_dir) as url, httpx.Client(base_url=url, timeout=60) as http:
        yield http


def check_answer(response: httpx.Response) -> None:
    status, payload = response.status_code, response.json()
    if status == 424:  # the runtime API path wraps the container's answer in a ModelError
        status, payload = payload["OriginalStatusCode"], json.loads(payload["OriginalMessage"])
    assert status < 500, response.text
    if status >= 400:
        assert payload["error"]["message"], payload


@settings(max_examples=80, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=json_bodies)
def test_fuzz_hostile_json_over_http(client, body):
    for route in ROUTES:
        check_answer(client.post(route, content=body,
                                 headers={"Content-Type": "application/json"}))


@pytest.mark.parametrize("route", ROUTES)
@pytest.mark.parametrize("body", [
    b'{"query": "\\ud800", "documents": ["a\\udfff", {"text": "\\udc00"}],'
    b' "return_documents": true}',
    b'{"query": "\\ud800", "texts": ["\\udfff"], "return_text": true}',
    b'{"inputs": [{"text": "\\ud800", "text_pair": "\\udbff"}]}',
])
def test_lone_surrogates_are_scored_over_http(client, route, body):
    response = client.post(route, content=body, headers={"Content-Type": "application/json"})
    assert response.status_code == 200, response.text
    assert "\ufffd" in response.text or "pipeline" not in response.text
    assert client.post(route, json=GOOD).status_code == 200
