"""Clients that hold connections without using them, on servers with a small connection cap:
clients that never read their answer are cut off after SERVE_SEND_TIMEOUT, and idle
keep-alive connections make room for new clients instead of refusing them.

These need their own settings, so they skip against RERANK_TEST_URL."""

from __future__ import annotations

import json
import os
import socket
import time

import httpx
import pytest

import rawhttp
from bench.local_server import Server
from rawhttp import Response
from serving import config as server_config

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(bool(os.environ.get("RERANK_TEST_URL")),
                                 reason="starts servers with settings of its own")]

MAX_CONNECTIONS = 4
SEND_TIMEOUT = 3
# ~6 MB answers (return_documents echoes the documents): more than the kernel's send buffer
# can take (tcp_wmem's 4 MB at most), so the rest waits in the server's write buffer.
DOCUMENT = "word " * 12_000
BIG = json.dumps({"query": "capital", "documents": [DOCUMENT] * 100,
                  "return_documents": True}).encode()


def test_the_send_timeout_setting():
    assert server_config.load(None, {}).send_timeout == 30.0
    assert server_config.load(None, {"SERVE_SEND_TIMEOUT": "2.5"}).send_timeout == 2.5
    for bad in ("0", "-1", "nan"):
        with pytest.raises(server_config.ConfigError, match="SERVE_SEND_TIMEOUT"):
            server_config.load(None, {"SERVE_SEND_TIMEOUT": bad})


def log_lines(server: Server) -> list[dict]:
    return [json.loads(line) for line in server.log_text().splitlines() if line.startswith("{")]


def started(env: dict[str, str], bert_dir):
    server = Server(bert_dir, env={"SERVE_MAX_CONNECTIONS": str(MAX_CONNECTIONS),
                                   "SERVE_MAX_PAYLOAD_BYTES": str(4 * len(BIG)), **env})
    server.wait_ready()
    return server


@pytest.fixture(scope="module")
def capped(bert_dir):
    server = started({"SERVE_SEND_TIMEOUT": str(SEND_TIMEOUT), "SERVE_HEADER_TIMEOUT": "30"},
                     bert_dir)
    try:
        yield server
    finally:
        server.stop()
        server.log_path.unlink(missing_ok=True)


def read_answer(sock: socket.socket) -> Response:
    """One whole answer on a kept-alive ``sock`` (which stays open)."""
    raw = b""
    while True:
        head, found, body = raw.partition(b"\r\n\r\n")
        if found and len(body) >= int(Response(raw).headers.get("content-length", "0")):
            return Response(raw)
        chunk = sock.recv(65536)
        assert chunk, raw
        raw += chunk


def ping_on(sock: socket.socket) -> Response:
    """GET /ping on a kept-alive ``sock``; its whole answer, which leaves it idle."""
    sock.sendall(rawhttp.request("GET", "/ping"))
    return read_answer(sock)


def test_clients_that_never_read_are_cut_off_after_the_send_timeout(capped):
    readers = []
    try:
        for _ in range(MAX_CONNECTIONS):  # every connection the server allows
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 2048)
            sock.settimeout(30)
            sock.connect(rawhttp.address(capped.url))
            sock.sendall(rawhttp.request("POST", "/v2/rerank",
                                         {"Content-Type": "application/json"}, BIG))
            readers.append(sock)  # and never read from
        # Scored, answered, stuck in the write buffers; then aborted, freeing the slots.
        deadline = time.monotonic() + 120
        while len([line for line in log_lines(capped)
                   if line.get("event") == "send_timeout"]) < MAX_CONNECTIONS:
            assert time.monotonic() < deadline, capped.log_text()[-3000:]
            time.sleep(0.5)
        response = httpx.get(capped.url + "/ping", timeout=30)
        assert response.status_code == 200, response.text
    finally:
        for sock in readers:
            sock.close()
    timeouts = [line for line in log_lines(capped) if line.get("event") == "send_timeout"]
    assert all(line["unsent_bytes"] > 0 and line["level"] == "warning" for line in timeouts)


def test_idle_keep_alive_connections_make_room_for_a_new_client(capped):
    idle = [rawhttp.connect(capped.url) for _ in range(MAX_CONNECTIONS)]
    try:
        for sock in idle:
            assert ping_on(sock).status == 200
            time.sleep(0.05)  # idle[0] has been idle longest
        response = httpx.get(capped.url + "/ping", timeout=30)  # a fifth connection
        assert response.status_code == 200, response.text
        assert rawhttp.wait_closed(idle[0], 10) == b""  # closed without a word
        for sock in idle[1:]:  # the others are still served on their connections
            assert ping_on(sock).status == 200
    finally:
        for sock in idle:
            sock.close()
    evicted = [line for line in log_lines(capped) if line.get("event") == "connection_evicted"]
    assert evicted and evicted[-1]["idle_s"] >= 0


def test_with_no_idle_connection_a_new_client_still_gets_503(capped):
    # Each has sent part of a head: mid-request, so none may be closed for the newcomer.
    busy = [rawhttp.trickle(capped.url, b"GET /ping HTTP/1.1\r\nHost: x\r\n")
            for _ in range(MAX_CONNECTIONS)]
    try:
        time.sleep(1)  # the server has taken them all
        with rawhttp.connect(capped.url) as extra:
            answer = Response(rawhttp.wait_closed(extra, 30))
        assert answer.status == 503 and answer.headers["retry-after"]
        assert answer.json()["error"]["type"] == "overloaded"
        for sock in busy:  # none was closed: each finishes its request
            sock.sendall(b"\r\n")
            assert read_answer(sock).status == 200
    finally:
        for sock in busy:
            sock.close()
