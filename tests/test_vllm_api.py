"""vLLM's score API and the Cohere shape Infinity and vLLM send to /rerank: through the hooks
(every form of the two sides, the token cap, raw logits, the refusals) and over HTTP on
/score, /v1/score and /rerank."""

from __future__ import annotations

import httpx
import numpy as np
import pytest

from example_texts import CAPITAL_DOCS, CAPITAL_QUERY, PANDA_DOCS, PANDA_QUERY
from test_dialects import call, direct


@pytest.mark.parametrize("left,right", [("text_1", "text_2"), ("queries", "documents"),
                                        ("queries", "items"), ("data_1", "data_2")])
@pytest.mark.parametrize("query", [CAPITAL_QUERY, [CAPITAL_QUERY]])
def test_one_query_scores_every_text_in_input_order(bert_engine, left, right, query):
    out, result = call(bert_engine, {"model": "m", left: query, right: CAPITAL_DOCS})
    assert result.request.dialect == "score"
    assert set(out) == {"id", "object", "created", "model", "data", "usage"}
    assert out["object"] == "list" and out["id"].startswith("score-")
    assert [d["index"] for d in out["data"]] == [0, 1, 2, 3]
    assert {d["object"] for d in out["data"]} == {"score"}
    expected = direct(bert_engine, CAPITAL_QUERY, CAPITAL_DOCS)
    assert [d["score"] for d in out["data"]] == pytest.approx(list(expected), abs=1e-6)
    assert out["usage"]["prompt_tokens"] == out["usage"]["total_tokens"] > 0
    assert out["usage"]["completion_tokens"] == 0


def test_lists_of_equal_length_pair_up_and_one_string_each_is_one_pair(bert_engine):
    queries = [CAPITAL_QUERY, PANDA_QUERY, CAPITAL_QUERY]
    texts = [CAPITAL_DOCS[0], PANDA_DOCS[1], CAPITAL_DOCS[3]]
    out, result = call(bert_engine, {"text_1": queries, "text_2": texts})
    assert result.request.pairs == list(zip(queries, texts))
    expected = [direct(bert_engine, q, [t])[0] for q, t in zip(queries, texts)]
    assert [d["score"] for d in out["data"]] == pytest.approx(expected, abs=1e-6)
    single, _ = call(bert_engine, {"text_1": PANDA_QUERY, "text_2": PANDA_DOCS[0]})
    assert len(single["data"]) == 1


def test_use_activation_false_answers_raw_logits(bert_engine):
    raw = direct(bert_engine, CAPITAL_QUERY, CAPITAL_DOCS, raw=True)
    for flag in ("use_activation", "activation", "softmax"):
        out, _ = call(bert_engine, {"text_1": CAPITAL_QUERY, "text_2": CAPITAL_DOCS,
                                    flag: False})
        assert [d["score"] for d in out["data"]] == pytest.approx(list(raw), abs=1e-6)


def test_truncate_prompt_tokens_caps_each_pair(bert_engine, bert_dir):
    from transformers import AutoTokenizer

    long_doc = "the capital of the united states is washington " * 20
    body = {"text_1": CAPITAL_QUERY, "text_2": [long_doc, "x"]}
    capped, result = call(bert_engine, {**body, "truncate_prompt_tokens": 24})
    assert result.request.max_tokens == 24 and result.tokens <= 24 * 2
    tokenizer = AutoTokenizer.from_pretrained(bert_dir)
    cut = tokenizer([CAPITAL_QUERY], [long_doc], truncation="only_second", max_length=24)
    short = tokenizer.decode(cut["input_ids"][0][len(tokenizer(CAPITAL_QUERY)["input_ids"]):],
                             skip_special_tokens=True)
    assert capped["data"][0]["score"] == pytest.approx(
        direct(bert_engine, CAPITAL_QUERY, [short])[0], abs=1e-5)
    for uncapped in (-1, None, 10_000):
        out, _ = call(bert_engine, {**body, "truncate_prompt_tokens": uncapped})
        assert out["data"][0]["score"] == pytest.approx(
            direct(bert_engine, CAPITAL_QUERY, [long_doc])[0], abs=1e-6)


def test_the_cap_applies_to_an_llm_reranker(llm_dirs):
    from reranker.engine import Reranker

    engine = Reranker.from_dir(str(llm_dirs("qwen3")))
    try:
        doc = "pandas eat bamboo in the mountains of china " * 30
        full, whole = call(engine, {"text_1": PANDA_QUERY, "text_2": [doc]})
        capped, cut = call(engine, {"text_1": PANDA_QUERY, "text_2": [doc],
                                    "truncate_prompt_tokens": 120})
        assert cut.tokens <= 120 < whole.tokens
        assert capped["data"][0]["score"] != pytest.approx(full["data"][0]["score"], abs=1e-9)
        with pytest.raises(Exception) as refused:
            call(engine, {"text_1": PANDA_QUERY, "text_2": [doc], "truncate_prompt_tokens": 4})
        assert refused.value.status == 422 and refused.value.field == "truncate_prompt_tokens"
    finally:
        engine.close()


@pytest.mark.parametrize("body,field", [
    ({"text_1": ["a", "b"], "text_2": ["x", "y", "z"]}, "text_1"),
    ({"text_1": "q"}, "text_2"),
    ({"queries": "q", "items": []}, "items"),
    ({"text_1": [], "text_2": ["x"]}, "text_1"),
    ({"text_1": " ", "text_2": ["x"]}, "text_1[0]"),
    ({"text_1": 3, "text_2": ["x"]}, "text_1"),
    ({"text_1": "q", "text_2": ["x", 4]}, "text_2[1]"),
    ({"text_1": {"content": [{"type": "image_url"}]}, "text_2": ["x"]}, "text_1"),
    ({"text_1": "q", "text_2": ["x"], "truncate_prompt_tokens": 0}, "truncate_prompt_tokens"),
    ({"text_1": "q", "text_2": ["x"], "truncate_prompt_tokens": 2}, "truncate_prompt_tokens"),
    ({"text_1": "q", "text_2": ["x"], "truncate_prompt_tokens": "8"}, "truncate_prompt_tokens"),
    ({"text_1": "q", "text_2": ["x"], "use_activation": "no"}, "use_activation"),
    ({"text_1": "q", "text_2": ["x"], "priority": 1}, "priority"),
])
def test_bad_score_requests_name_the_field(bert_engine, body, field):
    with pytest.raises(Exception) as refused:
        call(bert_engine, body)
    assert refused.value.status == 422 and refused.value.field == field


def test_cohere_shape_takes_the_raw_score_switches_and_the_cap(bert_engine):
    body = {"query": CAPITAL_QUERY, "documents": CAPITAL_DOCS}
    raw = direct(bert_engine, CAPITAL_QUERY, CAPITAL_DOCS, raw=True)
    for switch in ({"raw_scores": True}, {"use_activation": False}):
        out, _ = call(bert_engine, {**body, **switch})
        assert [r["index"] for r in out["results"]] == list(np.argsort(-raw))
        assert {r["index"]: r["relevance_score"] for r in out["results"]} == pytest.approx(
            dict(enumerate(raw)), abs=1e-6)
    _, result = call(bert_engine, {**body, "truncate_prompt_tokens": 16})
    assert result.request.max_tokens == 16


@pytest.mark.slow  # starts a server
@pytest.mark.parametrize("path", ["/score", "/v1/score"])
def test_score_routes(client_url, client_engine, path):
    body = {"model": "BAAI/bge-reranker-v2-m3", "text_1": CAPITAL_QUERY, "text_2": CAPITAL_DOCS}
    response = httpx.post(client_url + path, json=body, timeout=60)
    assert response.status_code == 200, response.text
    expected = client_engine.score(CAPITAL_QUERY, CAPITAL_DOCS)
    assert [d["score"] for d in response.json()["data"]] == pytest.approx(expected, abs=1e-5)
    # The route fixes the format: a Cohere body there names what is missing.
    refused = httpx.post(client_url + path, json={"query": "q", "documents": ["d"]}, timeout=60)
    assert refused.status_code == 422 and refused.json()["error"]["field"] == "text_1"


@pytest.mark.slow  # starts a server
def test_rerank_route_answers_infinity_and_vllm_in_their_cohere_shape(client_url, client_engine):
    # What infinity_emb's and vLLM's clients post to /rerank.
    body = {"model": "m", "query": CAPITAL_QUERY, "documents": CAPITAL_DOCS, "top_n": 2,
            "return_documents": True}
    response = httpx.post(client_url + "/rerank", json=body, timeout=60)
    assert response.status_code == 200, response.text
    results = response.json()["results"]
    expected = client_engine.score(CAPITAL_QUERY, CAPITAL_DOCS)
    assert [r["index"] for r in results] == list(np.argsort(expected)[::-1][:2])
    for r in results:
        assert r["relevance_score"] == pytest.approx(expected[r["index"]], abs=1e-5)
        assert r["document"] == {"text": CAPITAL_DOCS[r["index"]]}
    tei = httpx.post(client_url + "/rerank", json={"query": "q", "texts": ["d"]}, timeout=60)
    assert tei.status_code == 200 and set(tei.json()[0]) == {"index", "score"}
    neither = httpx.post(client_url + "/rerank", json={"query": "q"}, timeout=60)
    assert neither.status_code == 422 and neither.json()["error"]["field"] == "texts"
