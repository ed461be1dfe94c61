"""`make bench` end to end at a tiny size: the harness runs and writes well-formed output.

Correctness only: no assertion here looks at a timing.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from bench import flops, workloads
from bench.report import targets

ROOT = Path(__file__).resolve().parent.parent


def test_workloads_are_deterministic_and_mixed():
    a, b = workloads.mixed100(2), workloads.mixed100(2)
    assert a == b
    assert a.requests[0] != a.requests[1]
    assert [len(r.documents) for r in a.requests] == [100, 100]
    words = sorted(len(d.split()) for d in a.requests[0].documents)
    assert words[0] < 150 < 400 < words[-1]  # short passages and long pages
    assert all(len(r.documents) == 10 for r in workloads.opensearch10(3).requests)
    rag = workloads.rag25(2)
    assert all(len(r.documents) == 25 and r.top_n == 5 for r in rag.requests)
    with pytest.raises(ValueError, match="unknown workload"):
        workloads.build("nope", 1)


def test_flops_formula_matches_minilm_by_hand():
    shape = flops.Shape(layers=6, hidden=384, intermediate=1536)
    dense = 6 * (8 * 384**2 + 4 * 384 * 1536)
    assert shape.dense_flops_per_token() == dense
    assert shape.sequence_flops(100) == 100 * (dense + 6 * 4 * 100 * 384) + 2 * 384**2 + 2 * 384


def test_bench_end_to_end_tiny(bert_dir, tmp_path):
    out, doc = tmp_path / "results", tmp_path / "BENCHMARKS.md"
    doc.write_text("# Benchmarks\n\nHand-written text stays.\n")
    command = [sys.executable, "-m", "bench", "--model-dir", str(bert_dir), "--quick",
               "--rounds", "0.3", "--modes", "fp32,bf16", "--no-dlc", "--no-infinity",
               "--no-fast-server", "--levels", "1,2",
               "--server-requests", "4", "--server-seconds", "20", "--gemm-seconds", "0.05",
               "--threads", "1", "--out", str(out), "--doc", str(doc)]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]

    (json_path,) = out.glob("*.json")
    results = json.loads(json_path.read_text())
    assert results["machine"]["cpu"]["cores"] >= 1
    assert results["machine"]["gemm_flops"]["cpu_float32"] > 0
    model = results["models"]["custom"]
    assert set(model["workloads"]) == {"mixed100", "opensearch10", "rag25"}
    rows = model["workloads"]["mixed100"]["results"]
    assert {"crossencoder", "aws-sample", "pipeline", "engine-fp32"} <= set(rows)
    for row in rows.values():
        assert row["pairs_per_s"] > 0 and row["p95_ms"] >= row["p50_ms"] > 0
        assert row["pairs_per_cpu_s"] > 0
        assert 0 < row["padding_efficiency"] <= 1
        assert row["share_of_fp32_gemm"] > 0
    # Every fp32 path scores the same pairs like a plain forward pass.
    for name in ("crossencoder", "aws-sample", "pipeline", "engine-fp32"):
        assert rows[name]["vs_plain_forward"]["max_abs"] < 1e-5, name
    assert rows["pipeline"]["padding_efficiency"] == 1.0
    assert rows["engine-fp32"]["padding_efficiency"] > rows["aws-sample"]["padding_efficiency"]
    server = results["server"]
    assert [r["concurrency"] for r in server["stacks"]["ours"]] == [1, 2]
    assert all(r["requests"] == 4 and r["errors"] == 0 for r in server["stacks"]["ours"])
    assert {"dlc", "infinity", "infinity-bf16"} <= set(server["skipped"])
    names = [t["target"] for t in results["targets"]]
    assert len(names) == 9 and "opensearch10" in names[1] and "rag25" in names[2]
    by_name = dict(zip(names, targets(results)))
    for name, target in by_name.items():  # no DLC, no Infinity: not measured
        if "toolkit + MMS" in name or "Infinity" in name:
            assert target["met"] is None, name
    exact = results["targets"][0]
    # The exact default is an engine mode within 1e-5 of a plain forward pass.
    assert exact["mode"].startswith("engine-") and exact["max_abs_deviation"] < 1e-5

    text = doc.read_text()
    assert "Hand-written text stays." in text
    kind = results["machine"]["cpu"]["kind"]
    assert kind in ("amx", "avx512_bf16", "plain")
    assert f"<!-- BEGIN GENERATED: cpu-{kind} -->" in text
    assert f"<!-- END GENERATED: cpu-{kind} -->" in text
    assert "| CrossEncoder.predict |" in text and "| ours fp32 |" in text
    assert results["machine"]["cpu"]["model"] in text
    assert "not measured" in text

    (md,) = out.glob("*.md")  # this run's tables, beside its JSON
    assert "| ours fp32 |" in md.read_text()

    (png,) = out.glob("*.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    import matplotlib.image

    height, width = matplotlib.image.imread(png).shape[:2]
    assert height > 100 and width > 100


def test_server_table_compares_each_mode_with_infinity_at_its_precision():
    from bench import report

    def level(c, rps):
        return {"concurrency": c, "requests": 10, "errors": 0, "rps": rps, "p50_ms": 100.0,
                "p99_ms": 200.0}

    server = {"levels": [8], "max_requests": 10, "max_seconds": 5.0,
              "ours_env": {"RERANK_PRECISION": "exact"},
              "ours_envs": {"ours": {"RERANK_PRECISION": "exact"},
                            "ours-fast": {"RERANK_PRECISION": "fast"}},
              "dlc_workers": 2, "dlc_env": {}, "skipped": {},
              "stacks": {"ours": [level(8, 6.0)], "ours-fast": [level(8, 10.0)],
                         "dlc": [level(8, 3.0)], "infinity": [level(8, 4.0)],
                         "infinity-bf16": [level(8, 4.0)]}}
    text = "\n".join(report.server_lines(server))
    assert "| 8 | ours exact | 6.0 | 100 | 200 | 0 | 2.00 | 1.50 |" in text
    assert "| 8 | ours fast | 10.0 | 100 | 200 | 0 | 3.33 | 2.50 |" in text
    exact = report._infinity_target(server, "ours")
    fast = report._infinity_target(server, "ours-fast")
    assert (exact["met"], round(exact["ratio"], 2)) == (True, 1.5)
    assert (fast["met"], fast["ratio"]) == (True, 2.5)


def test_chart_ceiling_is_the_gemm_rate_over_useful_flops_per_pair():
    from bench.chart import ceilings

    results = {"machine": {"gemm_flops": {"cpu_float32": 4e11, "cpu_bfloat16": 2e12}}}
    workload = {"useful_flops_per_request": 4e11, "pairs_per_request": 100}
    assert ceilings(results, workload) == {"float32": 100.0, "bfloat16": 500.0}


def test_infinity_runs_offline_on_the_machines_torch():
    from bench import infinity_server

    lock = (ROOT / "bench" / "infinity-requirements.txt").read_text().splitlines()
    pins = dict(line.split("==") for line in lock if line and not line.startswith("#"))
    assert pins["torch"] == "2.13.0" and pins["infinity_emb"] == "0.0.78"
    cmd = infinity_server.command(Path("/m"), 8123, "bfloat16")
    assert cmd[1:] == ["v2", "--model-id", "/m", "--engine", "torch", "--device", "cpu",
                       "--dtype", "bfloat16", "--host", "127.0.0.1", "--port", "8123",
                       "--no-vector-disk-cache"]
    env = infinity_server.environment(2)
    assert env["HF_HUB_OFFLINE"] == "1" and env["INFINITY_ANONYMOUS_USAGE_STATS"] == "0"
    with pytest.raises(ValueError, match="dtype"):
        infinity_server.command(Path("/m"), 8123, "int8")


def test_gemm_ceiling_is_the_best_library_and_shares_follow_it():
    from bench import engine_level, machine

    by_library = {"torch float32": 2e11, "onnxruntime float32": 3e11, "torch bfloat16": 9e11}
    assert machine.cpu_ceilings(by_library) == {"cpu_float32": 3e11, "cpu_bfloat16": 9e11}
    row = {"model_flops_per_s": 1.5e11, "flops_dtype": "bfloat16"}
    models = {"m": {"workloads": {"w": {"results": {"r": row}}}}}
    engine_level.reshare(models, {"gemm_flops": machine.cpu_ceilings(by_library)})
    assert (row["share_of_fp32_gemm"], row["share_of_own_gemm"]) == (0.5, 1.5e11 / 9e11)


def test_llm_reranker_bench_compares_each_precision_and_reports_it(tmp_path):
    """bench.llm_rerankers on a tiny Qwen3-Reranker: the engine and CrossEncoder agree in
    fp32, fast mode says how far it moves from exact, and the report renders both."""
    from bench import llm_rerankers, report
    from demo_models.llm import qwen3_reranker

    model_dir = qwen3_reranker(tmp_path / "qwen3", chat_template=True)
    results = llm_rerankers.compare(model_dir, "tiny Qwen3-Reranker", rounds=1, sizes=(4,),
                                    log=lambda _: None)
    exact, fast = (results["precisions"][p]["sizes"][4] for p in ("exact", "fast"))
    assert exact["max_abs_score_diff"] < 1e-4
    assert 0 < exact["prefix_tokens_saved"] < 1
    assert -1 <= fast["min_kendall_tau_vs_exact"] <= 1 and fast["max_abs_dev_vs_exact"] >= 0
    text = "\n".join(report.llm_lines(results))
    assert "| exact | float32 | 4 |" in text and "1 request(s) per size" in text
