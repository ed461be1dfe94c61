"""Every supported family through both doors: the SageMaker hooks and our HTTP server.

Cross-encoders (BERT, ELECTRA, XLM-R, DeBERTa-v2, ModernBERT) and LLM rerankers (Qwen3
seq-cls, Qwen3 yes/no, bge-reranker-v2-gemma, mxbai-rerank-v2) load through model_fn,
answer a Cohere request through input_fn/predict_fn/output_fn, and give the same scores
over HTTP.  An ``instruction`` reaches the LLMs and is a 422 naming the field elsewhere.
"""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
import torch
import transformers

import inference
from bench.local_server import Server
from demo_models import encoders as tiny_models
from example_texts import CAPITAL_DOCS, CAPITAL_QUERY
from reranker.errors import InvalidRequest

ENCODERS = ("bert", "electra", "xlmr", "deberta", "modernbert")
LLMS = ("qwen3-seq-cls", "qwen3", "gemma", "mxbai-v2")
BODY = {"query": CAPITAL_QUERY, "documents": CAPITAL_DOCS}


def _bert_tokenizer():
    return transformers.AutoTokenizer.from_pretrained(tiny_models._minilm_path())


def electra(out: Path) -> Path:
    tokenizer = _bert_tokenizer()
    config = transformers.ElectraConfig(vocab_size=tokenizer.vocab_size, num_labels=1,
                                        embedding_size=16, **tiny_models.TINY)
    torch.manual_seed(0)
    return tiny_models._save(transformers.ElectraForSequenceClassification(config), tokenizer,
                             out)


def modernbert(out: Path) -> Path:
    tokenizer = _bert_tokenizer()
    config = transformers.ModernBertConfig(
        vocab_size=tokenizer.vocab_size, num_labels=1, hidden_size=32, num_hidden_layers=2,
        num_attention_heads=2, intermediate_size=64, pad_token_id=tokenizer.pad_token_id,
        cls_token_id=tokenizer.cls_token_id, sep_token_id=tokenizer.sep_token_id,
        bos_token_id=tokenizer.cls_token_id, eos_token_id=tokenizer.sep_token_id)
    torch.manual_seed(0)
    return tiny_models._save(transformers.ModernBertForSequenceClassification(config),
                             tokenizer, out)


@pytest.fixture(scope="module")
def family_dirs(model_dirs, llm_dirs, tmp_path_factory):
    built = {"electra": electra, "modernbert": modernbert}
    dirs = {}
    for family in ENCODERS + LLMS:
        if family in built:
            dirs[family] = built[family](tmp_path_factory.mktemp(family))
        elif family in LLMS:
            dirs[family] = llm_dirs(family)
        else:
            dirs[family] = model_dirs(family)
    return dirs


def _hooks(model, body: dict):
    request = inference.input_fn(json.dumps(body), "application/json")
    return json.loads(inference.output_fn(inference.predict_fn(request, model),
                                          "application/json"))


def _scores(answer: dict) -> dict[int, float]:
    return {r["index"]: r["relevance_score"] for r in answer["results"]}


@pytest.fixture(scope="module")
def hook_answers(family_dirs):
    """Per family: the Cohere answer through the hooks, with and without an instruction."""
    answers = {}
    for family, path in family_dirs.items():
        model = inference.model_fn(str(path))
        try:
            plain = _hooks(model, BODY)
            try:
                instructed = _hooks(model, {**BODY, "instruction": "Find capital cities"})
            except InvalidRequest as exc:
                instructed = exc
            answers[family] = (plain, instructed)
        finally:
            model.close()
    return answers


@pytest.mark.parametrize("family", ENCODERS + LLMS)
def test_model_fn_predict_fn(hook_answers, family):
    plain, instructed = hook_answers[family]
    scores = _scores(plain)
    assert sorted(scores) == list(range(len(CAPITAL_DOCS)))
    assert all(0.0 <= s <= 1.0 for s in scores.values())
    if family in LLMS:
        assert _scores(instructed) != scores  # the instruction is part of the prompt
    else:
        assert isinstance(instructed, InvalidRequest)
        assert instructed.status == 422 and instructed.field == "instruction"


@pytest.mark.slow
def test_http_server_serves_every_family(family_dirs, hook_answers):
    """All servers start at once (their loads overlap), then each answers like the hooks."""
    servers = {family: Server(path) for family, path in family_dirs.items()}
    try:
        for server in servers.values():
            server.wait_ready()
        for family, server in servers.items():
            url = server.url
            plain, _ = hook_answers[family]
            response = httpx.post(url + "/invocations", json=BODY, timeout=60)
            assert response.status_code == 200, (family, response.text)
            got, expected = _scores(response.json()), _scores(plain)
            assert max(abs(got[i] - expected[i]) for i in expected) < 1e-5, family
            response = httpx.post(url + "/invocations", timeout=60,
                                  json={**BODY, "instruction": "Find capital cities"})
            if family in LLMS:
                assert response.status_code == 200, (family, response.text)
            else:
                assert response.status_code == 422, (family, response.text)
                assert response.json()["error"]["field"] == "instruction"
    finally:
        for server in servers.values():
            server.stop()
            server.log_path.unlink(missing_ok=True)
