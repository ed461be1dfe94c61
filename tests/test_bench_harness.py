"""The benchmark's harness (options, outputs, servers, load generator, chart), one section
per behaviour.

Correctness only: no assertion looks at a timing.
"""

from __future__ import annotations

import contextlib
import http.server
import io
import os
import threading

import pytest

from bench import closed_loop, gpu_check, machine, report, run

# ---------------------------------------------------------------- where the tables go


def test_only_a_full_default_run_rewrites_the_doc(tmp_path):
    assert run.parse_args([]).doc == run.DOC
    assert run.parse_args(["--out", str(tmp_path)]).doc == run.DOC  # where, not what
    for partial in (["--quick"], ["--no-server"], ["--models", "minilm"], ["--rounds", "2"]):
        assert run.parse_args(partial).doc is None, partial
    mine = tmp_path / "mine.md"
    assert run.parse_args(["--quick", "--doc", str(mine)]).doc == mine
    assert run.parse_args(["--doc", ""]).doc is None


def test_a_run_without_the_doc_writes_its_tables_beside_the_json(tmp_path):
    from rich.console import Console

    from test_bench_targets import NOISY, results_for

    rows = {k: dict(v, p50_ms=1.0, p95_ms=1.0, padding_efficiency=1.0) for k, v in NOISY.items()}
    results = results_for("avx512_bf16", rows)
    results["machine"].update(date="2026-12-07 21:00 UTC", gemm_flops={}, versions={})
    results["machine"]["cpu"].update(model="Test CPU", cores=2, system="Linux", flags=[])
    results["config"] = {"threads": 2, "command": "python -m bench --quick"}
    results["models"]["minilm"].update(title="MiniLM")
    results["models"]["minilm"]["workloads"]["mixed100"].update(
        description="mixed", requests=1, real_tokens_per_pair=10,
        useful_flops_per_request=1e9, pairs_per_request=100, reference_requests=0)
    args = run.parse_args(["--quick", "--out", str(tmp_path)])
    out = io.StringIO()
    assert run._write(args, results, Console(file=out, width=1000)) == 0
    (md,) = tmp_path.glob("*.md")
    assert "### Latest run" in md.read_text() and "| ours onnx |" in md.read_text()
    assert f"tables:  {md}" in out.getvalue() and "left as it is" in out.getvalue()


# ---------------------------------------------------------------- bad input


@pytest.mark.parametrize("argv", [["--server-requests", "-5"], ["--server-requests", "0"],
                                  ["--server-seconds", "-1"], ["--gemm-seconds", "-1"],
                                  ["--batch-tokens", "-3"], ["--threads", "0"],
                                  ["--rounds", "x"]])
def test_bad_numbers_are_an_argparse_error(argv, capsys):
    with pytest.raises(SystemExit) as exit_info:
        run.parse_args(argv)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert f"argument {argv[0]}:" in err and "Traceback" not in err


def test_batch_tokens_zero_is_the_engines_default():
    assert run.parse_args(["--batch-tokens", "0"]).batch_tokens == 0


@pytest.mark.parametrize("levels", ["8,x", "0", ","])
def test_gpu_check_levels_are_an_argparse_error(levels, capsys):
    with pytest.raises(SystemExit) as exit_info:
        gpu_check.parse_args(["--levels", levels])
    assert exit_info.value.code == 2
    assert "--levels must be comma-separated positive integers" in capsys.readouterr().err


# ---------------------------------------------------------------- threads


def test_threads_default_to_the_cores_this_process_may_use(monkeypatch):
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0})
    monkeypatch.setattr(os, "cpu_count", lambda: 8)
    assert run.parse_args([]).threads == 1
    cpu = machine.cpu_info()
    assert (cpu["cores"], cpu["online_cores"]) == (1, 8)
    assert report.cores_text(cpu) == "1 usable cores of 8 online"


def test_the_onnx_runtime_ceiling_runs_on_the_benchs_threads(monkeypatch):
    ort = pytest.importorskip("onnxruntime")
    seen = []
    real = ort.InferenceSession

    def session(*args, sess_options=None, **kwargs):
        seen.append(sess_options.intra_op_num_threads)
        return real(*args, sess_options=sess_options, **kwargs)

    monkeypatch.setattr(ort, "InferenceSession", session)
    assert machine.ort_gemm_rate(n=16, seconds=0.01, threads=1) > 0
    assert seen == [1]


# ---------------------------------------------------------------- the servers' environment


def test_the_benchs_servers_get_no_stray_settings(monkeypatch, tmp_path):
    from bench import local_server
    from bench.dlc_stack import DlcStack

    monkeypatch.setenv("RERANK_CACHE_ROWS", "1000")
    monkeypatch.setenv("SERVE_MAX_CONCURRENCY", "3")
    clean = local_server.environment({"RERANK_THREADS": "2"}, inherit_settings=False)
    assert clean["RERANK_THREADS"] == "2"
    assert "RERANK_CACHE_ROWS" not in clean and "SERVE_MAX_CONCURRENCY" not in clean
    assert local_server.environment()["RERANK_CACHE_ROWS"] == "1000"  # the tests' default

    stack = DlcStack.__new__(DlcStack)  # its environment only: no process started
    stack.venv, stack.workers, stack.base = tmp_path, 2, tmp_path
    stack.url = stack.management_url = "http://127.0.0.1:1"
    stack.inherit_settings = False
    env = stack._environment({"RERANK_THREADS": "1"})
    assert env["RERANK_THREADS"] == "1"
    assert "RERANK_CACHE_ROWS" not in env and "SERVE_MAX_CONCURRENCY" not in env


def test_server_bench_starts_clean_servers_and_records_what_they_run(monkeypatch, tmp_path):
    from bench import local_server, server_bench, workloads

    started = []

    @contextlib.contextmanager
    def fake_server(model_dir, env=None, port=None, *, ready_timeout=0, inherit_settings=True):
        started.append((env, inherit_settings))
        yield "http://127.0.0.1:1"

    monkeypatch.setattr(local_server, "start_server", fake_server)
    monkeypatch.setattr(server_bench, "ours_model_dir", lambda model_dir, env, cache: model_dir)
    monkeypatch.setattr(server_bench, "served_settings", lambda url: {"backend": "onnx"})
    envs = {"ours": dict(server_bench.OURS_ENV)}
    with server_bench.stacks(tmp_path, lambda _: None, envs, tmp_path,
                             workloads.opensearch10(1), dlc=False, infinity=False) as (t, _):
        assert t["ours"].served == {"backend": "onnx"}
    ((env, inherit),) = started
    assert inherit is False and env["RERANK_CACHE_ROWS"] == "0"
    assert server_bench.DLC_ENV["RERANK_CACHE_ROWS"] == "0"


def test_the_server_table_names_what_our_server_runs():
    from test_bench_targets import level, server

    text = "\n".join(report.server_lines(server(level(8, 9.0))))
    assert "(served: onnx float32, 2 threads, 512-token batches, no cache)" in text


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


# ---------------------------------------------------------------- the chart


def test_chart_legends_cover_no_bar_label():
    from bench import chart
    from test_bench_targets import NOISY

    rows = {k: dict(v) for k, v in NOISY.items()}
    workload = {"results": rows, "useful_flops_per_request": 4e11, "pairs_per_request": 100}

    def lv(c, rps):
        return {"concurrency": c, "rps": rps, "p99_ms": 1000.0 / rps, "requests": 9,
                "errors": 0}

    results = {"machine": {"cpu": {"model": "CPU", "cores": 2}, "date": "today",
                           "gemm_flops": {"cpu_float32": 2e11, "cpu_bfloat16": 4e11}},
               "models": {"m": {"workloads": {"mixed100": workload}}},
               "server": {"levels": [1, 8], "stacks": {
                   "ours": [lv(1, 3.6), lv(8, 3.1)], "dlc": [lv(1, 1.5), lv(8, 2.8)]}}}
    fig = chart.figure(results)
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    checked = 0
    for ax in fig.axes:
        legend = ax.get_legend()
        if legend is None:
            continue
        box = legend.get_window_extent(renderer)
        assert not box.overlaps(ax.get_window_extent(renderer)), ax.get_title()
        for other in fig.axes:  # bar labels of every panel, twins included
            for text in other.texts:
                assert not box.overlaps(text.get_window_extent(renderer)), text.get_text()
        checked += 1
    assert checked == 2  # the engine panel's ceilings and the server panel
    import matplotlib.pyplot as plt

    plt.close(fig)
