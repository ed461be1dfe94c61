"""The score cache (RERANK_CACHE_ROWS): a repeated row is answered without the model, with
the score it was given, and anything that changes a row's ids misses.  Checked on a
cross-encoder and an LLM reranker built here, by counting the rows each forward pass sees."""

from __future__ import annotations

import numpy as np
import pytest

from reranker import score_cache
from reranker.engine import Reranker
from reranker.errors import TooLargeForDevice
from reranker.request import RerankRequest
from reranker.settings import Settings, SettingsError

QUERY = "what is the capital of the united states?"
DOCS = ["Carson City is the capital city of Nevada.",
        "Washington, D.C. is the capital of the United States.",
        "a much longer passage about something else entirely " * 8]


class Rows:
    """An engine observer (of two of its calls) that counts the rows the model computed and
    the cache's answers."""

    def __init__(self):
        self.forwarded_rows = self.hits = self.misses = 0

    def forwarded(self, seconds, rows, tokens, padded_tokens):
        self.forwarded_rows += rows

    def cached(self, hits, misses):
        self.hits += hits
        self.misses += misses


def request(docs, query=QUERY, **fields) -> RerankRequest:
    return RerankRequest("python", [(query, d) for d in docs], list(docs), **fields)


@pytest.fixture(scope="module")
def cached_bert(bert_dir):
    engine = Reranker.from_dir(str(bert_dir), Settings(warmup=False, cache_rows=100))
    yield engine
    engine.close()


@pytest.fixture(scope="module")
def cached_qwen3(llm_dirs):
    engine = Reranker.from_dir(str(llm_dirs("qwen3")), Settings(warmup=False, cache_rows=100))
    yield engine
    engine.close()


def watched(engine) -> Rows:
    rows = Rows()
    engine.observe(rows)
    return rows


def test_keys_follow_the_ids_exactly():
    assert score_cache.key([1, 2], [0, 0]) == score_cache.key([1, 2], [0, 0])
    assert score_cache.key([1, 2], [0, 0]) != score_cache.key([1, 2], [0, 1])
    assert score_cache.key([1, 2], [3]) != score_cache.key([1], [2, 3])
    assert score_cache.key([1, 2], None) == score_cache.key([1, 2])


def test_least_recently_used_rows_go_first_and_failures_are_never_kept():
    cache = score_cache.ScoreCache(2)
    a, b, c, bad = (score_cache.key([i]) for i in range(4))
    cache.store([a, b], np.array([[1.0], [2.0]], dtype=np.float32))
    assert cache.lookup([a])[0][0] == 1.0  # a is now the most recently used
    cache.store([c, bad], np.array([[3.0], [np.nan]], dtype=np.float32))
    assert [row is None for row in cache.lookup([a, b, c, bad])] == [False, True, False, True]
    assert len(cache) == 2
    with pytest.raises(ValueError):
        score_cache.ScoreCache(0)


def test_a_repeated_request_is_answered_without_the_model(cached_bert, bert_engine):
    rows = watched(cached_bert)
    first = cached_bert.rerank(request(DOCS))
    assert rows.forwarded_rows == 3 and (rows.hits, rows.misses) == (0, 3)
    again = cached_bert.rerank(request(DOCS))
    assert rows.forwarded_rows == 3 and rows.hits == 3
    assert np.array_equal(first.raw, again.raw) and again.tokens == first.tokens
    # The cached scores are the model's: equal to an engine without a cache.
    assert np.abs(again.raw - bert_engine.rerank(request(DOCS)).raw).max() < 1e-5
    # One new document among known ones: only it reaches the model, in input order.
    mixed = cached_bert.rerank(request(["a brand new passage", *DOCS]))
    assert rows.forwarded_rows == 4
    assert np.array_equal(mixed.raw[1:], first.raw)


def test_what_changes_the_rows_misses(cached_bert):
    docs = [d * 3 for d in DOCS]  # each longer than the caps below
    cached_bert.rerank(request(docs))
    rows = watched(cached_bert)
    cached_bert.rerank(request(docs, max_tokens=24))              # vLLM's token cap
    cached_bert.rerank(request(docs, max_document_tokens=3))      # Cohere's document cap
    cached_bert.rerank(request(docs, max_tokens=24, truncation_direction="left"))
    cached_bert.rerank(request(docs, query="another query"))
    assert rows.hits == 0
    assert rows.forwarded_rows == rows.misses == 12


def test_chunk_windows_are_rows_of_their_own(cached_bert):
    long = " ".join(f"word{i}" for i in range(600))
    first = cached_bert.rerank(request([long], long_documents="chunk"))
    rows = watched(cached_bert)
    again = cached_bert.rerank(request([long], long_documents="chunk"))
    assert rows.forwarded_rows == 0 and rows.hits > 1
    assert np.array_equal(first.raw, again.raw)


def test_a_row_too_large_for_the_device_is_named_by_its_document(cached_bert, monkeypatch):
    cached_bert.rerank(request(DOCS[:1]))  # the first document is cached

    def out_of_memory(ids, type_ids, cancel=None):
        raise TooLargeForDevice("out of memory", row=len(ids) - 1)

    monkeypatch.setattr(cached_bert.batcher, "run", out_of_memory)
    with pytest.raises(TooLargeForDevice) as exc:
        cached_bert.rerank(request([DOCS[0], "new one", "another new one"]))
    # The model saw two rows; the failing one is the request's third document.
    assert exc.value.field == "documents[2]"


def test_llm_continuations_are_cached_with_their_prefix(cached_qwen3, qwen3_engine):
    rows = watched(cached_qwen3)
    first = cached_qwen3.rerank(request(DOCS))
    forwarded = rows.forwarded_rows
    assert forwarded > 0 and (rows.hits, rows.misses) == (0, 3)
    again = cached_qwen3.rerank(request(DOCS))
    assert rows.forwarded_rows == forwarded and rows.hits == 3
    assert np.array_equal(first.raw, again.raw)
    # Another instruction is another prefix: nothing is reused.
    cached_qwen3.rerank(request(DOCS, instruction="Find the capital"))
    assert rows.hits == 3 and rows.misses == 6
    # One document more: only it is computed, and the scores agree with no cache.
    docs = [*DOCS, "a fourth passage"]
    mixed = cached_qwen3.rerank(request(docs))
    assert rows.hits == 6 and rows.misses == 7
    assert np.abs(mixed.raw - qwen3_engine.rerank(request(docs)).raw).max() < 1e-5


def test_the_setting_is_checked_and_described(cached_bert):
    with pytest.raises(SettingsError, match="RERANK_CACHE_ROWS"):
        Settings.from_env({"RERANK_CACHE_ROWS": "-1"})
    assert Settings.from_env({"RERANK_CACHE_ROWS": "5000"}).cache_rows == 5000
    assert cached_bert.describe()["cache_rows"] == 100


def test_the_server_counts_hits_and_misses():
    from serving.metrics import Metrics

    metrics = Metrics()
    metrics.cached(hits=2, misses=3)
    value = metrics.registry.get_sample_value
    assert value("reranker_score_cache_rows_total", {"result": "hit"}) == 2
    assert value("reranker_score_cache_rows_total", {"result": "miss"}) == 3
