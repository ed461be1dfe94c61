"""Bad input over real HTTP: the right status, a JSON body naming the problem, and the
server answers the next good request.  Limits come from suite_server.SUITE_ENV
(16 documents, 20,000 characters, 256 KiB bodies)."""

from __future__ import annotations

import pytest

from suite_server import SUITE_ENV

pytestmark = pytest.mark.slow  # starts servers

GOOD = {"query": "capital of america", "documents": ["washington dc", "a panda"]}
JSON = {"Content-Type": "application/json"}
MAX_DOCUMENTS = int(SUITE_ENV["RERANK_MAX_DOCUMENTS"])
MAX_CHARS = int(SUITE_ENV["RERANK_MAX_CHARS"])
MAX_BODY = int(SUITE_ENV["SERVE_MAX_PAYLOAD_BYTES"])


def doc_body(**changes) -> dict:
    return {**GOOD, **changes}


# (id, body: bytes | dict, headers, status, field expected in the error or None)
CASES = [
    ("invalid-json", b'{"query": "q", "documents": [', JSON, 400, "body"),
    ("empty-body", b"", JSON, 400, "body"),
    ("not-utf8", b'{"query": "\xff\xfe"}', JSON, 400, "body"),
    ("nan-constant", b'{"query": "q", "documents": ["a"], "top_n": NaN}', JSON, 400, "body"),
    ("deep-nesting", b"[" * 100_000 + b"]" * 100_000, JSON, 400, "body"),
    ("text-plain", b'{"query": "q", "documents": ["a"]}', {"Content-Type": "text/plain"},
     415, "Content-Type"),
    ("form-encoded", b"query=q", {"Content-Type": "application/x-www-form-urlencoded"},
     415, "Content-Type"),
    ("no-dialect", {"question": "q", "passages": ["a"]}, JSON, 422, "body"),
    ("array-body", [GOOD], JSON, 422, "body"),
    ("missing-query", {"documents": ["a"]}, JSON, 422, "query"),
    ("empty-query", doc_body(query="  "), JSON, 422, "query"),
    ("null-query", doc_body(query=None), JSON, 422, "query"),
    ("object-query", doc_body(query={"text": "q"}), JSON, 422, "query"),
    ("missing-documents", {"query": "q"}, JSON, 422, "documents"),
    ("empty-documents", doc_body(documents=[]), JSON, 422, "documents"),
    ("null-documents", doc_body(documents=None), JSON, 422, "documents"),
    ("number-document", doc_body(documents=["a", 7]), JSON, 422, "documents[1]"),
    ("null-document", doc_body(documents=[None]), JSON, 422, "documents[0]"),
    ("tei-number-text", {"query": "q", "texts": ["a", 1.5]}, JSON, 422, "texts[1]"),
    ("too-many-documents", doc_body(documents=["d"] * (MAX_DOCUMENTS + 1)), JSON, 413,
     "documents"),
    ("too-long-document", doc_body(documents=["x" * (MAX_CHARS + 1)]), JSON, 413,
     "documents[0]"),
    ("top-n-string", doc_body(top_n="2"), JSON, 422, "top_n"),
    ("top-n-zero", doc_body(top_n=0), JSON, 422, "top_n"),
    ("top-n-negative", doc_body(top_n=-3), JSON, 422, "top_n"),
    ("top-n-fraction", doc_body(top_n=1.5), JSON, 422, "top_n"),
    ("topk-zero", doc_body(topk=0), JSON, 422, "topk"),
    ("topk-null", doc_body(topk=None), JSON, 422, "topk"),
    ("pipeline-no-pair", {"inputs": "just a string"}, JSON, 422, "inputs"),
    ("not-acceptable", GOOD, {"Accept": "text/html"}, 406, "Accept"),
    ("oversize-body", doc_body(documents=["y" * (MAX_BODY + 10)]), JSON, 413, "body"),
]


@pytest.mark.parametrize("body,headers,status,field", [c[1:] for c in CASES],
                         ids=[c[0] for c in CASES])
def test_bad_request_gets_json_error_then_server_still_serves(client, body, headers, status,
                                                              field):
    if isinstance(body, (dict, list)):
        response = client.post("/invocations", json=body, headers=headers)
    else:
        response = client.post("/invocations", content=body, headers=headers)
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    assert response.headers["x-request-id"]
    error = response.json()["error"]
    assert error["message"] and error["type"]
    if field is not None:
        assert error.get("field") == field, error
    assert_still_serves(client)


def assert_still_serves(client):
    response = client.post("/invocations", json=GOOD)
    assert response.status_code == 200, response.text
    assert len(response.json()["results"]) == 2


def test_oversize_chunked_body_is_cut_off_while_streaming(client):
    def chunks():
        yield b'{"query": "q", "documents": ["'
        for _ in range(MAX_BODY // 4096 + 2):
            yield b"z" * 4096
        yield b'"]}'

    response = client.post("/invocations", content=chunks(), headers=JSON)
    assert response.status_code == 413
    assert response.json()["error"]["field"] == "body"
    assert_still_serves(client)


def test_missing_content_type_is_read_as_json(client):
    request = client.build_request("POST", "/invocations", content=b'{"query": "q", '
                                   b'"documents": ["a", "b"]}')
    request.headers.pop("Content-Type", None)
    assert "content-type" not in request.headers
    response = client.send(request)
    assert response.status_code == 200, response.text


@pytest.mark.parametrize("method,path,status", [
    ("GET", "/invocations", 405), ("PUT", "/invocations", 405), ("POST", "/ping", 405),
    ("GET", "/endpoints/x/invocations", 405), ("GET", "/nope", 404), ("POST", "/", 404),
])
def test_wrong_method_or_path_gets_json(client, method, path, status):
    response = client.request(method, path)
    assert response.status_code == status
    assert response.json()["error"]["type"] in ("method_not_allowed", "not_found")
    assert response.headers["x-request-id"]
    assert_still_serves(client)


def test_a_404_lists_the_routes_served(client):
    """Read from the app's own routes: a route added later is listed without a second edit."""
    message = client.get("/nope").json()["error"]["message"]
    for route in ("POST /invocations", "POST /v1/score", "GET /v1/models", "GET /openapi.json"):
        assert route in message
    assert "{name}" not in message


def test_the_404_list_is_read_from_the_routes_it_is_given():
    from starlette.routing import Route

    from serving.routes import _served

    def endpoint(request):
        return None

    routes = [Route("/a", endpoint, methods=["POST"]), Route("/x/{name}", endpoint),
              Route("/metrics", endpoint, methods=["GET"])]
    assert _served(routes) == "POST /a or GET /metrics"
