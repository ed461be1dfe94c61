"""The benchmark's harness (options, outputs, servers, load generator, chart), one section
per behaviour.

Correctness only: no assertion looks at a timing.
"""

from __future__ import annotations

import contextlib
import http.server
import threading

from bench import closed_loop

# ---------------------------------------------------------------- the load generator


@contextlib.contextmanager
def http_server(handle):
    """A server on 127.0.0.1 whose POST runs ``handle(request_handler)``."""
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            self.rfile.read(int(self.headers.get("Content-Length", 0)))
            handle(self)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def answer(handler, status: int) -> None:
    handler.send_response(status)
    handler.send_header("Content-Length", "2")
    handler.end_headers()
    handler.wfile.write(b"{}")


def test_failed_requests_count_and_enter_the_percentiles():
    def slow_error(handler):
        threading.Event().wait(0.2)  # every answer comes after at least 200 ms
        answer(handler, 503)

    with http_server(slow_error) as url:
        row = closed_loop.run(url, "/x", [b"{}"], 2, 4, 30, 10, timeout=10)
    assert (row["requests"], row["errors"], row["rps"]) == (0, 4, 0.0)
    assert row["error_samples"] == ["503"]
    assert row["p99_ms"] is not None and row["p99_ms"] >= 200


def test_one_deadline_for_every_client_and_stuck_ones_are_errors():
    release = threading.Event()

    def stall(handler):
        release.wait(30)  # answers only once the test is over
        answer(handler, 200)

    try:
        with http_server(stall) as url:
            row = closed_loop.run(url, "/x", [b"{}"], 3, 3, 2.0, 10, timeout=30, grace=0.3)
    finally:
        release.set()
    assert (row["requests"], row["errors"]) == (0, 3)
    assert row["error_samples"] == ["no answer by the level's deadline"]
    assert row["p99_ms"] >= 300  # each waited at least the grace period
