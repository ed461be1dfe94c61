"""Each wire dialect, driven through the four SageMaker hooks with the tutorials' own examples."""

import json

import numpy as np
import pytest

import inference
from example_texts import (
    CAPITAL_DOCS,
    CAPITAL_QUERY,
    MOVIES,
    MOVIES_QUERY,
    NYC_AREAS,
    NYC_QUERY,
    PANDA_DOCS,
    PANDA_QUERY,
)

PANDA = {"query": PANDA_QUERY, "documents": PANDA_DOCS, "topk": 2}
NYC_FACTS = [NYC_AREAS[0]["facts"], NYC_AREAS[2]["facts"]]


def call(engine, body, content_type="application/json", accept="application/json"):
    data = json.dumps(body).encode() if not isinstance(body, (bytes, str)) else body
    request = inference.input_fn(data, content_type)
    result = inference.predict_fn(request, engine)
    return json.loads(inference.output_fn(result, accept)), result


def direct(engine, query, docs, raw=False):
    return np.asarray(engine.score(query, docs, raw=raw))


def assert_sorted(items, key):
    scores = [item[key] for item in items]
    assert scores == sorted(scores, reverse=True)


def test_cohere_with_the_guide_movies(bert_engine):
    body = {"model": "rerank", "query": MOVIES_QUERY,
            "documents": MOVIES, "top_n": 5, "return_documents": True}
    out, _ = call(bert_engine, body)
    assert set(out) >= {"id", "model", "results", "meta", "usage"}
    assert len(out["results"]) == 5
    assert_sorted(out["results"], "relevance_score")
    expected = direct(bert_engine, body["query"], MOVIES)
    for item in out["results"]:
        assert isinstance(item["relevance_score"], float) and 0 <= item["relevance_score"] <= 1
        assert item["relevance_score"] == pytest.approx(expected[item["index"]], abs=1e-6)
        assert item["document"] == {"text": MOVIES[item["index"]]}
    assert out["results"][0]["index"] == int(np.argmax(expected))


def test_cohere_returns_every_document_without_top_n(bert_engine):
    out, _ = call(bert_engine, {"query": CAPITAL_QUERY, "documents": CAPITAL_DOCS})
    assert sorted(r["index"] for r in out["results"]) == [0, 1, 2, 3]
    assert all("document" not in r for r in out["results"])
    assert out["usage"]["total_tokens"] > 0


def test_cohere_object_documents_and_rank_fields(bert_engine):
    docs = [{"title": "Harlem", "text": NYC_FACTS[1], "id": 4},
            {"title": "Astoria", "text": NYC_FACTS[0], "id": 1}]
    out, result = call(bert_engine, {"query": "artists", "documents": docs,
                                     "return_documents": True})
    assert [p[1] for p in result.request.pairs] == [NYC_FACTS[1], NYC_FACTS[0]]
    assert {r["document"]["id"] for r in out["results"]} == {1, 4}  # objects echoed whole
    _, result = call(bert_engine, {"query": "artists", "documents": docs,
                                   "rank_fields": ["title", "text"]})
    assert result.request.pairs[0][1] == f"title: Harlem\ntext: {NYC_FACTS[1]}"
    _, result = call(bert_engine, {"query": "artists", "documents": docs, "rank_fields": ["title"]})
    assert result.request.pairs[1][1] == "Astoria"


def test_tei_with_the_tutorial_capitals(bert_engine):
    body = {"query": CAPITAL_QUERY, "texts": CAPITAL_DOCS}
    out, _ = call(bert_engine, body)
    assert isinstance(out, list) and len(out) == 4
    assert set(out[0]) == {"index", "score"}
    assert_sorted(out, "score")
    relevance = direct(bert_engine, CAPITAL_QUERY, CAPITAL_DOCS)
    for item in out:
        assert item["score"] == pytest.approx(relevance[item["index"]], abs=1e-6)
    raw_out, _ = call(bert_engine, {**body, "raw_scores": True, "return_text": True})
    raw = direct(bert_engine, CAPITAL_QUERY, CAPITAL_DOCS, raw=True)
    for item in raw_out:
        assert item["score"] == pytest.approx(raw[item["index"]], abs=1e-6)
        assert item["text"] == CAPITAL_DOCS[item["index"]]


def test_topk_answers_raw_logits_cut_to_topk(bert_engine):
    out, _ = call(bert_engine, PANDA)
    assert len(out) == 2 and set(out[0]) == {"index", "score"}
    assert_sorted(out, "score")
    raw = direct(bert_engine, PANDA["query"], PANDA["documents"], raw=True)
    assert [o["index"] for o in out] == list(np.argsort(-raw)[:2])
    for item in out:
        assert item["score"] == pytest.approx(raw[item["index"]], abs=1e-6)


def test_pipeline_single_and_list_with_the_rerank_by_field_mapping(bert_engine):
    # OpenSearch's rerank-by-field tutorial maps text = the document, text_pair = the query:
    # scored in the order given.
    query = NYC_QUERY
    single, result = call(bert_engine, {"inputs": {"text": NYC_FACTS[0], "text_pair": query}})
    assert set(single) == {"label", "score"} and single["label"] == "LABEL_0"
    assert result.request.pairs == [(NYC_FACTS[0], query)]
    expected = direct(bert_engine, NYC_FACTS[0], [query])[0]
    assert single["score"] == pytest.approx(expected, abs=1e-6)
    many, _ = call(bert_engine, {"inputs": [{"text": t, "text_pair": query} for t in NYC_FACTS]})
    assert isinstance(many, list) and len(many) == 2 and set(many[1]) == {"label", "score"}


def test_pipeline_function_to_apply_and_top_k(bert_engine):
    inputs = {"text": "a", "text_pair": "b"}
    raw, _ = call(bert_engine, {"inputs": inputs, "parameters": {"function_to_apply": "none"}})
    assert raw["score"] == pytest.approx(direct(bert_engine, "a", ["b"], raw=True)[0], abs=1e-6)
    listed, _ = call(bert_engine, {"inputs": inputs, "parameters": {"top_k": None}})
    assert isinstance(listed, list) and listed[0]["label"] == "LABEL_0"


def test_two_label_model_uses_softmax_in_the_pipeline(model_dirs):
    from reranker.engine import Reranker

    engine = Reranker.from_dir(str(model_dirs("bert2")))
    try:
        out, result = call(engine, {"inputs": {"text": "q", "text_pair": "d"},
                                    "parameters": {"top_k": None}})
        assert sum(o["score"] for o in out) == pytest.approx(1.0)
        cohere, _ = call(engine, {"query": "q", "documents": ["d"]})
        positive = next(o["score"] for o in out if o["label"] == "LABEL_1")
        assert cohere["results"][0]["relevance_score"] == pytest.approx(positive, abs=1e-9)
    finally:
        engine.close()


def test_input_fn_accepts_str_as_the_dlc_passes_it(bert_engine):
    out, _ = call(bert_engine, json.dumps(PANDA), content_type="application/json; charset=utf-8")
    assert len(out) == 2


def test_chunk_mode_on_request(bert_engine):
    long_doc = "filler words " * 400 + " the capital of the united states is washington"
    out, result = call(bert_engine, {"query": CAPITAL_QUERY, "documents": [long_doc, "x"],
                                     "long_documents": "chunk"})
    assert result.request.long_documents == "chunk" and len(out["results"]) == 2
    _, result = call(bert_engine, {"query": "q", "documents": ["x"], "max_chunks_per_doc": 3})
    assert result.request.long_documents == "chunk" and result.request.max_chunks == 3


def test_langchain_text_pairs_score_in_input_order(bert_engine):
    pairs = [[CAPITAL_QUERY, d] for d in CAPITAL_DOCS] + [[PANDA_QUERY, PANDA_DOCS[2]]]
    out, result = call(bert_engine, {"text_pairs": pairs})
    assert result.request.dialect == "langchain" and set(out) == {"scores"}
    expected = list(direct(bert_engine, CAPITAL_QUERY, CAPITAL_DOCS)) + list(
        direct(bert_engine, PANDA_QUERY, PANDA_DOCS[2:]))
    assert out["scores"] == pytest.approx(expected, abs=1e-6)
    assert all(isinstance(s, float) and 0 < s < 1 for s in out["scores"])
    raw, _ = call(bert_engine, {"text_pairs": pairs[:4], "raw_scores": True})
    assert raw["scores"] == pytest.approx(
        list(direct(bert_engine, CAPITAL_QUERY, CAPITAL_DOCS, raw=True)), abs=1e-6)


def test_form_typed_json_object_reads_as_json(bert_engine):
    # curl -d '{...}' without -H 'Content-Type: application/json'
    out, result = call(bert_engine, PANDA, content_type="application/x-www-form-urlencoded")
    assert result.request.dialect == "topk" and len(out) == 2


@pytest.mark.parametrize("dialect,key", [("cohere", "results"), ("tei", None),
                                         ("elastic", "rerank")])
def test_documents_past_the_sigmoid_s_ceiling_keep_the_model_s_order(dialect, key):
    """Relevance (a sigmoid) is exactly 1.0 for these log-odds, as an LLM reranker gives
    them: the ranking still follows the model, not the input order."""
    from reranker.dialects import render
    from reranker.request import RerankRequest, RerankResult

    raw = np.array([38.0, 45.0, 41.0])
    docs = ["a", "b", "c"]
    request = RerankRequest(dialect, [("q", d) for d in docs], docs, top_n=2)
    result = RerankResult(request, raw[:, None], raw, 1 / (1 + np.exp(-raw)), 3, "m")
    assert set(result.relevance) == {1.0}
    body = json.loads(render(result))
    items = body[key] if key else body
    assert [item["index"] for item in items][:2] == [1, 2]


def test_python_callers_get_no_scores_for_no_documents(bert_engine):
    assert bert_engine.score("q", []) == []
