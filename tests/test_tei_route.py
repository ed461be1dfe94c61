"""POST /rerank in Text Embeddings Inference's shape, over plain HTTP (httpx); curl's
form-typed JSON body on every route; the hostile-JSON fuzz on the native routes."""

from __future__ import annotations

import json
import shutil
import subprocess

import httpx
import pytest
from hypothesis import HealthCheck, given, settings

from example_texts import CAPITAL_DOCS, CAPITAL_QUERY
from test_errors import json_bodies
from test_server_fuzz import check_answer

pytestmark = pytest.mark.slow  # starts a server

TEI = {"query": CAPITAL_QUERY, "texts": CAPITAL_DOCS}
CURL_FORM = {"Content-Type": "application/x-www-form-urlencoded"}  # curl -d's default


@pytest.fixture(scope="module")
def client(client_url):
    with httpx.Client(base_url=client_url, timeout=60) as http:
        yield http


@pytest.mark.parametrize("raw", [False, True])
def test_rerank_answers_tei_shape(client, client_engine, raw):
    response = client.post("/rerank", json={**TEI, "raw_scores": raw, "return_text": True})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/json")
    scores = client_engine.score(CAPITAL_QUERY, CAPITAL_DOCS, raw=raw)
    body = response.json()
    assert sorted(item["index"] for item in body) == list(range(len(CAPITAL_DOCS)))
    assert [item["score"] for item in body] == sorted((i["score"] for i in body), reverse=True)
    for item in body:
        assert set(item) == {"index", "score", "text"}
        assert item["score"] == pytest.approx(scores[item["index"]], abs=1e-5)
        assert item["text"] == CAPITAL_DOCS[item["index"]]


def test_rerank_refuses_other_dialects_naming_the_field(client):
    # /rerank takes TEI's body or the Cohere shape Infinity and vLLM send (test_vllm_api.py).
    response = client.post("/rerank", json={"query": CAPITAL_QUERY, "text_pairs": [["a", "b"]]})
    assert response.status_code == 422
    assert response.json()["error"]["field"] == "texts"


def test_tei_truncate_false_refuses_a_long_text(client):
    response = client.post("/rerank", json={**TEI, "texts": ["word " * 5000],
                                            "truncate": False})
    assert response.status_code == 413, response.text
    assert response.json()["error"]["field"].startswith("texts")


@pytest.mark.parametrize("path", ["/invocations", "/rerank", "/v1/rerank", "/v2/rerank"])
def test_curl_form_typed_json_object_is_read_as_json(client, path):
    body = TEI if path in ("/invocations", "/rerank") else {"query": CAPITAL_QUERY,
                                                          "documents": CAPITAL_DOCS}
    response = client.post(path, content=json.dumps(body), headers=CURL_FORM)
    assert response.status_code == 200, response.text


@pytest.mark.skipif(shutil.which("curl") is None, reason="needs the curl binary")
def test_real_curl_d_without_content_type(client_url):
    done = subprocess.run(["curl", "-sS", "-w", "\n%{http_code}", "-d", json.dumps(TEI),
                           client_url + "/invocations"],
                          capture_output=True, text=True, timeout=60, check=True)
    body, status = done.stdout.rsplit("\n", 1)
    assert status == "200", body
    assert len(json.loads(body)) == len(CAPITAL_DOCS)


@pytest.mark.parametrize("data", [b"query=capital&texts=a", b'["a", "b"]', b"{not json", b""])
def test_curl_form_that_is_no_json_object_stays_refused(client, data):
    response = client.post("/invocations", content=data, headers=CURL_FORM)
    assert response.status_code == 415, response.text
    assert response.json()["error"]["field"] == "Content-Type"


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=json_bodies)
def test_fuzz_native_routes_and_form_bodies(client, body):
    for path in ("/rerank", "/v1/rerank", "/v2/rerank"):
        check_answer(client.post(path, content=body, headers={"Content-Type": "application/json"}))
    check_answer(client.post("/invocations", content=body, headers=CURL_FORM))
