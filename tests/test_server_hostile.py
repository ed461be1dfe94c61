"""A hostile client against the real HTTP server: broken framing on a bare socket, odd paths
and media types, inputs built to lift limits or to bloat error bodies, slow heads.

Each answer is JSON in our error shape, never 5xx, and the server keeps serving.  Runs
against RERANK_TEST_URL when set (the image under `make docker-test`, started with
suite_server.SUITE_ENV), else against our own server."""

from __future__ import annotations

import json

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import rawhttp
from rawhttp import Response, request
from suite_server import SUITE_ENV

pytestmark = pytest.mark.slow  # starts a server

GOOD = {"query": "capital of america", "documents": ["washington dc", "a panda"]}
GOOD_BODY = json.dumps(GOOD).encode()
MAX_BODY = int(SUITE_ENV["SERVE_MAX_PAYLOAD_BYTES"])
MAX_DOCUMENTS = int(SUITE_ENV["RERANK_MAX_DOCUMENTS"])
HEADER_TIMEOUT = float(SUITE_ENV["SERVE_HEADER_TIMEOUT"])
# Our error bodies stay this small whatever the input quotes (reranker.errors.clip).
SMALL = 4096


def check_json_error(response: Response | httpx.Response, status: int | None = None) -> dict:
    """A 4xx in our error shape (``status`` exactly, when given)."""
    code = response.status if isinstance(response, Response) else response.status_code
    assert 400 <= code < 500, (code, response.headers)
    if status is not None:
        assert code == status
    assert response.headers["content-type"].startswith("application/json")
    error = response.json()["error"]
    assert error["type"] and error["message"]
    return error


def post(body: bytes, **headers: str) -> bytes:
    return request("POST", "/invocations", {"Content-Type": "application/json", **headers}, body)


def chunked(*chunks: bytes) -> bytes:
    head = request("POST", "/invocations", {"Content-Type": "application/json",
                                            "Transfer-Encoding": "chunked"})
    return head + b"".join(chunks)


# --- framing uvicorn's parser refuses: answered by serving/protocol.py ------------------------

TLS_CLIENT_HELLO = bytes.fromhex("16030100a5010000a10303") + bytes(range(32)) + b"\x00" * 64
TRANSPORT = [
    ("content-length-not-a-number", post(GOOD_BODY, **{"Content-Length": "abc"}), 400),
    ("content-length-negative", post(GOOD_BODY, **{"Content-Length": "-1"}), 400),
    ("content-length-list", post(GOOD_BODY, **{"Content-Length": "1, 2"}), 400),
    ("content-length-plus", post(GOOD_BODY, **{"Content-Length": "+5"}), 400),
    ("content-length-hex", post(GOOD_BODY, **{"Content-Length": "0x10"}), 400),
    ("content-length-twice", request("POST", "/invocations", {"Content-Length": "1",
                                                              "content-length": "2"}), 400),
    ("content-length-huge", post(b"", **{"Content-Length": "9" * 30}), 400),
    ("content-length-over-limit", post(b"", **{"Content-Length": str(MAX_BODY + 1)}), 413),
    ("transfer-encoding-gzip-chunked", post(b"", **{"Transfer-Encoding": "gzip, chunked"}), 400),
    ("transfer-encoding-identity", post(b"", **{"Transfer-Encoding": "identity"}), 400),
    ("transfer-encoding-twice", post(b"", **{"Transfer-Encoding": "chunked, chunked"}), 400),
    ("chunk-size-not-hex", chunked(b"zz\r\nabc\r\n0\r\n\r\n"), 400),
    ("chunk-size-huge", chunked(b"f" * 40 + b"\r\nabc\r\n"), None),
    ("chunk-size-negative", chunked(b"-1\r\nabc\r\n0\r\n\r\n"), 400),
    ("chunk-without-crlf", chunked(b"3\r\nabcXX3\r\nabc\r\n0\r\n\r\n"), 400),
    ("tls-client-hello", TLS_CLIENT_HELLO, 400),
    ("http2-preface", b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", None),
    ("garbage-request-line", b"GARBAGE\r\n\r\n", 400),
    ("http-0.9", b"GET /ping\r\n\r\n", 400),
    ("http-version-2", b"GET /ping HTTP/2.0\r\nHost: x\r\n\r\n", None),
    ("missing-host", b"GET /ping HTTP/1.1\r\n\r\n", 400),
    ("two-hosts", b"GET /ping HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400),
    ("header-without-colon", b"GET /ping HTTP/1.1\r\nHost: x\r\nBroken\r\n\r\n", 400),
    ("header-space-before-colon", b"GET /ping HTTP/1.1\r\nHost : x\r\n\r\n", 400),
    ("header-obs-fold", b"GET /ping HTTP/1.1\r\nHost: x\r\nX-A: a\r\n  folded\r\n\r\n", None),
    ("header-nul-byte", b"GET /ping HTTP/1.1\r\nHost: x\r\nX-A: a\x00b\r\n\r\n", 400),
    ("header-name-non-ascii", b"GET /ping HTTP/1.1\r\nHost: x\r\nX-\xff: a\r\n\r\n", 400),
    ("method-bad-characters", b"G@T /ping HTTP/1.1\r\nHost: x\r\n\r\n", 400),
    ("target-non-ascii", b"GET /pi\xffng HTTP/1.1\r\nHost: x\r\n\r\n", 400),
    ("target-with-space", b"GET /pi ng HTTP/1.1\r\nHost: x\r\n\r\n", 400),
    ("head-over-limit-one-header", request("GET", "/ping", {"X-Big": "a" * 70_000}), 431),
    ("head-over-limit-many-headers",
     request("GET", "/ping", {f"X-H{i}": "v" * 40 for i in range(2000)}), 431),
    ("query-string-1mb", request("GET", "/ping?" + "a" * 1_000_000), 431),
    ("expect-continue-over-limit",
     post(b"", **{"Content-Length": str(MAX_BODY + 1), "Expect": "100-continue"}), 413),
]


@pytest.mark.parametrize("raw,status", [c[1:] for c in TRANSPORT], ids=[c[0] for c in TRANSPORT])
def test_malformed_http_gets_a_json_error(base_url, client, raw, status):
    """``status`` None: h11 reads the request after all (a route's answer, 2xx or 404)."""
    response = Response(rawhttp.exchange(base_url, raw))
    if status is None:
        assert response.status < 500 and response.json()
    else:
        check_json_error(response, status)
    assert client.get("/ping").status_code == 200  # and the server still serves


def test_request_line_and_headers_in_pieces_over_the_limit_get_431(base_url):
    with rawhttp.connect(base_url) as sock:
        sock.sendall(b"GET /ping HTTP/1.1\r\nHost: x\r\n")
        try:
            for _ in range(100):  # 100 KB, in 1 KB headers
                sock.sendall(b"X-Pad: " + b"p" * 1024 + b"\r\n")
        except (BrokenPipeError, ConnectionResetError):
            pass  # refused part-way, as it should be
        check_json_error(Response(rawhttp.read_all(sock)), 431)


def test_a_head_trickled_past_the_timeout_gets_408(base_url, client):
    sock = rawhttp.trickle(base_url, b"GET /ping HTTP/1.1\r\nHost: x\r\nX-Slow: ")
    with sock:
        answer = rawhttp.wait_closed(sock, HEADER_TIMEOUT + 20)
    check_json_error(Response(answer), 408)
    assert client.get("/ping").status_code == 200


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(cut=st.integers(0, 200), junk=st.binary(min_size=1, max_size=12),
       keep=st.integers(0, 400))
def test_fuzz_mangled_requests_get_json_or_nothing(base_url, cut, junk, keep):
    """A good request with junk spliced in: any answer is JSON and not 5xx (a head left
    incomplete by the splice may get none: we close our side, which ends it)."""
    good = post(GOOD_BODY)
    raw = good[:cut] + junk + good[cut + len(junk):][:keep]
    answer = rawhttp.exchange(base_url, raw, timeout=HEADER_TIMEOUT + 20)
    if answer:
        response = Response(answer)
        assert response.status < 500, answer[:300]
        assert response.headers["content-type"].startswith("application/json"), answer[:300]
        if response.status >= 400:
            assert response.json()["error"]["message"]


# --- paths: exact matches only, never a redirect ---------------------------------------------

PATHS = [
    ("GET", "/invocations/", {}), ("POST", "/invocations/", {"Host": "evil.example"}),
    ("POST", "/invocations//", {}), ("GET", "/ping/", {}), ("POST", "/rerank/", {}),
    ("POST", "/v1/rerank/", {}), ("POST", "/v2/rerank/", {"Host": "evil.example"}),
    ("POST", "//invocations", {}), ("POST", "/endpoints/x/invocations/", {}),
    ("POST", "/INVOCATIONS", {}), ("GET", "/%2e%2e/etc/passwd", {}), ("POST", "/%00", {}),
    ("GET", "/" + "a" * 60_000, {}), ("POST", "/invocations%2f", {}),
]


@pytest.mark.parametrize("method,path,headers", PATHS,
                         ids=[f"{m} {p[:30]}" for m, p, _ in PATHS])
def test_unknown_paths_are_404_json_never_redirects(base_url, method, path, headers):
    raw = request(method, path, headers, GOOD_BODY if method == "POST" else b"")
    if "Host" in headers:  # replace our Host line with the hostile one
        raw = raw.replace(b"Host: 127.0.0.1\r\n", b"", 1)
    response = Response(rawhttp.exchange(base_url, raw))
    assert "location" not in response.headers
    assert check_json_error(response, 404)["type"] == "not_found"
    assert len(response.body) < SMALL  # a 60 KB path is not echoed whole


# --- media types ------------------------------------------------------------------------------

MEDIA = [
    (";;;", 415), (";", 415), ("; charset=utf-8", 415), (";charset=utf-8;", 415),
    ("text/plain", 415),
    ("application/xml", 415), ("multipart/form-data; boundary=x", 415), ("*/*", 415),
    ("application/json;;;", 200), ("APPLICATION/JSON; charset=UTF-8", 200),
    ("application/vnd.api+json", 200), ("application/json; charset=latin-1; x=y", 415),
]


@pytest.mark.parametrize("content_type,status", MEDIA, ids=[m for m, _ in MEDIA])
def test_content_types(client, content_type, status):
    response = client.post("/invocations", content=GOOD_BODY,
                           headers={"Content-Type": content_type})
    if status == 200:
        assert response.status_code == 200, response.text
    else:
        assert check_json_error(response, status)["field"] == "Content-Type"


# --- inputs built to lift the server's limits -------------------------------------------------

def jsonlines(*bodies: dict) -> bytes:
    return b"\n".join(json.dumps(b).encode() for b in bodies)


LIMITS = [
    ("lines-documents-counted-together",
     jsonlines(*[{"query": "q", "documents": ["d"] * MAX_DOCUMENTS}] * 3), "body"),
    ("lines-two-just-over", jsonlines({"query": "q", "texts": ["d"] * (MAX_DOCUMENTS // 2 + 1)},
                                      {"query": "q", "texts": ["d"] * (MAX_DOCUMENTS // 2)}),
     "body"),
    ("lines-many-small", jsonlines(*[{"query": "q", "texts": ["d"]}] * (MAX_DOCUMENTS + 1)),
     "body"),
]


@pytest.mark.parametrize("body,field", [c[1:] for c in LIMITS], ids=[c[0] for c in LIMITS])
def test_a_jsonlines_body_cannot_lift_the_document_limit(client, body, field):
    response = client.post("/invocations", content=body,
                           headers={"Content-Type": "application/jsonlines"})
    assert check_json_error(response, 413)["field"] == field


def test_lines_within_the_limit_together_are_scored(client):
    body = jsonlines(*[{"query": "q", "texts": ["a", "b"]}] * (MAX_DOCUMENTS // 2))
    response = client.post("/invocations", content=body,
                           headers={"Content-Type": "application/jsonlines"})
    assert response.status_code == 200, response.text


@pytest.mark.parametrize("chunks", [1000, 10**9, 17])
def test_max_chunks_per_doc_above_the_setting_is_served_within_it(client, chunks):
    body = {"query": "q", "documents": ["word " * 3000], "max_chunks_per_doc": chunks}
    response = client.post("/v1/rerank", json=body)
    assert response.status_code == 200, response.text


# --- error bodies do not echo unbounded input -------------------------------------------------

BIG = "k" * 100_000
ECHOES = [
    ("duplicated-huge-key", f'{{"{BIG}": 1, "{BIG}": 2}}'.encode()),
    ("huge-unknown-dialect", json.dumps({BIG: 1}).encode()),
    ("huge-key-in-a-document", json.dumps({"query": "q", "documents": [{BIG: "x"}]}).encode()),
    ("huge-top-n", json.dumps({"query": "q", "documents": ["a"], "top_n": BIG}).encode()),
    ("huge-dialect-attribute", GOOD_BODY),
    ("huge-invalid-json", b'{"query": "' + BIG.encode() + b'" "documents": []}'),
    ("huge-number", b'{"query": "q", "documents": ["a"], "top_n": 1' + b"0" * 100_000 + b"}"),
]


@pytest.mark.parametrize("body", [c[1] for c in ECHOES], ids=[c[0] for c in ECHOES])
def test_error_bodies_stay_small_whatever_they_quote(client, body):
    headers = {"Content-Type": "application/json"}
    if body is GOOD_BODY:
        headers["X-Amzn-SageMaker-Custom-Attributes"] = "dialect=" + "d" * 30_000
    response = client.post("/invocations", content=body, headers=headers)
    check_json_error(response)
    assert len(response.content) < SMALL, response.content[:200]
