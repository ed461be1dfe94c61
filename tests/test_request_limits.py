"""Limits a request cannot lift, in-process: the engine's chunk cap, the documents of a
jsonlines body counted together, media types that name nothing, error messages that
quote input, and where a route's fixed dialect comes from."""

from __future__ import annotations

import json

import pytest

from inference import input_fn, output_fn, predict_fn
from reranker import wire
from reranker.context import requested_dialect
from reranker.engine import Reranker
from reranker.errors import InvalidJSON, PayloadTooLarge, UnsupportedMediaType
from reranker.request import RerankRequest
from reranker.settings import Settings
from serving.hooks import RequestContext

LONG = "word " * 3000


@pytest.fixture(scope="module")
def capped(bert_dir):
    engine = Reranker.from_dir(str(bert_dir), Settings(max_chunks=2, max_documents=4,
                                                       warmup=False))
    yield engine
    engine.close()


def test_a_request_cannot_ask_for_more_chunks_than_the_setting(capped):
    asked = RerankRequest("cohere", [("q", LONG)], [LONG], long_documents="chunk",
                          max_chunks=1000)
    within = RerankRequest("cohere", [("q", LONG)], [LONG], long_documents="chunk")
    assert capped.rerank(asked).tokens == capped.rerank(within).tokens
    fewer = RerankRequest("cohere", [("q", LONG)], [LONG], long_documents="chunk", max_chunks=1)
    assert capped.rerank(fewer).tokens < capped.rerank(within).tokens


def lines(*counts: int) -> bytes:
    return b"\n".join(json.dumps({"query": "q", "texts": ["d"] * n}).encode() for n in counts)


@pytest.mark.parametrize("counts", [(3, 2), (1, 1, 1, 1, 1), (4, 4, 4)])
def test_a_jsonlines_body_counts_its_documents_together(capped, counts):
    request = input_fn(lines(*counts), "application/jsonlines")
    with pytest.raises(PayloadTooLarge) as caught:
        predict_fn(request, capped)
    assert caught.value.field == "body" and "RERANK_MAX_DOCUMENTS" in caught.value.message


def test_a_jsonlines_body_within_the_limit_is_scored(capped):
    result = predict_fn(input_fn(lines(2, 2), "application/jsonlines"), capped)
    assert output_fn(result, None).count(b"\n") == 1


def test_the_body_limit_has_a_setting_of_its_own(bert_dir):
    engine = Reranker.from_dir(str(bert_dir), Settings(max_documents=4, max_body_documents=9,
                                                       warmup=False))
    try:
        predict_fn(input_fn(lines(4, 4), "application/jsonlines"), engine)
        with pytest.raises(PayloadTooLarge, match="RERANK_MAX_BODY_DOCUMENTS"):
            predict_fn(input_fn(lines(4, 4, 2), "application/jsonlines"), engine)
    finally:
        engine.close()


@pytest.mark.parametrize("header", [";;;", ";", "; charset=utf-8", ";;charset=utf-8"])
def test_a_content_type_without_a_media_type_is_415(header):
    with pytest.raises(UnsupportedMediaType):
        wire.decode_json(b'{"query": "q", "documents": ["d"]}', header)


@pytest.mark.parametrize("header", [None, "", "  "])
def test_no_content_type_still_reads_json(header):
    assert wire.decode_json(b'{"a": 1}', header) == {"a": 1}


def test_error_messages_and_fields_quote_input_only_so_far():
    key = "k" * 1_000_000
    with pytest.raises(InvalidJSON) as caught:
        input_fn(f'{{"{key}": 1, "{key}": 2}}', "application/json")
    body = caught.value.to_json()
    assert len(body) < 2000 and "(truncated)" in body


def test_a_routes_dialect_is_a_value_that_wins_over_the_header():
    header = {"X-Amzn-SageMaker-Custom-Attributes": "trace=1,dialect=tei"}
    assert requested_dialect(RequestContext(header)) == "tei"
    assert requested_dialect(RequestContext(header, dialect="cohere")) == "cohere"
    assert requested_dialect(RequestContext({}, dialect="cohere")) == "cohere"
    assert requested_dialect(RequestContext({})) is None
    assert requested_dialect(None) is None
