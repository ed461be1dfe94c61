"""Framing and codings a client may send that a proxy in front could read otherwise: both
Content-Length and Transfer-Encoding (refused, the connection closed: RFC 9112 6.1), the
HTTP/2 preface and other HTTP versions (400 invalid_http), and Content-Encoding (gzip and
deflate decoded within SERVE_MAX_PAYLOAD_BYTES, anything else 415).

Runs against RERANK_TEST_URL when set (the image under `make docker-test`, started with
suite_server.SUITE_ENV), else against our own server."""

from __future__ import annotations

import gzip
import json
import zlib

import httpx
import pytest

import rawhttp
from rawhttp import Response, request
from suite_server import SUITE_ENV

pytestmark = pytest.mark.slow  # starts a server

GOOD = {"query": "capital of america", "documents": ["washington dc", "a panda"]}
GOOD_BODY = json.dumps(GOOD).encode()
MAX_BODY = int(SUITE_ENV["SERVE_MAX_PAYLOAD_BYTES"])
JSON = {"Content-Type": "application/json"}


def error_of(response: Response | httpx.Response, status: int) -> dict:
    code = response.status if isinstance(response, Response) else response.status_code
    assert code == status, (code, response.headers)
    assert response.headers["content-type"].startswith("application/json")
    error = response.json()["error"]
    assert error["message"]
    return error


def then_closed(base_url: str, raw: bytes) -> Response:
    """Send ``raw`` followed by a good pipelined request, keeping our side open: the server
    must answer the first and close without reading the second as a request."""
    follow = request("POST", "/invocations", JSON, GOOD_BODY)
    with rawhttp.connect(base_url) as sock:
        sock.sendall(raw + follow)
        answer = rawhttp.wait_closed(sock, 15)
    assert answer.count(b"HTTP/1.1 ") == 1, answer[:600]  # one answer, then closed
    return Response(answer)


# --- Content-Length with Transfer-Encoding ---------------------------------------------------

def test_content_length_with_transfer_encoding_is_refused_and_closed(base_url):
    chunked = b"%x\r\n%s\r\n0\r\n\r\n" % (len(GOOD_BODY), GOOD_BODY)
    raw = request("POST", "/invocations", {**JSON, "Content-Length": str(len(chunked)),
                                           "Transfer-Encoding": "chunked"}, chunked)
    response = then_closed(base_url, raw)
    error = error_of(response, 400)
    assert error["type"] == "invalid_http" and "Content-Length" in error["message"]
    assert response.headers["connection"] == "close"


def test_a_refusal_after_a_kept_alive_answer_is_still_answered(base_url):
    """The second request on a connection, malformed: its 400 follows the first's 200."""
    raw = request("GET", "/ping") + b"GARBAGE\r\n\r\n"
    with rawhttp.connect(base_url) as sock:
        sock.sendall(raw)
        answer = rawhttp.wait_closed(sock, 15)
    first, _, second = answer.partition(b"HTTP/1.1 400 ")
    assert Response(first).status == 200
    assert error_of(Response(b"HTTP/1.1 400 " + second), 400)["type"] == "invalid_http"


# --- other HTTP versions -----------------------------------------------------------------------

@pytest.mark.parametrize("raw", [
    b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
    b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + bytes.fromhex("000012040000000000"),  # + SETTINGS
    b"GET /ping HTTP/2.0\r\nHost: x\r\n\r\n",
    b"GET /ping HTTP/3.0\r\nHost: x\r\n\r\n",
], ids=["h2-preface", "h2-preface-settings", "http-2.0", "http-3.0"])
def test_http2_and_other_versions_get_400_invalid_http(base_url, raw):
    response = Response(rawhttp.exchange(base_url, raw))
    error = error_of(response, 400)
    assert error["type"] == "invalid_http" and "HTTP/1.1" in error["message"]
    assert response.headers["connection"] == "close"


def test_http_1_0_is_still_served(base_url):
    response = Response(rawhttp.exchange(base_url, b"GET /ping HTTP/1.0\r\n\r\n"))
    assert response.status == 200


# --- Content-Encoding ------------------------------------------------------------------------

def scores(response: httpx.Response) -> list:
    assert response.status_code == 200, response.text
    return [row["relevance_score"] for row in response.json()["results"]]


@pytest.mark.parametrize("coding,encode", [
    ("gzip", gzip.compress), ("x-gzip", gzip.compress), ("deflate", zlib.compress),
    ("GZIP", gzip.compress), ("identity", lambda body: body), ("gzip, identity", gzip.compress),
])
def test_compressed_bodies_are_decoded(client, coding, encode):
    plain = client.post("/v1/rerank", content=GOOD_BODY, headers=JSON)
    packed = client.post("/v1/rerank", content=encode(GOOD_BODY),
                         headers={**JSON, "Content-Encoding": coding})
    assert scores(packed) == scores(plain)


@pytest.mark.parametrize("coding", ["br", "zstd", "compress", "gzip, gzip", "gzip, br", "x"])
def test_other_content_encodings_get_415(client, coding):
    response = client.post("/invocations", content=GOOD_BODY,
                           headers={**JSON, "Content-Encoding": coding})
    error = error_of(response, 415)
    assert error["type"] == "unsupported_media_type" and error["field"] == "Content-Encoding"
    assert response.headers["connection"] == "close"  # the body was not read


@pytest.mark.parametrize("body", [GOOD_BODY, gzip.compress(GOOD_BODY)[:-8], b"\x1f\x8b junk",
                                  gzip.compress(GOOD_BODY) + b"trailing"],
                         ids=["not-compressed", "truncated", "bad-header", "trailing-bytes"])
def test_bodies_that_do_not_decode_get_400(client, body):
    response = client.post("/invocations", content=body,
                           headers={**JSON, "Content-Encoding": "gzip"})
    error = error_of(response, 400)
    assert error["type"] == "invalid_encoding" and error["field"] == "body"


def test_a_zip_bomb_gets_413_from_its_decompressed_size(client):
    inflated = json.dumps({"query": "q", "documents": ["a" * (MAX_BODY + 1)]}).encode()
    bomb = gzip.compress(inflated)
    assert len(bomb) < MAX_BODY // 100  # the compressed body is well within the limit
    response = client.post("/invocations", content=bomb,
                           headers={**JSON, "Content-Encoding": "gzip"})
    assert error_of(response, 413)["type"] == "payload_too_large"
    assert client.get("/ping").status_code == 200


def test_a_compressed_body_just_within_the_limit_is_read(client):
    pad = MAX_BODY - len(json.dumps({"query": "q", "documents": ["a"], "x": ""}))
    inflated = json.dumps({"query": "q", "documents": ["a"], "x": "p" * pad}).encode()
    assert len(inflated) == MAX_BODY
    response = client.post("/v1/rerank", content=gzip.compress(inflated),
                           headers={**JSON, "Content-Encoding": "gzip"})
    assert response.status_code != 413, response.text  # read whole; the dialect decides
