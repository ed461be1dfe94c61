"""What the engine refuses to serve, and how LLM profiles are chosen and overridden.

A checkpoint whose weights are not all in its files (a bi-encoder, a base language model
loaded as a classifier, a causal LM without its LM head) is refused at load with the
missing weights named; an unknown causal LM without a usable chat template is refused with
the supported families; ``reranker.json`` and RERANK_* settings pick or change a profile.
"""

from __future__ import annotations

import json
import shutil

import pytest
import torch
import transformers
from safetensors.torch import load_file, save_file

from demo_models import encoders as tiny_models
from reranker import profiles
from reranker.backends.base import ModelLoadError
from reranker.engine import Reranker
from reranker.errors import InvalidRequest
from reranker.request import RerankRequest
from reranker.settings import Settings, SettingsError


def _load(path, **settings) -> Reranker:
    return Reranker.from_dir(str(path), Settings(warmup=False, **settings))


def test_bi_encoder_checkpoint_is_refused(tmp_path):
    """A bare BertModel (what bge-m3 and other bi-encoders ship) has no head to score with."""
    tokenizer = transformers.AutoTokenizer.from_pretrained(tiny_models._minilm_path())
    config = transformers.BertConfig(vocab_size=tokenizer.vocab_size, **tiny_models.TINY)
    transformers.BertModel(config).save_pretrained(tmp_path)
    tokenizer.save_pretrained(tmp_path)
    for backend in ("auto", "torch", "onnx"):
        with pytest.raises(ModelLoadError) as info:
            _load(tmp_path, backend=backend)
        assert "BertModel" in str(info.value) and "ForSequenceClassification" in str(info.value)


def test_classifier_without_its_head_weights_is_refused_naming_them(bert_dir, tmp_path):
    """config.json says a classifier, the files lack the head: transformers would make one up."""
    target = tmp_path / "headless-reranker"
    shutil.copytree(bert_dir, target)
    weights = load_file(target / "model.safetensors")
    for key in [k for k in weights if k.startswith("classifier.")]:
        del weights[key]
    save_file(weights, target / "model.safetensors", metadata={"format": "pt"})
    with pytest.raises(ModelLoadError) as info:
        _load(target)
    message = str(info.value)
    assert "classifier.weight" in message and "classifier.bias" in message
    assert "random" in message


def test_causal_lm_without_its_lm_head_is_refused(llm_dirs, tmp_path):
    target = tmp_path / "no-head-reranker"
    shutil.copytree(llm_dirs("qwen3"), target)
    weights = load_file(target / "model.safetensors")
    del weights["lm_head.weight"]
    save_file(weights, target / "model.safetensors", metadata={"format": "pt"})
    with pytest.raises(ModelLoadError, match="lm_head.weight"):
        _load(target)


@pytest.mark.parametrize("family,profile", [("qwen3", "qwen3-reranker"),
                                            ("mxbai-v2", "mxbai-rerank-v2"),
                                            ("gemma", "bge-reranker-v2-gemma"),
                                            ("qwen3-seq-cls", "qwen3-reranker-seq-cls")])
def test_a_family_architecture_alone_is_no_reranker(llm_dirs, tmp_path, family, profile):
    """Qwen3-0.6B (chat) is a Qwen3ForCausalLM as Qwen3-Reranker is: a folder named like a
    chat model is refused, and served once the operator names the profile."""
    target = tmp_path / "Qwen3-0.6B"
    shutil.copytree(llm_dirs(family), target)
    with pytest.raises(ModelLoadError, match=f"RERANK_PROFILE={profile}"):
        _load(target)
    engine = _load(target, profile=profile)
    try:
        assert engine.describe()["profile"] == profile
    finally:
        engine.close()


def test_a_name_that_says_reranker_is_recognised(llm_dirs, tmp_path):
    """A hub cache names the repository two levels up; a packaged model's reranker.json
    records its model id."""
    cache = tmp_path / "models--Qwen--Qwen3-Reranker-0.6B" / "snapshots" / "0123abc"
    shutil.copytree(llm_dirs("qwen3"), cache)
    recorded = tmp_path / "model"
    shutil.copytree(llm_dirs("qwen3"), recorded)
    (recorded / "reranker.json").write_text(json.dumps({"model_id": "Qwen/Qwen3-Reranker-0.6B"}))
    for path in (cache, recorded):
        engine = _load(path)
        try:
            assert engine.describe()["profile"] == "qwen3-reranker"
        finally:
            engine.close()


def test_an_embedding_model_is_refused_whatever_its_name(llm_dirs, tmp_path):
    """Qwen3-Embedding ships as a Qwen3ForCausalLM with sentence-transformers' Pooling."""
    target = tmp_path / "Qwen3-Embedding-reranker-like"
    shutil.copytree(llm_dirs("qwen3"), target)
    (target / "modules.json").write_text(json.dumps([
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {"idx": 1, "name": "1", "path": "1_Pooling",
         "type": "sentence_transformers.models.Pooling"}]))
    for settings in ({}, {"profile": "qwen3-reranker"}):
        with pytest.raises(ModelLoadError, match="embedding model"):
            _load(target, **settings)


def test_seq_cls_checkpoint_without_its_score_head_is_refused(llm_dirs, tmp_path):
    target = tmp_path / "no-score-reranker"
    shutil.copytree(llm_dirs("qwen3-seq-cls"), target)
    weights = load_file(target / "model.safetensors")
    del weights["score.weight"]
    save_file(weights, target / "model.safetensors", metadata={"format": "pt"})
    with pytest.raises(ModelLoadError, match="score.weight"):
        _load(target)


def _llama(tmp_path, chat_template: str | None = None):
    from demo_models.qwen_tokenizer import qwen_tokenizer

    tokenizer = qwen_tokenizer()
    if chat_template:
        tokenizer.chat_template = chat_template
    config = transformers.LlamaConfig(vocab_size=len(tokenizer), hidden_size=16,
                                      intermediate_size=32, num_hidden_layers=1,
                                      num_attention_heads=2, num_key_value_heads=1)
    torch.manual_seed(0)
    transformers.LlamaForCausalLM(config).save_pretrained(tmp_path)
    tokenizer.save_pretrained(tmp_path)
    return tmp_path


def test_unknown_causal_lm_is_refused_with_the_supported_families(tmp_path):
    path = _llama(tmp_path, chat_template="{% for m in messages %}{{ m.content }}{% endfor %}")
    with pytest.raises(ModelLoadError) as info:
        _load(path)
    message = str(info.value)
    assert "LlamaForCausalLM" in message
    for name in profiles.PROFILES:
        assert name in message


def test_a_named_profile_applies_to_any_causal_lm(tmp_path):
    path = _llama(tmp_path)
    engine = _load(path, profile="qwen3-reranker")
    try:
        assert engine.describe()["profile"] == "qwen3-reranker"
        assert len(engine.score("q", ["a", "b"])) == 2
    finally:
        engine.close()
    with pytest.raises(ModelLoadError, match="unknown"):
        _load(path, profile="no-such-family")


def test_reranker_json_overrides_the_profile(llm_dirs, qwen3_engine, tmp_path):
    target = tmp_path / "overridden-reranker"
    shutil.copytree(llm_dirs("qwen3"), target)
    base = qwen3_engine  # the same weights, without the override
    (target / "reranker.json").write_text(json.dumps({
        "model_id": "Qwen/Qwen3-Reranker-0.6B",
        "profile": {"name": "qwen3-reranker", "default_instruction": "Find capitals"}}))
    overridden = _load(target)
    try:
        assert overridden.name == "Qwen/Qwen3-Reranker-0.6B"
        explicit = base.rerank(RerankRequest("python", [("q", "d")], ["d"],
                                             instruction="Find capitals")).raw
        assert overridden.score("q", ["d"], raw=True) == pytest.approx(explicit.tolist(),
                                                                         abs=1e-6)
        assert overridden.score("q", ["d"], raw=True) != base.score("q", ["d"], raw=True)
    finally:
        overridden.close()
    (target / "reranker.json").write_text(json.dumps({"profile": {"nonsense": 1}}))
    with pytest.raises(ModelLoadError, match="nonsense"):
        _load(target)
    # A profile that would fail on its first request is refused when it loads.
    for changes, words in (({"judged": ["yes", None]}, "needs a false token"),
                           ({"judged": ["yes", 5]}, "judged must be"),
                           ({"prefix": "one string"}, "prefix must be a list of strings"),
                           ({"max_length": "long"}, "max_length must be")):
        (target / "reranker.json").write_text(json.dumps(
            {"profile": {"name": "qwen3-reranker", **changes}}))
        with pytest.raises(ModelLoadError, match=words):
            _load(target)


def test_instruction_setting_and_its_refusal(llm_dirs, qwen3_engine, bert_dir):
    engine = Reranker.from_dir(str(llm_dirs("qwen3")), Settings.from_env(
        {"RERANK_INSTRUCTION": "Find capitals", "RERANK_WARMUP": "false"}))
    plain = qwen3_engine
    try:
        explicit = plain.rerank(RerankRequest("python", [("q", "d")], ["d"],
                                              instruction="Find capitals")).raw
        assert engine.score("q", ["d"], raw=True) == pytest.approx(explicit.tolist(), abs=1e-6)
    finally:
        engine.close()
    with pytest.raises(ModelLoadError, match="RERANK_INSTRUCTION"):
        _load(bert_dir, instruction="Find capitals")


def test_instruction_to_a_cross_encoder_is_a_422(bert_engine):
    with pytest.raises(InvalidRequest) as info:
        bert_engine.rerank(RerankRequest("cohere", [("q", "d")], ["d"], instruction="x"))
    assert info.value.status == 422 and info.value.field == "instruction"


def test_llm_max_length_setting_is_checked():
    with pytest.raises(SettingsError, match="RERANK_LLM_MAX_LENGTH"):
        Settings.from_env({"RERANK_LLM_MAX_LENGTH": "4"})


def test_llm_rerankers_run_on_torch_only(llm_dirs):
    with pytest.raises(ModelLoadError, match="torch"):
        _load(llm_dirs("qwen3"), backend="onnx")


def test_demo_model_builder_saves_its_head(tmp_path):
    """build/demo-minilm's head is random on purpose, but it is in the files: it serves."""
    path = tiny_models.minilm_cross_encoder(tmp_path / "demo")
    assert "classifier.weight" in load_file(path / "model.safetensors")
    engine = _load(path)
    try:
        assert len(engine.score("q", ["d"])) == 1
    finally:
        engine.close()


def test_unknown_decoder_classifier_is_refused(tmp_path):
    """A seq-cls conversion of a decoder needs its family's prompt: without a profile the
    pair template would be a guess."""
    from demo_models.qwen_tokenizer import qwen_tokenizer

    tokenizer = qwen_tokenizer()
    config = transformers.Qwen2Config(vocab_size=len(tokenizer), hidden_size=16,
                                      intermediate_size=32, num_hidden_layers=1,
                                      num_attention_heads=2, num_key_value_heads=1,
                                      num_labels=1, pad_token_id=151643)
    transformers.Qwen2ForSequenceClassification(config).save_pretrained(tmp_path)
    tokenizer.save_pretrained(tmp_path)
    with pytest.raises(ModelLoadError, match="Qwen2ForSequenceClassification") as info:
        _load(tmp_path)
    assert "qwen3-reranker-seq-cls" in str(info.value)


@pytest.mark.parametrize("body", [
    {"query": "q", "documents": ["d"]},
    {"query": "q", "texts": ["d"]},
    {"query": "q", "documents": ["d"], "topk": 1},
    {"text_pairs": [["q", "d"]]},
])
def test_every_query_format_carries_an_instruction(body):
    from reranker import dialects

    assert dialects.parse(json.dumps({**body, "instruction": "Find capitals"}),
                          "application/json").instruction == "Find capitals"
    assert dialects.parse(json.dumps(body), "application/json").instruction is None
    for bad in (5, "", ["x"]):
        with pytest.raises(InvalidRequest) as info:
            dialects.parse(json.dumps({**body, "instruction": bad}), "application/json")
        assert info.value.field == "instruction" and info.value.status == 422
