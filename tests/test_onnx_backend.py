"""The ONNX Runtime backend scores like torch through the same SageMaker hooks, and every
ONNX file that cannot serve (garbage, another model's graph, too far from torch) is refused
with a clear error, at load or at export time, never at the first request."""

import dataclasses
import json
import os
import shutil
import subprocess
import sys

import numpy as np
import onnx
import pytest

import inference
from deploy.package.onnx_export import ExportRefused, export_onnx, without_timings
from reranker.engine import Reranker
from reranker.loading import ModelLoadError
from reranker.settings import Settings

# XLM-R's ONNX-vs-torch parity is checked in test_vespa_package.py (its tokenizer takes
# ~10 s to load here, so it is exported once per suite, there).
KINDS = ["bert", "bert2", "deberta"]
QUERY = "what is the capital city of america?"
DOCS = [
    "Carson City is the capital city of the American state of Nevada.",
    "Washington, D.C. is the capital of the United States. It is a federal district.",
    "",
    "panda " * 700,  # cut at the model's limit
    "Ünïcødé 文字 emoji 🐼 and \"quotes\"",
    "short",
]
PAYLOADS = {
    "cohere": {"query": QUERY, "documents": DOCS},
    "tei": {"query": QUERY, "texts": DOCS, "raw_scores": True},
    "topk": {"query": QUERY, "documents": DOCS, "topk": len(DOCS)},
    "pipeline": {"inputs": [{"text": d, "text_pair": QUERY} for d in DOCS]},
}


@pytest.fixture(scope="session")
def exported(model_dirs, tmp_path_factory):
    """A copy of each tiny model with onnx/model.onnx, exported once per session."""
    cache = {}

    def get(kind: str, quantize: bool = False):
        key = (kind, quantize)
        if key not in cache:
            out = tmp_path_factory.mktemp(f"onnx-{kind}-{'int8' if quantize else 'fp32'}")
            shutil.copytree(model_dirs(kind), out, dirs_exist_ok=True)
            report = export_onnx(out, out, quantize=quantize, tolerance=0.05 if quantize else 1e-4)
            cache[key] = (out, report)
        return cache[key]

    return get


def _load_hooks(model_dir, monkeypatch, backend: str):
    monkeypatch.setenv("RERANK_BACKEND", backend)
    monkeypatch.setenv("RERANK_WARMUP", "false")
    return inference.model_fn(str(model_dir))


def _serve(model, payload: dict) -> object:
    request = inference.input_fn(json.dumps(payload), "application/json")
    return json.loads(inference.output_fn(inference.predict_fn(request, model),
                                          "application/json"))


def _scores(dialect: str, body) -> dict[int, float]:
    """index -> score, whatever the dialect's shape (order may differ on near-ties)."""
    if dialect == "cohere":
        return {r["index"]: r["relevance_score"] for r in body["results"]}
    if dialect == "pipeline":
        return dict(enumerate(r["score"] for r in body))
    return {r["index"]: r["score"] for r in body}


@pytest.mark.parametrize("kind", KINDS)
def test_parity_with_torch_through_the_hooks(kind, exported, monkeypatch):
    model_dir, report = exported(kind)
    assert report["fp32_max_abs_logit_diff"] <= 1e-4
    torch_model = _load_hooks(model_dir, monkeypatch, "torch")
    onnx_model = _load_hooks(model_dir, monkeypatch, "onnx")
    try:
        assert onnx_model.describe()["backend"] == "onnx"
        for dialect, payload in PAYLOADS.items():
            torch_scores = _scores(dialect, _serve(torch_model, payload))
            onnx_scores = _scores(dialect, _serve(onnx_model, payload))
            assert sorted(onnx_scores) == list(range(len(DOCS))), dialect
            for index, score in torch_scores.items():
                assert abs(onnx_scores[index] - score) <= 1e-4, (kind, dialect, index)
    finally:
        torch_model.close()
        onnx_model.close()


@pytest.mark.parametrize("kind, runtime", [("avx512_bf16", "onnx"), ("plain", "onnx"),
                                           ("amx", "openvino")])
def test_auto_backend_picks_onnx_and_reports_it(kind, runtime, exported):
    """The measured fastest exact runtime per CPU kind (forced, so every branch runs on any
    machine): ONNX Runtime fp32 on an AMD EPYC or a plain CPU, OpenVINO fp32 on an AMX Xeon."""
    if runtime == "openvino":
        pytest.importorskip("openvino")  # optional: without it the AMX row falls to torch
    model_dir, _ = exported("bert")
    engine = Reranker.from_dir(str(model_dir), Settings(warmup=False, cpu_features=kind))
    try:
        info = engine.describe()
    finally:
        engine.close()
    assert (info["backend"], info["dtype"], info["onnx_file"]) == (runtime, "float32",
                                                                  "onnx/model.onnx")


def test_int8_export_reports_its_deviation(exported):
    model_dir, report = exported("bert", quantize=True)
    assert sorted(os.listdir(model_dir / "onnx")) == ["model_int8.onnx", "report.json"]
    written = json.loads((model_dir / "onnx" / "report.json").read_text())
    assert written == without_timings(report) and "int8_pairs_per_second" in report
    for key in ("int8_max_abs_score_diff", "int8_min_spearman", "int8_min_top10_overlap"):
        assert key in report
    assert report["int8_max_abs_score_diff"] <= 0.05
    assert len(report["int8"]["spearman"]) == len(report["int8"]["top10_overlap"]) == 4
    print(f"\nint8 (tiny BERT): max |score diff| {report['int8_max_abs_score_diff']:.2e},"
          f" Spearman >= {report['int8_min_spearman']:.3f},"
          f" top-10 overlap >= {report['int8_min_top10_overlap']:.2f}")
    torch_engine = Reranker.from_dir(str(model_dir), Settings(backend="torch", warmup=False))
    int8_engine = Reranker.from_dir(str(model_dir), Settings(backend="onnx", warmup=False))
    try:
        assert int8_engine.describe()["dtype"] == "int8"
        diff = np.abs(np.array(torch_engine.score(QUERY, DOCS))
                      - np.array(int8_engine.score(QUERY, DOCS)))
    finally:
        torch_engine.close()
        int8_engine.close()
    assert diff.max() <= 0.05


def test_export_over_tolerance_is_refused_and_writes_nothing(model_dirs, tmp_path):
    out = tmp_path / "model"
    shutil.copytree(model_dirs("bert"), out)
    (out / "onnx").mkdir()
    (out / "onnx" / "keep.txt").write_text("an earlier export")
    with pytest.raises(ExportRefused, match="int8 model's scores differ .*tolerance 1e-09"):
        export_onnx(out, out, quantize=True, tolerance=1e-9)
    with pytest.raises(ExportRefused, match="fp32 ONNX graph differs"):
        export_onnx(out, out, quantize=False, tolerance=1e-12)
    assert os.listdir(out / "onnx") == ["keep.txt"]
    assert not [p for p in os.listdir(out) if p.startswith(".onnx-export-")]


def _model_with(exported, tmp_path, kind: str, onnx_bytes: bytes):
    """The tiny `kind` model whose onnx/model.onnx is replaced by the given bytes."""
    model_dir, _ = exported(kind)
    out = tmp_path / f"{kind}-bad"
    shutil.copytree(model_dir, out)
    (out / "onnx" / "model.onnx").write_bytes(onnx_bytes)
    return out


def _load(model_dir, **settings):
    return Reranker.from_dir(str(model_dir), Settings(backend="onnx", **settings))


def test_garbage_bytes_are_refused_at_load(exported, tmp_path):
    bad = _model_with(exported, tmp_path, "bert", b"\x00garbage, not a protobuf" * 50)
    with pytest.raises(ModelLoadError, match="model.onnx is not a loadable ONNX model"):
        _load(bad)


def test_another_models_graph_is_refused_at_load(exported, tmp_path):
    deberta_graph = (exported("deberta")[0] / "onnx" / "model.onnx").read_bytes()
    with pytest.raises(ModelLoadError, match="model_type=deberta-v2.*another model"):
        _load(_model_with(exported, tmp_path, "bert", deberta_graph))


def _strip_metadata(path) -> bytes:
    model = onnx.load(str(path))
    del model.metadata_props[:]
    return model.SerializeToString()


def test_label_count_mismatch_is_refused_without_metadata(exported, tmp_path):
    # An ONNX file exported elsewhere (no reranker.* metadata) with two labels, in a
    # directory whose config.json has one: found by the load-time probe.
    two_labels = _strip_metadata(exported("bert2")[0] / "onnx" / "model.onnx")
    with pytest.raises(ModelLoadError, match=r"shape \[1, 2\].*1 label"):
        _load(_model_with(exported, tmp_path, "bert", two_labels))


def test_wrong_input_set_is_refused_at_load(exported, tmp_path):
    model = onnx.load(str(exported("bert")[0] / "onnx" / "model.onnx"))
    renamed = {"input_ids": "ids"}
    for item in model.graph.input:
        item.name = renamed.get(item.name, item.name)
    for node in model.graph.node:
        node.input[:] = [renamed.get(name, name) for name in node.input]
    with pytest.raises(ModelLoadError, match=r"takes inputs \['attention_mask', 'ids'"):
        _load(_model_with(exported, tmp_path, "bert", model.SerializeToString()))


def test_onnx_model_setting_names_a_missing_file(exported):
    model_dir, _ = exported("bert")
    with pytest.raises(ModelLoadError, match="RERANK_ONNX_MODEL='int8'.*model_int8.onnx"):
        _load(model_dir, onnx_model="int8")


def test_backend_imports_and_runs_without_torch(exported):
    model_dir, _ = exported("bert")
    code = (
        "import sys; sys.modules['torch'] = None\n"
        "import numpy as np\n"
        "from reranker.backends.onnx_backend import OnnxBackend\n"
        f"b = OnnxBackend({str(model_dir)!r})\n"
        "ids = np.array([[101, 2054, 102, 3007, 102]])\n"
        "out = b.forward(ids, np.ones_like(ids), np.zeros_like(ids))\n"
        "assert out.shape == (1, 1) and out.dtype == np.float32, out\n"
        "assert 'torch' not in sys.modules or sys.modules['torch'] is None\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr


@pytest.mark.parametrize("dtype, limit", [("float32", 1e-4), ("auto", 0.02)])
def test_openvino_runtime_scores_like_torch(exported, dtype, limit):
    pytest.importorskip("openvino")  # optional: pip install openvino
    model_dir, _ = exported("bert")
    torch_engine = Reranker.from_dir(str(model_dir), Settings(backend="torch", warmup=False))
    ov_engine = Reranker.from_dir(str(model_dir), Settings(
        backend="onnx", onnx_runtime="openvino", dtype=dtype, warmup=False))
    try:
        info = ov_engine.describe()
        diff = np.abs(np.array(torch_engine.score(QUERY, DOCS))
                      - np.array(ov_engine.score(QUERY, DOCS)))
    finally:
        torch_engine.close()
        ov_engine.close()
    assert "openvino" in info and info["dtype"] in (("float32",) if dtype == "float32"
                                                     else ("float32", "bfloat16"))
    assert diff.max() <= limit


def test_weights_beyond_protobufs_limit_go_to_one_side_file(model_dirs, tmp_path, monkeypatch):
    # bge-reranker-large/-v2-m3 exceed 2 GB in fp32; a tiny limit takes the same path.
    from deploy.package import onnx_export

    monkeypatch.setattr(onnx_export, "PROTOBUF_LIMIT", 1000)
    out = tmp_path / "model"
    shutil.copytree(model_dirs("bert"), out)
    export_onnx(out, out, quantize=False, tolerance=1e-4)
    assert sorted(os.listdir(out / "onnx")) == ["model.onnx", "model.onnx.data", "report.json"]
    assert os.path.getsize(out / "onnx" / "model.onnx") < 100_000
    torch_engine = Reranker.from_dir(str(out), Settings(backend="torch", warmup=False))
    onnx_engine = Reranker.from_dir(str(out), Settings(backend="onnx", warmup=False))
    try:
        diff = np.abs(np.array(torch_engine.score(QUERY, DOCS, raw=True))
                      - np.array(onnx_engine.score(QUERY, DOCS, raw=True)))
    finally:
        torch_engine.close()
        onnx_engine.close()
    assert diff.max() <= 1e-4
    export_onnx(out, out, quantize=True, tolerance=0.05)  # int8 fits in one file again
    assert sorted(os.listdir(out / "onnx")) == ["model_int8.onnx", "report.json"]


@pytest.mark.parametrize("cpu_kind, runtime", [("avx512_bf16", "onnx"), ("amx", "openvino")])
def test_fp32_graph_takes_its_own_token_budget_unless_one_is_set(exported, cpu_kind, runtime):
    """The exact default's runtime on each CPU kind (ONNX Runtime on the EPYC, OpenVINO on
    AMX, whatever CPU runs the test) batches fp32 in its measured budget."""
    from reranker.backends.onnx_backend import FP32_BATCH_TOKENS

    if runtime == "openvino":
        pytest.importorskip("openvino")
    model_dir, _ = exported("bert")
    settings = Settings(warmup=False, cpu_features=cpu_kind)
    auto = Reranker.from_dir(str(model_dir), settings)
    pinned = Reranker.from_dir(str(model_dir), dataclasses.replace(settings, batch_tokens=2048))
    try:
        assert auto.describe()["backend"] == runtime
        assert auto.describe()["batch_tokens"] == FP32_BATCH_TOKENS
        assert pinned.describe()["batch_tokens"] == 2048
        assert np.allclose(auto.score(QUERY, DOCS), pinned.score(QUERY, DOCS), atol=1e-5)
    finally:
        auto.close()
        pinned.close()


def test_openvino_is_a_backend_of_its_own(exported):
    pytest.importorskip("openvino")  # optional: pip install openvino
    model_dir, _ = exported("bert")
    engine = Reranker.from_dir(str(model_dir), Settings(backend="openvino", dtype="float32",
                                                        warmup=False))
    try:
        info = engine.describe()
    finally:
        engine.close()
    assert (info["backend"], info["onnx_file"]) == ("openvino", "onnx/model.onnx")


def test_openvino_is_exact_unless_fast_is_asked(exported):
    pytest.importorskip("openvino")
    from reranker import cpu

    model_dir, _ = exported("bert")
    dtypes = {}
    for precision in ("auto", "fast"):
        engine = Reranker.from_dir(str(model_dir), Settings(
            backend="openvino", precision=precision, cpu_features="avx512_bf16", warmup=False))
        try:
            dtypes[precision] = engine.describe()["dtype"]
            scores = engine.score(QUERY, DOCS)
        finally:
            engine.close()
        assert len(scores) == len(DOCS)
    assert dtypes["auto"] == "float32"
    # bf16 where the hardware has it (OpenVINO computes fp32 on a CPU without it).
    assert dtypes["fast"] == ("bfloat16" if cpu.this_machine().bf16 else "float32")


def test_openvino_missing_is_a_clear_load_error(exported, monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_openvino(name, *args, **kwargs):
        if name == "openvino" or name.startswith("openvino."):
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_openvino)
    model_dir, _ = exported("bert")
    with pytest.raises(ModelLoadError, match="needs openvino"):
        Reranker.from_dir(str(model_dir), Settings(backend="openvino", warmup=False))
