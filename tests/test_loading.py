"""Loading refuses unsafe or incomplete model directories with a message saying why."""

import json
import shutil

import numpy as np
import pytest
import torch

from reranker.engine import Reranker
from reranker.loading import ModelLoadError
from reranker.settings import Settings, SettingsError


@pytest.fixture()
def copy_of(bert_dir, tmp_path):
    def make(*drop):
        out = tmp_path / "model"
        shutil.copytree(bert_dir, out)
        for name in drop:
            (out / name).unlink()
        return out
    return make


def test_missing_directory():
    with pytest.raises(ModelLoadError, match="does not exist"):
        Reranker.from_dir("/nonexistent/model")


def test_missing_config(copy_of):
    with pytest.raises(ModelLoadError, match="config.json"):
        Reranker.from_dir(str(copy_of("config.json")))


def test_missing_tokenizer(copy_of):
    with pytest.raises(ModelLoadError, match="tokenizer.json"):
        Reranker.from_dir(str(copy_of("tokenizer.json")))


def test_missing_weights(copy_of):
    with pytest.raises(ModelLoadError, match="no weights"):
        Reranker.from_dir(str(copy_of("model.safetensors")))


def test_pickle_weights_refused_unless_allowed(copy_of, bert_engine):
    from safetensors.torch import load_file

    model_dir = copy_of()
    state = load_file(model_dir / "model.safetensors")
    torch.save(state, model_dir / "pytorch_model.bin")
    (model_dir / "model.safetensors").unlink()
    with pytest.raises(ModelLoadError, match="RERANK_ALLOW_PICKLE"):
        Reranker.from_dir(str(model_dir))
    engine = Reranker.from_dir(str(model_dir), Settings(allow_pickle=True))
    try:
        docs = ["a panda", "the capital"]
        np.testing.assert_allclose(engine.score("q", docs), bert_engine.score("q", docs),
                                   atol=1e-6)
    finally:
        engine.close()


def test_remote_code_is_never_run_by_default(copy_of, tmp_path):
    model_dir = copy_of()
    marker = tmp_path / "remote-code-ran"
    (model_dir / "evil.py").write_text(
        f"open({str(marker)!r}, 'w').write('x')\n"
        "from transformers import BertForSequenceClassification as EvilModel\n")
    config = json.loads((model_dir / "config.json").read_text())
    config["auto_map"] = {"AutoModelForSequenceClassification": "evil.EvilModel",
                          "AutoConfig": "evil.EvilModel"}
    (model_dir / "config.json").write_text(json.dumps(config))
    try:
        Reranker.from_dir(str(model_dir)).close()
    except Exception:
        pass  # refusing is fine too; running the code is not
    assert not marker.exists()


def test_bf16_on_cpu_is_close_to_fp32(bert_dir, bert_engine):
    engine = Reranker.from_dir(str(bert_dir), Settings(dtype="bfloat16"))
    try:
        assert engine.describe()["dtype"] == "bfloat16"
        docs = ["capital of america", "panda bear", "washington"]
        np.testing.assert_allclose(engine.score("q", docs, raw=True),
                                   bert_engine.score("q", docs, raw=True), atol=5e-2)
    finally:
        engine.close()


def test_fp16_on_cpu_is_refused(bert_dir):
    with pytest.raises(RuntimeError, match="GPU"):
        Reranker.from_dir(str(bert_dir), Settings(dtype="float16"))


def test_model_name_comes_from_reranker_json(copy_of):
    model_dir = copy_of()
    (model_dir / "reranker.json").write_text(json.dumps({"model_id": "org/my-reranker"}))
    engine = Reranker.from_dir(str(model_dir), Settings(warmup=False))
    try:
        assert engine.name == "org/my-reranker"
    finally:
        engine.close()


def test_settings_from_env():
    settings = Settings.from_env({"RERANK_MAX_LENGTH": "256", "RERANK_DTYPE": "BFloat16",
                                  "RERANK_ALLOW_PICKLE": "yes", "RERANK_MAX_QUERY_SHARE": "0.25"})
    assert settings.max_length == 256 and settings.dtype == "bfloat16"
    assert settings.allow_pickle is True and settings.max_query_share == 0.25
    assert Settings.from_env({}).trust_remote_code is False


@pytest.mark.parametrize("env,needle", [
    ({"RERANK_MAX_LENGTH": "lots"}, "RERANK_MAX_LENGTH"),
    ({"RERANK_DTYPE": "int4"}, "RERANK_DTYPE"),
    ({"RERANK_ALLOW_PICKLE": "maybe"}, "RERANK_ALLOW_PICKLE"),
    ({"RERANK_MAX_DOCUMENTS": "0"}, "RERANK_MAX_DOCUMENTS"),
])
def test_bad_settings_name_the_variable(env, needle):
    with pytest.raises(SettingsError, match=needle):
        Settings.from_env(env)


# ---- one description of a model directory; the backend contract ----------------------

def _facts(path):
    from reranker import model_dir

    return model_dir.read(path)


def test_model_dir_describes_the_facts_every_consumer_reads(copy_of, model_dirs):
    from reranker import model_dir

    bert = _facts(copy_of())
    assert (bert.model_type, bert.family, bert.num_labels) == ("bert", "bert", 1)
    assert bert.max_length == 512 and bert.usable_length(256) == 256
    assert bert.tokenizer_json and bert.safetensors and not bert.pickle and bert.onnx == ()
    assert bert.onnx_path("int8").endswith("onnx/model_int8.onnx")
    xlmr = _facts(model_dirs("xlmr"))
    assert (xlmr.family, xlmr.max_length) == ("roberta", 512)  # 514 positions, 2 reserved
    # One default for every consumer: transformers' 2 labels when config.json names none.
    assert model_dir.num_labels({}) == 2 == model_dir.DEFAULT_NUM_LABELS
    assert model_dir.num_labels({"id2label": {"0": "LABEL_0"}, "num_labels": 2}) == 1
    assert model_dir.max_length({"max_position_embeddings": 512}, 1e30) == 512
    assert model_dir.max_length({}, None) == model_dir.DEFAULT_MAX_LENGTH


def test_model_dir_refuses_unreadable_config(copy_of):
    model = copy_of()
    (model / "config.json").write_text("{not json")
    with pytest.raises(ModelLoadError, match="config.json cannot be read"):
        Reranker.from_dir(str(model), Settings(warmup=False))


def test_engine_reads_its_limit_from_the_model_dir(copy_of):
    model = copy_of()
    tokenizer_config = json.loads((model / "tokenizer_config.json").read_text())
    tokenizer_config["model_max_length"] = 64
    (model / "tokenizer_config.json").write_text(json.dumps(tokenizer_config))
    engine = Reranker.from_dir(str(model), Settings(warmup=False))
    try:
        assert engine.max_length == _facts(model).max_length == 64
    finally:
        engine.close()


def test_every_backend_keeps_the_contract(bert_engine):
    from reranker.backends.base import Backend
    from reranker.loading import BACKENDS

    assert set(BACKENDS) >= {"torch", "onnx", "openvino"}
    backend = bert_engine.backend
    assert isinstance(backend, Backend)
    assert backend.device_type == "cpu" and isinstance(backend.device_type, str)
    assert backend.health() and backend.pad_multiple == 1 and not backend.batches_itself


def test_a_backend_that_batches_itself_skips_the_batcher(bert_dir, bert_engine):
    from reranker.backends.torch_backend import TorchBackend
    from reranker.batching import Unbatched

    class WholeRequests(TorchBackend):
        batches_itself = True
        calls: list = []

        def forward(self, ids, mask, types):
            self.calls.append(ids.shape)
            return super().forward(ids, mask, types)

    backend = WholeRequests(str(bert_dir), device="cpu", dtype="float32",
                            trust_remote_code=False, use_safetensors=True)
    from transformers import AutoTokenizer

    engine = Reranker(backend, AutoTokenizer.from_pretrained(bert_dir), _facts(bert_dir),
                      Settings(warmup=False), "whole")
    docs = ["a short one", "a somewhat longer document about pandas " * 5, "x"]
    try:
        assert isinstance(engine.batcher, Unbatched)
        got = engine.score("q", docs, raw=True)
    finally:
        engine.close()
    assert len(backend.calls) == 1 and backend.calls[0][0] == 3
    np.testing.assert_allclose(got, bert_engine.score("q", docs, raw=True), atol=1e-5)


def test_rows_are_padded_to_the_backends_multiple_only_within_max_length(bert_dir,
                                                                         bert_engine):
    """CUDA backends pad rows to a multiple of 8; where max_length is no such multiple, a
    row at the limit would be padded past the model's last position, so nothing is."""
    from transformers import AutoTokenizer

    from reranker.backends.torch_backend import TorchBackend

    backend = TorchBackend(str(bert_dir), device="cpu", dtype="float32",
                           trust_remote_code=False, use_safetensors=True)
    backend.pad_multiple = 8  # what the backend sets on CUDA
    tokenizer = AutoTokenizer.from_pretrained(bert_dir)
    docs = ["pandas " * 40, "a bear"]
    for max_length, multiple in ((64, 8), (61, 1)):
        engine = Reranker(backend, tokenizer, _facts(bert_dir),
                          Settings(warmup=False, max_length=max_length), "padded")
        assert engine.batcher._pad_multiple == multiple
        got = engine.score("what is a panda?", docs, raw=True)
        expected = Reranker(bert_engine.backend, tokenizer, _facts(bert_dir),
                            Settings(warmup=False, max_length=max_length), "plain")
        np.testing.assert_allclose(got, expected.score("what is a panda?", docs, raw=True),
                                   atol=1e-5)


def test_load_errors_are_one_type():
    from reranker import scoring
    from reranker.encoding import PairEncoder

    with pytest.raises(ModelLoadError, match="1 or 2 output labels"):
        scoring.check_num_labels(3)

    class SlowTokenizer:
        is_fast = False

    with pytest.raises(ModelLoadError, match="fast tokenizer"):
        PairEncoder(SlowTokenizer(), 512, 0.5)


def test_auto_picks_the_fastest_exact_backend_per_cpu_kind(copy_of, monkeypatch):
    import importlib.util

    from reranker.cpu import PRESETS
    from reranker.loading import choose_backend

    model = copy_of()
    (model / "onnx").mkdir()
    (model / "onnx" / "model.onnx").write_bytes(b"graph")
    auto = Settings(warmup=False)
    epyc, xeon, plain = PRESETS["avx512_bf16"], PRESETS["amx"], PRESETS["plain"]
    assert choose_backend(_facts(model), auto, cuda=False, cpu_facts=epyc) == "onnx"
    assert choose_backend(_facts(model), auto, cuda=False, cpu_facts=plain) == "onnx"
    real = importlib.util.find_spec
    with monkeypatch.context() as m:  # the same choice whether or not OpenVINO is installed
        m.setattr(importlib.util, "find_spec", lambda name, *a: object()
                  if name == "openvino" else real(name, *a))
        assert choose_backend(_facts(model), auto, cuda=False, cpu_facts=xeon) == "openvino"
        m.setattr(importlib.util, "find_spec", lambda name, *a: None
                  if name == "openvino" else real(name, *a))
        assert choose_backend(_facts(model), auto, cuda=False, cpu_facts=xeon) == "torch"
    assert choose_backend(_facts(model), auto, cuda=True, cpu_facts=epyc) == "torch"
    assert choose_backend(_facts(model), Settings(backend="onnx", onnx_runtime="openvino"),
                          cuda=False) == "openvino"
    (model / "onnx" / "model.onnx").rename(model / "onnx" / "model_int8.onnx")
    assert choose_backend(_facts(model), auto, cuda=False, cpu_facts=xeon) == "onnx"  # asked for
    (model / "onnx" / "model_int8.onnx").unlink()
    for kind in (epyc, xeon, plain):
        assert choose_backend(_facts(model), auto, cuda=False, cpu_facts=kind) == "torch"


def test_auto_keeps_torch_where_onnx_runtime_is_missing(copy_of, monkeypatch):
    """An archive with onnx/ on the HF DLC (no onnxruntime) still serves from its weights."""
    import importlib.util

    from reranker.loading import choose_backend

    model = copy_of()
    (model / "onnx").mkdir()
    (model / "onnx" / "model.onnx").write_bytes(b"graph")
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None
                        if name in ("onnxruntime", "openvino") else real(name, *a))
    for kind in ("avx512_bf16", "amx", "plain"):
        settings = Settings(warmup=False, cpu_features=kind)
        assert choose_backend(_facts(model), settings, cuda=False) == "torch", kind


@pytest.mark.parametrize("model_type, limit", [
    ("bert", 514), ("roberta", 512), ("xlm-roberta", 512), ("mpnet", 512),
    ("data2vec-text", 512), ("roberta-prelayernorm", 512), ("xmod", 512),
])
def test_position_offsets_are_reserved_where_the_embeddings_have_them(model_type, limit):
    """A RoBERTa-style model's position ids start after its padding index: with 514
    positions and no tokenizer limit, a 514-token row would index past the table."""
    from reranker import model_dir

    config = {"model_type": model_type, "max_position_embeddings": 514}
    assert model_dir.max_length(config, None) == limit
