"""What the benchmark counts and how it judges its targets, one section per rule.

Correctness only: synthetic rows, no timing is measured.
"""

from __future__ import annotations

import argparse

import pytest

from bench import engine_level, flops, report
from bench.device import encoders

MINILM = dict(layers=6, hidden=384, intermediate=1536)
BGE_LARGE = dict(layers=24, hidden=1024, intermediate=4096)


# ---------------------------------------------------------------- useful FLOPs


def test_first_token_heads_do_not_count_the_last_ffn_of_the_other_tokens():
    full = flops.Shape(**MINILM)
    first = flops.Shape(**MINILM, model_type="bert", first_token_only=True)
    t = 100
    assert first.sequence_flops(t) == full.sequence_flops(t) - (t - 1) * 4 * 384 * 1536
    assert first.sequence_flops(1) == full.sequence_flops(1)  # one token: nothing skipped
    assert first.flops([t, t]) == 2 * first.sequence_flops(t)
    assert "(t-1)*4*h*i" in flops.FORMULA


def test_the_first_token_rule_follows_the_engines_list(bert_dir):
    from reranker.backends.torch_backend import FIRST_TOKEN_HEADS

    shape = flops.Shape.from_model_dir(bert_dir)
    assert (shape.model_type, shape.first_token_only) == ("bert", True)
    assert all(flops.first_token_head(t) for t in FIRST_TOKEN_HEADS)
    assert not flops.first_token_head("qwen3")


def _overcount(shape: dict, tokens: int) -> float:
    """How much the old count (every token's last FFN) exceeds the useful one."""
    old = flops.Shape(**shape).sequence_flops(tokens)
    return old / flops.Shape(**shape, first_token_only=True).sequence_flops(tokens)


def test_the_doc_states_how_high_the_old_shares_read():
    from test_bench_docs import prose

    text = " ".join(prose().split())
    minilm, bge = _overcount(MINILM, 187), _overcount(BGE_LARGE, 231)
    assert f"{100 * (minilm - 1):.1f}% more FLOPs" in text
    assert f"divide those shares by {minilm:.3f}" in text
    assert f"{100 * (bge - 1):.1f}% more for the bge-large shape" in text
    assert f"divide by {bge:.3f}" in text


# ---------------------------------------------------------------- the exact default


def engine_row(label: str, pairs_per_s: float, dev: float | None = 5e-8, **extra) -> dict:
    row = {"label": label, "kind": "engine", "pairs_per_s": pairs_per_s,
           "pairs_per_cpu_s": pairs_per_s, "flops_dtype": "float32",
           "share_of_fp32_gemm": pairs_per_s / 50, **extra}
    if dev is not None:
        row["vs_plain_forward"] = {"max_abs": dev}
    return row


def peer_row(label: str, pairs_per_s: float) -> dict:
    return {"label": label, "kind": "peer", "pairs_per_s": pairs_per_s,
            "pairs_per_cpu_s": pairs_per_s, "flops_dtype": "float32",
            "vs_plain_forward": {"max_abs": 4e-8}}


def mixed100(**engines) -> dict:
    rows = {"crossencoder": peer_row("CrossEncoder.predict", 20.0),
            "pipeline": peer_row("HF pipeline (DLC default)", 25.0)}
    rows.update(engines)
    return rows


def results_for(kind: str, rows: dict) -> dict:
    return {"machine": {"cpu": {"kind": kind}},
            "models": {"minilm": {"workloads": {"mixed100": {"results": rows}}}}}


NOISY = mixed100(**{"engine-onnx": engine_row("ours onnx", 40.0),
                    "engine-openvino": engine_row("ours openvino", 41.0),
                    "engine-fp32": engine_row("ours fp32", 32.0)})


def test_the_exact_default_is_the_runtime_auto_picks_not_the_fastest_row():
    exact = report.targets(results_for("avx512_bf16", NOISY))[0]
    assert exact["mode"] == "engine-onnx"  # choice.MEASURED's first on the AMD EPYC
    assert exact["ratio"] == pytest.approx(2.0)
    assert "fastest exact runtime in this run: ours openvino 2.05x" in exact["measured"]
    amx = report.targets(results_for("amx", NOISY))[0]
    assert amx["mode"] == "engine-openvino" and "fastest exact" not in amx["measured"]
    share = report.targets(results_for("avx512_bf16", NOISY))[-2]
    assert share["measured"].startswith("ours onnx:")


def test_the_exact_default_falls_back_as_auto_does_and_must_stay_exact():
    without_onnx = {k: v for k, v in NOISY.items() if k != "engine-onnx"}
    assert report.exact_mode(without_onnx, "avx512_bf16")[0] == "engine-openvino"
    drifted = dict(NOISY, **{"engine-onnx": engine_row("ours onnx", 80.0, dev=3e-4)})
    exact = report.targets(results_for("avx512_bf16", drifted))[0]
    assert exact["mode"] == "engine-onnx" and exact["met"] is False
    assert "not exact" in exact["measured"]


# ---------------------------------------------------------------- failed server requests


def level(concurrency: int, rps: float, requests: int = 10, errors: int = 0) -> dict:
    return {"concurrency": concurrency, "requests": requests, "errors": errors, "rps": rps,
            "p50_ms": 100.0, "p99_ms": 200.0}


def server(ours: dict, peer_rps: float = 2.0) -> dict:
    return {"levels": [8], "max_requests": 10, "max_seconds": 5.0,
            "ours_env": {"RERANK_PRECISION": "exact"},
            "ours_envs": {"ours": {"RERANK_PRECISION": "exact"}}, "dlc_workers": 2,
            "dlc_env": {}, "skipped": {},
            "served": {"ours": {"backend": "onnx", "dtype": "float32", "threads": 2,
                                "batch_tokens": 512}},
            "stacks": {"ours": [ours], "dlc": [level(8, peer_rps)],
                       "infinity": [level(8, peer_rps)]}}


@pytest.mark.parametrize("ours", [level(8, 9.0, requests=8, errors=2),
                                  level(8, 0.0, requests=0, errors=10)],
                         ids=["some errors", "nothing answered"])
def test_a_server_target_is_missed_when_ours_fails_requests(ours):
    data = server(ours)
    for target in (report._server_target(data), report._infinity_target(data, "ours")):
        assert target["met"] is False, target
        assert f"{ours['errors']} (" in target["measured"]


def test_errors_are_shown_beside_p99():
    data = server(level(8, 9.0, requests=8, errors=2))
    text = "\n".join(report.server_lines(data))
    assert "| 8 | ours exact | 9.0 | 100 | 200 | 2 (20%) |" in text
    clean = report._server_target(server(level(8, 9.0)))
    assert clean["met"] is True and "errors 0 vs 0" in clean["measured"]


def test_a_peer_that_answered_nothing_is_not_a_win():
    data = server(level(8, 9.0), peer_rps=0.0)
    data["stacks"]["dlc"] = [level(8, 0.0, requests=0, errors=10)]
    target = report._server_target(data)
    assert target["met"] is None and "answered nothing" in target["measured"]


# ---------------------------------------------------------------- CrossEncoder on a GPU


def test_device_targets_report_against_the_faster_crossencoder_too():
    def rate(x):
        return {"mixed100": {"pairs_per_s": x}}

    node = {"peers": {"ours fp32": rate(30.0), "ours bf16": rate(100.0),
                      "ours fp16": rate(90.0), "CrossEncoder fp16": rate(40.0),
                      "CrossEncoder bf16": rate(50.0)}}
    out = encoders.targets(node)
    assert out["mixed100_vs_crossencoder_fp16"] == pytest.approx(2.5)
    assert out["mixed100_vs_crossencoder_best"] == pytest.approx(2.0)
    assert out["mixed100_crossencoder_best"] == "CrossEncoder bf16"


def test_the_gpu_run_has_crossencoder_at_each_half_precision(tmp_path):
    args = argparse.Namespace(peers=["crossencoder", "pipeline"], modes=[], batch_tokens=0,
                              threads=1, cache=tmp_path)
    names = [s.name for s in engine_level.peer_specs("minilm", tmp_path, args, {}, "cuda")]
    assert {"crossencoder", "crossencoder-fp16", "crossencoder-bf16"} <= set(names)
    cpu = [s.name for s in engine_level.peer_specs("minilm", tmp_path, args, {}, "cpu")]
    assert "crossencoder-fp16" not in cpu


def test_half_precision_rows_divide_by_crossencoder_at_their_dtype():
    def row(label, kind, rate, dtype):
        return {"label": label, "kind": kind, "pairs_per_s": rate, "pairs_per_cpu_s": rate,
                "p50_ms": 1.0, "p95_ms": 1.0, "padding_efficiency": 1.0,
                "share_of_fp32_gemm": None, "flops_dtype": dtype}

    rows = {"crossencoder": row("CrossEncoder.predict", "peer", 10.0, "float32"),
            "crossencoder-fp16": row("CrossEncoder.predict fp16", "peer", 40.0, "float16"),
            "engine-fp16-cuda": row("ours fp16-cuda", "engine", 80.0, "float16"),
            "engine-fp32-cuda": row("ours fp32-cuda", "engine", 20.0, "float32")}
    model = {"title": "m", "workloads": {"mixed100": {
        "results": rows, "description": "d", "requests": 1, "real_tokens_per_pair": 10,
        "useful_flops_per_request": 1e9, "reference_requests": 0}}}
    text = "\n".join(report.engine_lines("m", model))
    assert "| ours fp16-cuda | 80.0 | 2.00 | 2.00x |" in text
    assert "| ours fp32-cuda | 20.0 | 2.00 | 2.00x |" in text


def test_crossencoder_peer_casts_to_the_dtype_asked(bert_dir):
    import torch

    from bench.peers import CrossEncoderPeer

    peer = CrossEncoderPeer(bert_dir, "cpu", dtype="bfloat16")
    assert next(peer.model.parameters()).dtype == torch.bfloat16
    assert (peer.name, peer.flops_dtype) == ("crossencoder-bf16", "bfloat16")
    assert len(peer.score("q", ["a", "b"])) == 2
