"""The engine's observer hook (reranker/observe.py) on the real engine and a tiny model:
what it reports per request and per forward pass, and that a broken observer cannot fail
a request."""

from __future__ import annotations

import logging
import threading

import numpy as np
import pytest

from reranker import observe
from reranker.batching import Unbatched, plan_batches
from reranker.engine import Reranker
from reranker.request import RerankRequest
from reranker.settings import Settings

QUERY = "what is the capital city of america"
DOCS = ["washington dc is the capital of the united states",
        "the giant panda is a bear species endemic to china",
        "carson",
        "carson city is the capital city of the american state of nevada and more words",
        "harlem"]


class Recorder:
    """An observer that keeps every call (thread-safe: the batcher calls from its thread)."""

    def __init__(self):
        self.lock = threading.Lock()
        self.tokenized: list[tuple] = []
        self.waited: list[float] = []
        self.forwarded: list[tuple] = []

    def on_tokenized(self, seconds, rows, tokens):
        with self.lock:
            self.tokenized.append((seconds, rows, tokens))

    def on_waited(self, seconds):
        with self.lock:
            self.waited.append(seconds)

    def on_forwarded(self, seconds, rows, tokens, padded_tokens):
        with self.lock:
            self.forwarded.append((seconds, rows, tokens, padded_tokens))


class RecordingObserver:
    def __init__(self, recorder: Recorder):
        self.tokenized = recorder.on_tokenized
        self.waited = recorder.on_waited
        self.forwarded = recorder.on_forwarded


@pytest.fixture(scope="module")
def engine(bert_dir):
    # Two rows per batch, so five documents take three forward passes.
    model = Reranker.from_dir(str(bert_dir), Settings(warmup=False, max_batch_rows=2))
    yield model
    model.close()


@pytest.fixture
def recorder(engine):
    recorder = Recorder()
    engine.observe(RecordingObserver(recorder))
    yield recorder
    engine.observe(None)


def test_nobody_listens_by_default(bert_dir):
    model = Reranker.from_dir(str(bert_dir), Settings(warmup=False))
    try:
        assert model.observer is observe.NULL and model.batcher.observer is observe.NULL
        assert len(model.score(QUERY, DOCS[:2])) == 2
    finally:
        model.close()


def test_one_request_reports_its_tokenization_wait_and_every_forward_pass(engine, recorder):
    encoded = engine.encoder.encode([(QUERY, d) for d in DOCS])
    engine.score(QUERY, DOCS)

    [(seconds, rows, tokens)] = recorder.tokenized
    assert seconds >= 0 and rows == len(DOCS) and tokens == encoded.tokens
    assert len(recorder.waited) == 1 and recorder.waited[0] >= 0

    lengths = [len(row) for row in encoded.ids]
    planned = plan_batches(lengths, engine.batcher.token_budget, engine.batcher.max_rows)
    assert len(planned) == 3
    expected = sorted((len(batch), sum(lengths[i] for i in batch),
                       len(batch) * max(lengths[i] for i in batch)) for batch in planned)
    assert sorted(f[1:] for f in recorder.forwarded) == expected
    assert all(f[0] >= 0 for f in recorder.forwarded)
    # Padding is reported as computed: rows x the longest row of each batch.
    assert sum(f[2] for f in recorder.forwarded) == encoded.tokens
    assert sum(f[3] for f in recorder.forwarded) > encoded.tokens


def test_chunked_documents_report_rows_not_pairs(engine, recorder):
    long_doc = " ".join(["washington dc is the capital of the united states"] * 300)
    request = RerankRequest("python", [(QUERY, long_doc)], [long_doc],
                            long_documents="chunk", max_chunks=4)
    engine.rerank(request)
    [(_, rows, tokens)] = recorder.tokenized
    assert rows == 4
    assert sum(f[1] for f in recorder.forwarded) == 4
    assert sum(f[2] for f in recorder.forwarded) == tokens


def test_concurrent_requests_each_report_once(engine, recorder):
    threads = [threading.Thread(target=engine.score, args=(QUERY, DOCS[: 1 + i % 4]))
               for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert len(recorder.tokenized) == 8 and len(recorder.waited) == 8
    assert sum(f[1] for f in recorder.forwarded) == sum(1 + i % 4 for i in range(8))


class Broken:
    def tokenized(self, *args):
        raise RuntimeError("observer bug")

    waited = forwarded = tokenized


def test_a_failing_observer_never_fails_a_request_and_is_logged_once(engine, caplog):
    expected = engine.score(QUERY, DOCS)
    engine.observe(Broken())
    try:
        with caplog.at_level(logging.ERROR, logger="reranker.observe"):
            assert engine.score(QUERY, DOCS) == pytest.approx(expected, abs=1e-6)
            assert engine.score(QUERY, DOCS) == pytest.approx(expected, abs=1e-6)
        failures = [r for r in caplog.records if getattr(r, "event", "") == "observer_failed"]
        assert len(failures) == 1
    finally:
        engine.observe(None)


class OnlyForwards:
    def __init__(self):
        self.rows = 0

    def forwarded(self, seconds, rows, tokens, padded_tokens):
        self.rows += rows


def test_an_observer_listens_only_to_what_it_defines(engine, caplog):
    listener = OnlyForwards()
    engine.observe(listener)
    try:
        with caplog.at_level(logging.ERROR, logger="reranker.observe"):
            engine.score(QUERY, DOCS)
        assert listener.rows == len(DOCS) and not caplog.records
    finally:
        engine.observe(None)


def test_unbatched_backends_report_their_forward_passes():
    """A backend that forms its own batches is called once per request, padded."""
    recorder = Recorder()
    runner = Unbatched(lambda ids, mask, types: np.zeros((len(ids), 1), np.float32),
                       token_budget=1024, max_rows=8, pad_id=0, pad_multiple=8)
    runner.observer = RecordingObserver(recorder)
    runner.run([[1, 2, 3], [4, 5]], None)
    [(seconds, rows, tokens, padded)] = recorder.forwarded
    assert seconds >= 0 and (rows, tokens, padded) == (2, 5, 16)
    assert recorder.waited == []  # no queue of ours to wait in
