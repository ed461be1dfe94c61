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
               "--rounds", "0.3", "--modes", "fp32,bf16", "--no-dlc", "--levels", "1,2",
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
    assert "dlc" in server["skipped"]
    assert targets(results)[-1]["met"] is None  # no DLC: not measured
    names = [t["target"] for t in results["targets"]]
    assert len(names) == 5 and "opensearch10" in names[1] and "rag25" in names[2]
    exact = results["targets"][0]
    # The exact default is an engine mode within 1e-5 of a plain forward pass.
    assert exact["mode"].startswith("engine-") and exact["max_abs_deviation"] < 1e-5

    text = doc.read_text()
    assert "Hand-written text stays." in text
    assert "<!-- BEGIN GENERATED: cpu -->" in text and "<!-- END GENERATED: cpu -->" in text
    assert "| CrossEncoder.predict |" in text and "| ours fp32 |" in text
    assert results["machine"]["cpu"]["model"] in text
    assert "not measured" in text

    (png,) = out.glob("*.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    import matplotlib.image

    height, width = matplotlib.image.imread(png).shape[:2]
    assert height > 100 and width > 100


def test_gpu_check_runs_on_cpu(bert_dir, tmp_path):
    """`make gpu-check` is the same code on CPU (device=cpu), so it cannot rot unrun."""
    out = tmp_path / "gpu"
    command = [sys.executable, "-m", "bench.gpu_check", "--device", "cpu", "--quick",
               "--model-dir", str(bert_dir), "--levels", "1,2", "--out", str(out)]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, (done.stdout + done.stderr)[-3000:]
    (path,) = out.glob("gpu-check-cpu-*.json")
    results = json.loads(path.read_text())
    model = results["models"]["custom"]
    assert model["parity"]["fp32"]["max_abs"] <= 1e-5
    assert -1 <= model["parity"]["bf16"]["kendall_tau_mean"] <= 1
    assert "fp16" in model["skipped"] and "skipped" in results["oom_split"]
    assert set(model["pairs_per_s"]) == {"ours fp32", "ours bf16", "CrossEncoder fp32"}
    assert all(v > 0 for v in model["share_of_peak"].values())
    levels = results["server"]["levels"]
    assert [r["concurrency"] for r in levels] == [1, 2]
    assert all(r["requests"] > 0 and r["errors"] == 0 for r in levels)
    assert results["ok"] and "OK" in done.stdout
