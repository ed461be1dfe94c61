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
