"""The server's life: /ping before and after the model is ready, the overload limit, our
own faults as 500, the logs, and SIGTERM with a request in flight.

The model directory carries its own ``code/inference.py`` (as a model.tar.gz may), which
the server must load the way the HF toolkit does: hooks without a context argument, and
the image's defaults for the hooks it leaves out (here output_fn).  Its hooks wait on
files in a gate directory, so each state is reached on purpose, not by timing.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from bench.local_server import Server, free_port, ping
from gated_model import GATED_INFERENCE, post_in_thread, wait_file

pytestmark = pytest.mark.slow  # starts servers

GOOD = {"query": "capital", "documents": ["washington dc", "a panda"]}


@pytest.fixture(scope="module")
def gates(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("gates")


@pytest.fixture(scope="module")
def gated_model(bert_dir, tmp_path_factory) -> Path:
    model_dir = tmp_path_factory.mktemp("gated") / "model"
    shutil.copytree(bert_dir, model_dir)
    (model_dir / "code").mkdir()
    (model_dir / "code" / "inference.py").write_text(GATED_INFERENCE)
    return model_dir


@pytest.fixture(scope="module")
def server(gated_model, gates):
    env = {"TEST_GATE_DIR": str(gates), "SERVE_MAX_CONCURRENCY": "1"}
    process = Server(gated_model, env=env)
    yield process
    process.stop(timeout=10)
    process.log_path.unlink(missing_ok=True)


def log_lines(server: Server) -> list[dict]:
    return [json.loads(line) for line in server.log_text().splitlines() if line.startswith("{")]


def logged(server: Server, request_id: str, timeout: float = 10) -> list[dict]:
    """The log lines of one request; the line is written just after the response is sent."""
    deadline = time.monotonic() + timeout
    while True:
        lines = [line for line in log_lines(server) if line.get("request_id") == request_id]
        if any(line.get("event") == "request" for line in lines) or time.monotonic() > deadline:
            return lines
        time.sleep(0.05)


def test_ping_is_503_until_the_model_is_loaded(server, gates):
    deadline = time.monotonic() + 60
    while ping(server.url) != 503:  # listening while model_fn waits on its gate
        assert time.monotonic() < deadline and server.proc.poll() is None, server.log_text()
        time.sleep(0.1)
    response = httpx.get(server.url + "/ping")
    assert response.json()["error"]["type"] == "model_loading"
    early = httpx.post(server.url + "/invocations", json=GOOD)
    assert early.status_code == 503 and early.json()["error"]["type"] == "model_loading"
    (gates / "load").touch()
    server.wait_ready(60)
    assert httpx.post(server.url + "/invocations", json=GOOD).status_code == 200


def test_start_up_line_names_model_device_dtype_settings_and_hooks(server, gates):
    (gates / "load").touch()  # (already open after the loading test; not when run alone)
    server.wait_ready(60)
    ready = next(line for line in log_lines(server) if line.get("event") == "ready")
    assert ready["model"] == "model" and ready["device"] == "cpu"
    assert ready["dtype"] == "float32" and ready["settings"]["max_documents"] == 1000
    assert ready["hooks"]["model_fn"].endswith("/model/code/inference.py")
    assert ready["hooks"]["predict_fn"].endswith("/model/code/inference.py")
    assert "/model/code/" not in ready["hooks"]["output_fn"]  # the image's default
    start = next(line for line in log_lines(server) if line.get("event") == "start")
    assert start["server"]["max_payload_bytes"] == 6 * 1024 * 1024


def test_request_log_line(server):
    response = httpx.post(server.url + "/invocations", json=GOOD,
                          headers={"X-Request-Id": "log-me"})
    assert response.status_code == 200
    line = next(line for line in logged(server, "log-me") if line.get("event") == "request")
    assert line["event"] == "request" and line["status"] == 200
    assert line["dialect"] == "cohere" and line["documents"] == 2 and line["tokens"] > 0
    assert line["latency_ms"] >= 0


def test_our_fault_is_500_json_with_request_id_and_logged(server):
    response = httpx.post(server.url + "/invocations",
                          json={"query": "explode", "documents": ["a"]})
    assert response.status_code == 500
    error = response.json()["error"]
    assert error["type"] == "internal_error"
    assert error["request_id"] == response.headers["x-request-id"]
    lines = logged(server, error["request_id"])
    assert any("a bug in our code" in line.get("exception", "") for line in lines)
    assert httpx.post(server.url + "/invocations", json=GOOD).status_code == 200


def test_overloaded_server_answers_503_at_once(server, gates):
    thread, out = post_in_thread(server.url, {"query": "block:a", "documents": ["x"]})
    wait_file(gates / "blocked-a")
    response = httpx.post(server.url + "/invocations", json=GOOD)  # limit is 1
    assert response.status_code == 503
    assert response.json()["error"]["type"] == "overloaded"
    assert response.headers["retry-after"]
    (gates / "release-a").touch()
    thread.join(60)
    assert out["response"].status_code == 200
    assert httpx.post(server.url + "/invocations", json=GOOD).status_code == 200


def test_a_client_that_hangs_up_keeps_its_slot_until_its_work_ends(server, gates):
    """The slot goes back when the work ends, not when the client leaves: else every
    hang-up would queue more work than SERVE_MAX_CONCURRENCY allows."""
    body = json.dumps({"query": "block:c", "documents": ["x"]}).encode()
    head = ("POST /invocations HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Request-Id: gone-c\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n")
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as client:
        client.sendall(head.encode() + body)
        wait_file(gates / "blocked-c")
    lines = logged(server, "gone-c")
    assert [line["status"] for line in lines if line.get("event") == "request"] == [499]
    busy = httpx.post(server.url + "/invocations", json=GOOD)  # limit is 1, still working
    assert busy.status_code == 503 and busy.json()["error"]["type"] == "overloaded"
    (gates / "release-c").touch()
    deadline = time.monotonic() + 10
    while (status := httpx.post(server.url + "/invocations", json=GOOD).status_code) != 200:
        assert status == 503 and time.monotonic() < deadline
        time.sleep(0.05)


def test_a_body_refused_before_it_is_read_still_gets_its_answer(server):
    """413 by Content-Length closes the connection with most of the body unsent: closed at
    once, the socket would reset and the client (http.client here) lose the answer."""
    import http.client

    body = b"x" * (8 * 1024 * 1024)  # over the 6 MB limit
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    try:
        connection.request("POST", "/invocations", body=body,
                           headers={"Content-Type": "application/json"})
        response = connection.getresponse()
        assert response.status == 413
        assert json.loads(response.read())["error"]["type"] == "payload_too_large"
    finally:
        connection.close()
    assert httpx.post(server.url + "/invocations", json=GOOD).status_code == 200


def test_sigterm_finishes_the_request_in_flight_then_exits_0(server, gates):
    thread, out = post_in_thread(server.url, {"query": "block:b", "documents": ["x"]})
    wait_file(gates / "blocked-b")
    server.proc.terminate()
    deadline = time.monotonic() + 10
    while ping(server.url, timeout=0.5) != 0:  # stops taking new connections
        assert time.monotonic() < deadline, "still accepting connections after SIGTERM"
        time.sleep(0.05)
    assert server.proc.poll() is None  # waiting for the request in flight
    (gates / "release-b").touch()
    thread.join(60)
    assert out["response"].status_code == 200
    assert out["response"].json()["results"][0]["index"] == 0
    assert server.proc.wait(timeout=30) == 0


def test_past_the_shutdown_deadline_requests_get_503_and_the_exit_is_0(gated_model, tmp_path):
    (tmp_path / "load").touch()
    server = Server(gated_model, env={"TEST_GATE_DIR": str(tmp_path),
                                      "SERVE_SHUTDOWN_TIMEOUT": "1"})
    try:
        server.wait_ready(120)
        thread, out = post_in_thread(server.url, {"query": "block:never", "documents": ["x"]})
        wait_file(tmp_path / "blocked-never")
        server.proc.terminate()
        assert server.proc.wait(timeout=30) == 0
        thread.join(30)
        assert out["response"].status_code == 503
        assert out["response"].json()["error"]["type"] == "shutting_down"
    finally:
        server.stop()
        server.log_path.unlink(missing_ok=True)


def test_past_the_request_deadline_its_work_is_dropped_and_the_answer_is_503(gated_model,
                                                                          tmp_path):
    (tmp_path / "load").touch()
    server = Server(gated_model, env={"TEST_GATE_DIR": str(tmp_path),
                                      "SERVE_REQUEST_TIMEOUT": "1"})
    try:
        server.wait_ready(120)
        started = time.monotonic()
        response = httpx.post(server.url + "/invocations", timeout=60,
                              json={"query": "block:late", "documents": ["x"]})
        assert response.status_code == 503 and time.monotonic() - started < 30
        assert response.json()["error"]["type"] == "deadline_exceeded"
        assert "SERVE_REQUEST_TIMEOUT" in response.json()["error"]["message"]
        # The held work ends as cancelled once released, and the server serves on.
        (tmp_path / "release-late").touch()
        assert httpx.post(server.url + "/invocations", json=GOOD, timeout=60).status_code == 200
        metrics = httpx.get(server.url + "/metrics").text
        assert ('reranker_requests_shed_total{reason="deadline_exceeded",route="/invocations"}'
                ' 1.0') in metrics
    finally:
        server.stop()
        server.log_path.unlink(missing_ok=True)


def test_a_sigterm_while_starting_stops_it_with_0(bert_dir, tmp_path):
    """A SIGTERM while Python still imports the server: as PID 1 in a container it would be
    dropped without a handler, so one is installed first, and the server, once built, stops
    cleanly (without it: killed, -15).  Sent right after the import: no timing decides."""
    port = str(free_port())
    starting = ("import os, signal, sys; import serving.__main__ as server;"
                " os.kill(os.getpid(), signal.SIGTERM);"
                f" sys.exit(server.main(['--model-dir', {str(bert_dir)!r},"
                f" '--host', '127.0.0.1', '--port', {port!r}]))")
    done = subprocess.run([sys.executable, "-c", starting], capture_output=True, text=True,
                          timeout=120, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    events = [json.loads(line).get("event") for line in done.stdout.splitlines()
              if line.startswith("{")]
    assert events[-1] == "stop", events


def test_model_that_fails_to_load_ends_the_process_with_1(tmp_path):
    (tmp_path / "config.json").write_text("{}")
    failing = Server(tmp_path)
    try:
        assert failing.proc.wait(timeout=120) == 1
        assert any(line.get("event") == "load_failed" for line in log_lines(failing))
    finally:
        failing.stop()
        failing.log_path.unlink(missing_ok=True)


def test_a_port_in_use_is_one_line_before_the_model_loads(bert_dir):
    import socket

    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        done = subprocess.run([sys.executable, "-m", "serving", "--model-dir", str(bert_dir),
                               "--host", "127.0.0.1", "--port", str(port)],
                              capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert done.stderr == (f"error: cannot listen on 127.0.0.1:{port}: Address already in use"
                           " (another server there? set SERVE_PORT, or PORT= for make"
                           " serve)\n")


@pytest.mark.parametrize("env,args,needle", [
    ({"SERVE_MAX_CONCURRENCY": "many"}, [], "SERVE_MAX_CONCURRENCY='many' is not a valid int"),
    ({"SAGEMAKER_BIND_TO_PORT": "0"}, [], "port"),
    ({}, ["--model-dir", "/nonexistent/model"], "does not exist"),
])
def test_bad_settings_exit_2_with_one_line(bert_dir, env, args, needle):
    command = [sys.executable, "-m", "serving", "--model-dir", str(bert_dir), *args]
    done = subprocess.run(command, env={**os.environ, **env},
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and needle in done.stderr, done.stderr


def test_the_port_check_names_a_port_held_or_not_a_port(capsys):
    """What `make docker-run` asks before Docker does (serving.ports)."""
    import socket

    from serving import ports

    assert ports.main(["127.0.0.1", "x1"]) == 2
    assert "'x1' is not a port" in capsys.readouterr().err
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        assert ports.main(["127.0.0.1", str(port)]) == 2
    assert "Address already in use" in capsys.readouterr().err
    assert ports.main(["127.0.0.1", str(port)]) == 0  # free again
