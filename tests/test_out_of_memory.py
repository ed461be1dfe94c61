"""CUDA out-of-memory, injected on CPU: a forward pass that raises
``torch.cuda.OutOfMemoryError`` above a number of padded tokens, through the real engine.

The split batches score as the unsplit one, the learned cap is kept (a second request is
planned under it and runs out of memory no more), and a row that does not fit even alone
fails its own request with a 413 naming the document (a query prefix: naming the query),
not the requests batched with it.
(bench/device/oom.py checks the same on a GPU with a real allocator limit.)
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from example_texts import CAPITAL_DOCS, CAPITAL_QUERY
from reranker.batching import _RowsJob
from reranker.engine import Reranker
from reranker.errors import PayloadTooLarge, TooLargeForDevice
from reranker.prefix_batching import _GroupsJob
from reranker.settings import Settings

DOCS = CAPITAL_DOCS + ["short", "", "a somewhat longer passage about cities " * 3] * 2
LONG = "the one document far longer than every other in this request " * 8
TOL = 1e-5


class SmallGPU:
    """Wraps a backend's forward: out of memory above ``limit`` padded tokens, or for a
    row of ``too_wide`` padded tokens or more even alone."""

    def __init__(self, backend, method: str, ids_arg: int, limit: int, too_wide: int = 10**9):
        self.inner = getattr(backend, method)
        self.ids_arg, self.limit, self.too_wide = ids_arg, limit, too_wide
        self.fitted: list[tuple[int, int]] = []
        self.failed: list[tuple[int, int]] = []
        setattr(backend, method, self)

    def __call__(self, *args):
        ids = args[self.ids_arg]
        if ids.size > self.limit or ids.shape[1] >= self.too_wide:
            self.failed.append(ids.shape)
            raise torch.cuda.OutOfMemoryError("CUDA out of memory (injected)")
        self.fitted.append(ids.shape)
        return self.inner(*args)


def _engine(path) -> Reranker:
    return Reranker.from_dir(str(path), Settings(warmup=False))


@pytest.fixture(scope="module")
def bert(model_dirs):
    engine = _engine(model_dirs("bert"))
    yield engine
    engine.close()


@pytest.fixture(scope="module")
def qwen3(llm_dirs):
    engine = _engine(llm_dirs("qwen3"))
    yield engine
    engine.close()


def _splits_and_remembers(engine, method: str, ids_arg: int):
    expected = engine.score(CAPITAL_QUERY, DOCS, raw=True)
    gpu = SmallGPU(engine.backend, method, ids_arg, limit=60)
    try:
        got = engine.score(CAPITAL_QUERY, DOCS, raw=True)
        assert gpu.failed, "the injected limit was never reached"
        assert 0 < engine.backend.memory.tokens <= 60
        assert np.allclose(got, expected, atol=TOL, rtol=0)
        failures = len(gpu.failed)
        again = engine.score(CAPITAL_QUERY, DOCS, raw=True)
        assert len(gpu.failed) == failures  # planned under the cap: no failed pass first
        assert np.allclose(again, expected, atol=TOL, rtol=0)
        assert engine.describe()["memory_cap_tokens"] == engine.backend.memory.tokens
    finally:
        setattr(engine.backend, method, gpu.inner)
        engine.backend.memory.tokens = 0


def test_encoder_batches_split_on_oom_and_remember_the_cap(bert):
    _splits_and_remembers(bert, "_forward", 0)


def test_llm_continuations_split_on_oom_and_remember_the_cap(qwen3):
    _splits_and_remembers(qwen3, "_continuations", 2)


def _too_wide(rows: list[list[int]]) -> int:
    """A width only the long document's row reaches."""
    return sorted(map(len, rows))[-2] + 1


def test_encoder_row_that_cannot_fit_fails_its_request_alone(bert):
    docs = ["first", LONG, "third"]
    expected = bert.score(CAPITAL_QUERY, CAPITAL_DOCS, raw=True)
    rows = bert.encoder.encode([(CAPITAL_QUERY, d) for d in docs + CAPITAL_DOCS]).ids
    gpu = SmallGPU(bert.backend, "_forward", 0, limit=10**9, too_wide=_too_wide(rows))
    try:
        with pytest.raises(TooLargeForDevice) as caught:
            bert.score(CAPITAL_QUERY, docs)
        assert caught.value.status == 413 and caught.value.field == "documents[1]"
        # Two requests in one round of the batcher: only the one with the long row fails.
        jobs = [_RowsJob(bert.encoder.encode([(CAPITAL_QUERY, d) for d in texts]).ids, None)
                for texts in (docs, CAPITAL_DOCS)]
        if bert.encoder.uses_token_type_ids:
            for job, texts in zip(jobs, (docs, CAPITAL_DOCS)):
                job.type_ids = bert.encoder.encode([(CAPITAL_QUERY, d) for d in texts]).type_ids
        bert.batcher._score(jobs)
        assert isinstance(jobs[0].error, TooLargeForDevice) and jobs[0].error.row == 1
        assert jobs[1].error is None
        assert np.allclose(jobs[1].logits[:, 0], expected, atol=TOL, rtol=0)
        assert bert.backend.memory.tokens == 0  # one over-long row does not cap every batch
    finally:
        bert.backend._forward = gpu.inner


def test_llm_row_that_cannot_fit_fails_its_request_alone(qwen3):
    docs = ["first", "second", LONG]
    expected = qwen3.score(CAPITAL_QUERY, CAPITAL_DOCS, raw=True)
    rows = qwen3.prompts.encode([(CAPITAL_QUERY, d) for d in docs + CAPITAL_DOCS]).groups[0].rows
    gpu = SmallGPU(qwen3.backend, "_continuations", 2, limit=10**9, too_wide=_too_wide(rows))
    try:
        with pytest.raises(TooLargeForDevice) as caught:
            qwen3.score(CAPITAL_QUERY, docs)
        assert caught.value.status == 413 and caught.value.field == "documents[2]"
        jobs = [_GroupsJob(qwen3.prompts.encode([(CAPITAL_QUERY, d) for d in texts]).groups)
                for texts in (docs, CAPITAL_DOCS)]
        qwen3.batcher._score(jobs)  # one shared prefix: both requests in the same passes
        assert isinstance(jobs[0].error, TooLargeForDevice) and jobs[0].error.row == 2
        assert jobs[1].error is None
        judged = jobs[1].results[0]
        assert np.allclose(judged[:, 0] - judged[:, 1], expected, atol=TOL, rtol=0)
        assert qwen3.backend.memory.tokens == 0
    finally:
        qwen3.backend._continuations = gpu.inner


def test_llm_prefix_that_cannot_fit_fails_the_requests_with_that_query(qwen3):
    long_query = "a query far longer than the other one " * 6
    expected = qwen3.score(CAPITAL_QUERY, CAPITAL_DOCS, raw=True)
    inner = qwen3.backend._prefix
    limit = len(qwen3.prompts.encode([(CAPITAL_QUERY, "d")]).groups[0].prefix)

    def small_gpu(ids):
        if len(ids) > limit:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory (injected)")
        return inner(ids)

    qwen3.backend._prefix = small_gpu
    try:
        with pytest.raises(PayloadTooLarge) as caught:
            qwen3.score(long_query, ["a document"])
        assert caught.value.status == 413 and caught.value.field == "query"
        jobs = [_GroupsJob(qwen3.prompts.encode([(q, d) for d in CAPITAL_DOCS]).groups)
                for q in (long_query, CAPITAL_QUERY)]
        qwen3.batcher._score(jobs)
        assert isinstance(jobs[0].error, PayloadTooLarge) and jobs[1].error is None
        judged = jobs[1].results[0]
        assert np.allclose(judged[:, 0] - judged[:, 1], expected, atol=TOL, rtol=0)
    finally:
        qwen3.backend._prefix = inner
