"""A score does not depend on batch budget, order, duplicates or concurrent callers."""

import random
import threading

import numpy as np
import pytest

from reranker.batching import pad_batch, plan_batches
from reranker.engine import Reranker
from reranker.settings import Settings

rng = random.Random(7)
WORDS = "capital city america panda bear harlem artists movie bats nevada washington".split()
DOCS = [" ".join(rng.choice(WORDS) for _ in range(rng.randint(1, 120))) for _ in range(60)]
QUERY = "what is the capital city of america"
TOL = 1e-6


@pytest.fixture(scope="module")
def reference(bert_dir):
    engine = Reranker.from_dir(str(bert_dir), Settings(batch_tokens=1, max_batch_rows=1))
    yield np.asarray(engine.score(QUERY, DOCS, raw=True))  # one row per forward pass
    engine.close()


@pytest.mark.parametrize("budget,rows", [(64, 256), (512, 4), (4096, 256), (100000, 1000)])
def test_batch_budget_does_not_change_scores(bert_dir, reference, budget, rows):
    engine = Reranker.from_dir(str(bert_dir), Settings(batch_tokens=budget, max_batch_rows=rows))
    try:
        np.testing.assert_allclose(engine.score(QUERY, DOCS, raw=True), reference, atol=TOL)
    finally:
        engine.close()


def test_order_and_duplicates_do_not_change_scores(bert_engine, reference):
    order = list(range(len(DOCS)))
    random.Random(1).shuffle(order)
    shuffled = bert_engine.score(QUERY, [DOCS[i] for i in order], raw=True)
    np.testing.assert_allclose(shuffled, reference[order], atol=TOL)
    doubled = bert_engine.score(QUERY, DOCS + DOCS[:10], raw=True)
    np.testing.assert_allclose(doubled, np.concatenate([reference, reference[:10]]), atol=TOL)


def test_eight_threads_at_once_get_their_own_scores(bert_engine, reference):
    results, errors = {}, []
    barrier = threading.Barrier(8)

    def worker(k):
        try:
            subset = list(range(k, len(DOCS), 3))
            barrier.wait()
            for _ in range(5):
                results.setdefault(k, []).append((subset, bert_engine.score(
                    QUERY, [DOCS[i] for i in subset], raw=True)))
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors
    assert len(results) == 8
    for runs in results.values():
        for subset, scores in runs:
            np.testing.assert_allclose(scores, reference[subset], atol=TOL)


def test_plan_batches_respects_budget_and_sorts():
    lengths = [5, 50, 7, 300, 12, 12, 90]
    batches = plan_batches(lengths, token_budget=120, max_rows=3)
    assert sorted(i for b in batches for i in b) == list(range(len(lengths)))
    for batch in batches:
        assert len(batch) <= 3
        assert len(batch) == 1 or max(lengths[i] for i in batch) * len(batch) <= 120
    flat = [lengths[i] for b in batches for i in b]
    assert flat == sorted(flat)


def test_padding_only_to_the_longest_row():
    ids, mask = pad_batch([[1, 2, 3], [4]], pad_id=0)
    assert ids.tolist() == [[1, 2, 3], [4, 0, 0]] and mask.tolist() == [[1, 1, 1], [1, 0, 0]]
    ids, _ = pad_batch([[1, 2, 3]], pad_id=9, multiple=8)
    assert ids.shape == (1, 8)


def test_a_failing_forward_reaches_the_caller_and_the_worker_survives():
    from reranker.batching import Batcher

    calls = []

    def forward(ids, mask, types):
        calls.append(len(ids))
        if len(calls) == 1:
            raise RuntimeError("device lost")
        return np.zeros((len(ids), 1), dtype=np.float32)

    batcher = Batcher(forward, token_budget=100, max_rows=8, pad_id=0)
    with pytest.raises(RuntimeError, match="device lost"):
        batcher.run([[1, 2]], None)
    assert batcher.run([[1, 2], [3]], None).shape == (2, 1)
    batcher.close()
