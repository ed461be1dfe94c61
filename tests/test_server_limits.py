"""The server's limits under a hostile load, each on a server of its own with small limits:
slow clients cannot starve others, open connections are capped, a client that hangs up
is logged as 499 (not 500) and the server serves on, and SIGTERM under load ends the
process by SERVE_SHUTDOWN_TIMEOUT.

These need their own settings and signals, so they skip against RERANK_TEST_URL."""

from __future__ import annotations

import json
import os
import signal
import threading
import time

import httpx
import pytest

import rawhttp
from bench.local_server import Server
from rawhttp import Response

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(bool(os.environ.get("RERANK_TEST_URL")),
                                 reason="starts servers with settings of its own")]

GOOD = {"query": "capital of america", "documents": ["washington dc", "a panda"]}
BODY_TIMEOUT = 3
MAX_CONNECTIONS = 12
# 1000 documents of ~500 tokens: seconds of work for the tiny model, on any CPU.
HEAVY = json.dumps({"query": "capital", "documents": [
    " ".join(["the capital city of a large country"] * 80)] * 1000}).encode()
HEAVY_ENV = {"RERANK_MAX_DOCUMENTS": "1000", "SERVE_MAX_PAYLOAD_BYTES": str(4 * len(HEAVY))}


@pytest.fixture(scope="module")
def tight(bert_dir):
    server = Server(bert_dir, env={
        **HEAVY_ENV, "SERVE_MAX_CONCURRENCY": "2", "SERVE_BODY_TIMEOUT": str(BODY_TIMEOUT),
        "SERVE_HEADER_TIMEOUT": "15", "SERVE_MAX_CONNECTIONS": str(MAX_CONNECTIONS)})
    try:
        server.wait_ready()
        yield server
    finally:
        server.stop()
        server.log_path.unlink(missing_ok=True)


def log_lines(server: Server) -> list[dict]:
    return [json.loads(line) for line in server.log_text().splitlines() if line.startswith("{")]


def test_slow_bodies_hold_no_slot_and_get_408(tight):
    head = rawhttp.request("POST", "/invocations", {"Content-Type": "application/json",
                                                    "Content-Length": "100"})
    slow = [rawhttp.trickle(tight.url, head + b"{") for _ in range(8)]  # 4x the slots
    try:
        for _ in range(3):
            response = httpx.post(tight.url + "/invocations", json=GOOD, timeout=60)
            assert response.status_code == 200, response.text
        for sock in slow:
            answer = Response(rawhttp.wait_closed(sock, BODY_TIMEOUT + 30))
            assert answer.status == 408
            assert answer.json()["error"]["type"] == "request_timeout"
    finally:
        for sock in slow:
            sock.close()


def test_connections_over_the_cap_get_503_json(tight):
    idle = [rawhttp.connect(tight.url) for _ in range(MAX_CONNECTIONS)]
    try:
        time.sleep(1)  # the server has taken them all
        with rawhttp.connect(tight.url) as extra:
            answer = Response(rawhttp.wait_closed(extra, 30))
        assert answer.status == 503 and answer.headers["retry-after"]
        assert answer.json()["error"]["type"] == "overloaded"
    finally:
        for sock in idle:
            sock.close()
    time.sleep(0.5)
    assert httpx.get(tight.url + "/ping", timeout=30).status_code == 200


def test_a_client_that_hangs_up_is_logged_as_499_and_its_rows_are_dropped(tight):
    with rawhttp.connect(tight.url) as sock:
        sock.sendall(rawhttp.request("POST", "/invocations", {"Content-Type": "application/json"},
                                     HEAVY))
        time.sleep(1)  # read, admitted, being scored
    deadline = time.monotonic() + 60
    while not [line for line in log_lines(tight) if line.get("status") == 499]:
        assert time.monotonic() < deadline, tight.log_text()[-3000:]
        time.sleep(0.1)
    lines = log_lines(tight)
    assert [line for line in lines if line.get("status") == 499][0]["error"] == "cancelled"
    assert not [line for line in lines if line.get("event") == "internal_error"]
    response = httpx.post(tight.url + "/invocations", json=GOOD, timeout=60)
    assert response.status_code == 200  # the batcher is free again


def test_sigterm_under_load_exits_by_the_deadline(bert_dir):
    deadline = 3.0
    server = Server(bert_dir, env={**HEAVY_ENV, "SERVE_SHUTDOWN_TIMEOUT": str(deadline)})
    answers: list[bytes] = []
    try:
        server.wait_ready()

        def heavy() -> None:
            answers.append(rawhttp.exchange(server.url, rawhttp.request(
                "POST", "/invocations", {"Content-Type": "application/json",
                                         "Connection": "close"}, HEAVY), 60, half_close=False))

        threads = [threading.Thread(target=heavy) for _ in range(4)]
        for thread in threads:
            thread.start()
        time.sleep(2)  # four bodies read, their 4000 rows queued in the batcher
        started = time.monotonic()
        server.proc.send_signal(signal.SIGTERM)
        code = server.proc.wait(timeout=30)
        elapsed = time.monotonic() - started
        for thread in threads:
            thread.join(30)
    finally:
        server.stop()
        server.log_path.unlink(missing_ok=True)
    assert code == 0
    # The deadline plus what a busy machine adds to a signal's delivery; far below 30 s.
    assert elapsed < deadline + 3, elapsed
    assert len(answers) == 4
    for raw in answers:
        answer = Response(raw)
        assert answer.status in (200, 503), raw[:300]
        if answer.status == 503:
            assert answer.json()["error"]["type"] == "shutting_down"


def test_sigterm_while_a_refused_connection_lingers_still_exits_0(bert_dir):
    """A framing refusal is written raw, so h11 never saw it answered: the shutdown must
    not trip over that connection, and the others still drain."""
    server = Server(bert_dir)
    try:
        server.wait_ready()
        sock = rawhttp.connect(server.url)
        sock.sendall(b"POST /invocations HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n"
                     b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n")
        sock.settimeout(15)
        assert Response(sock.recv(65536)).status == 400
        # Within the refused connection's 2 s linger, with the socket still open.
        server.proc.send_signal(signal.SIGTERM)
        code = server.proc.wait(timeout=30)
        sock.close()
        lines = log_lines(server)
    finally:
        server.stop()
        server.log_path.unlink(missing_ok=True)
    assert code == 0, lines[-3:]
    assert any(line.get("event") == "stop" and line.get("exit_code") == 0 for line in lines)
