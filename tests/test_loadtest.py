"""``python -m deploy loadtest`` against our server through the real ``sagemaker-runtime``
client, bounded in count and time: what it reports is what it sent, and the autoscaling
target follows AWS's formula from the best level that met the objective."""

from __future__ import annotations

import argparse
import json
import math

import pytest

from deploy.cli import main
from deploy.client.loadtest import request_body, target_concurrency, target_invocations

pytestmark = pytest.mark.slow  # starts a server

SMALL = ["--documents", "4", "--words", "12", "--requests", "10", "--seconds", "60"]


def loadtest(url, *args) -> int:
    return main(["loadtest", "--endpoint", "reranker", "--endpoint-url", url, *args])


def test_levels_table_and_target(client_url, tmp_path, capsys):
    out = tmp_path / "levels.json"
    chart = tmp_path / "levels.png"
    assert loadtest(client_url, *SMALL, "--concurrency", "2", "1", "--p99-ms", "60000",
                    "--instances", "2", "--price-per-hour", "1.5", "--json", str(out),
                    "--chart", str(chart), "--repeat", "0.25") == 0
    assert chart.read_bytes().startswith(b"\x89PNG")
    printed = capsys.readouterr().out
    report = json.loads(out.read_text())
    assert [lv["concurrency"] for lv in report["levels"]] == [1, 2]
    assert report["repeat"] == 0.25 and "25% repeated" in printed
    for lv in report["levels"]:
        assert lv["requests"] == 10 and lv["errors"] == 0
        assert lv["p50_ms"] <= lv["p90_ms"] <= lv["p99_ms"]
        assert lv["pairs_per_s"] == pytest.approx(4 * lv["requests_per_s"])
    best = max(report["levels"], key=lambda lv: lv["requests_per_s"])
    assert report["best_concurrency"] == best["concurrency"]
    assert report["target_invocations"] == max(1, math.floor(best["requests_per_s"] * 15))
    assert f"TARGET_INVOCATIONS={report['target_invocations']}" in printed
    # Two instances: half the best level's clients, shared between them.
    assert report["target_concurrency"] == max(0.1, round(best["concurrency"] * 0.5 / 2, 1))
    assert f"TARGET_CONCURRENCY={report['target_concurrency']:g}" in printed
    # Two instances at $1.5/hour, busy at the best level's rate.
    dollars_per_second = 2 * 1.5 / 3600
    assert report["usd_per_1000_requests"] == pytest.approx(
        dollars_per_second / best["requests_per_s"] * 1000)
    assert report["usd_per_million_documents"] == pytest.approx(
        dollars_per_second / best["pairs_per_s"] * 1e6)
    assert f"${report['usd_per_1000_requests']:.4f} per 1,000 requests of 4 documents" in (
        " ".join(printed.split()))


def test_an_objective_nothing_meets_stops_early_and_says_so(client_url, tmp_path, capsys):
    out = tmp_path / "levels.json"
    assert loadtest(client_url, *SMALL, "--concurrency", "1", "2", "--p99-ms", "0.001",
                    "--json", str(out)) == 0
    report = json.loads(out.read_text())
    assert len(report["levels"]) == 1  # p99 far past the objective: no second level
    assert report["target_invocations"] is None and report["target_concurrency"] is None
    assert "No level met p99" in capsys.readouterr().out


def test_refused_requests_end_in_one_line(client_url, capsys):
    # More documents than the server takes: every request is a 413, nothing was measured.
    assert loadtest(client_url, "--documents", "5000", "--words", "1", "--requests", "3",
                    "--concurrency", "1") == 2
    err = capsys.readouterr().err
    assert "every request failed" in err and "ModelError" in err and err.count("\n") == 1
    assert loadtest("http://127.0.0.1:9", "--requests", "2", "--concurrency", "1") == 2
    assert "every request failed" in capsys.readouterr().err


def test_a_later_level_that_fails_whole_keeps_the_levels_measured(client_url, tmp_path,
                                                                   capsys, monkeypatch):
    """The top of a sweep, throttled whole: the levels below it (billed already) are still
    printed and saved, with a note where the sweep stopped."""
    from deploy.client import loadtest as lt

    real = lt._level

    def throttled_past_one(runtime, endpoint, target, first, concurrency, args):
        if concurrency > 1:
            raise lt.AllFailed("every request failed; the first: ThrottlingException: x")
        return real(runtime, endpoint, target, first, concurrency, args)

    monkeypatch.setattr(lt, "_level", throttled_past_one)
    out = tmp_path / "l.json"
    assert loadtest(client_url, *SMALL, "--concurrency", "1", "2", "--json", str(out)) == 1
    report = json.loads(out.read_text())
    assert [lv["concurrency"] for lv in report["levels"]] == [1]
    assert report["levels"][0]["requests"] == 10
    assert report["stopped"].startswith("at 2 clients every request failed")
    assert "note: at 2 clients every request failed" in capsys.readouterr().err


@pytest.mark.parametrize("args, message", [
    (["--concurrency", "0"], "--concurrency takes"),
    (["--concurrency", *map(str, range(1, 10))], "--concurrency takes"),
    (["--requests", "0"], "--requests must be at least 1"),
    (["--p99-ms", "-1"], "must be positive"),
    (["--price-per-hour", "0"], "--price-per-hour must be positive"),
    (["--repeat", "1"], "--repeat must be 0 or more and below 1"),
    (["--repeat", "-0.1"], "--repeat must be 0 or more and below 1"),
])
def test_bad_arguments(args, message, capsys):
    assert loadtest("http://127.0.0.1:9", *args) == 2
    assert message in capsys.readouterr().err


def test_target_is_aws_formula_per_instance():
    assert target_invocations(10.0, 1) == 300   # 10 req/s x 60 x 0.5
    assert target_invocations(10.0, 2) == 150
    assert target_invocations(0.001, 1) == 1
    assert target_concurrency(16, 1) == 8.0    # 16 clients x 0.5
    assert target_concurrency(16, 4) == 2.0
    assert target_concurrency(1, 8) == 0.1     # never 0: the policy needs a positive target


def test_every_request_is_new_unless_asked_to_repeat():
    """With 16 bodies in turn, an endpoint's score cache answered all but the first 16
    requests and the test measured the cache: each request's text is now its own."""
    shape = argparse.Namespace(documents=2, words=6, query_words=3, repeat=0.0)
    bodies = [request_body(n, shape) for n in range(1, 401)]
    assert len(set(bodies)) == 400
    assert request_body(7, shape) == bodies[6]  # the same number, the same request
    shape.repeat = 0.3
    repeated = [request_body(n, shape) for n in range(1, 401)]
    again = sum(body in repeated[:n] for n, body in enumerate(repeated))
    assert 0.2 * 400 < again < 0.4 * 400
