"""Reduced precision on GPUs: bf16 only where the GPU computes it natively (fp16 on T4 and
V100), and a score that overflowed to NaN or infinity fails its request, naming the
document and the fix, instead of being answered as a number."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from reranker.backends import torch_setup
from reranker.errors import NonFiniteScore
from reranker.request import RerankRequest
from serving.errors import is_typed

CUDA = torch.device("cuda")  # a descriptor: no GPU is needed to build it


@pytest.mark.parametrize("capability, dtype", [
    ((7, 5), "float16"),   # T4 (ml.g4dn): bf16 only emulated, without tensor cores
    ((7, 0), "float16"),   # V100 (ml.p3)
    ((8, 6), "bfloat16"),  # A10G (ml.g5)
    ((8, 9), "bfloat16"),  # L4 / L40S (ml.g6, ml.g6e)
    ((9, 0), "bfloat16"),  # H100 / H200 (ml.p5)
])
def test_auto_is_bf16_only_where_the_gpu_has_it(monkeypatch, capability, dtype):
    monkeypatch.setattr(torch.version, "hip", None)
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: capability)
    # torch says yes on a T4 too: it counts emulation.
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    assert torch_setup.pick_dtype("auto", CUDA) == dtype


def test_an_explicit_dtype_is_honoured_where_it_runs(monkeypatch):
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: (7, 5))
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    assert torch_setup.pick_dtype("bfloat16", CUDA) == "bfloat16"
    assert torch_setup.pick_dtype("float32", CUDA) == "float32"
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: False)
    assert torch_setup.pick_dtype("bfloat16", CUDA) == "float16"


def overflowing(engine, monkeypatch, bad_rows):
    """The engine's model, with the rows ``bad_rows`` of each batch overflowed."""
    run = engine.batcher.run

    def broken(*args, **kwargs):
        logits = np.array(run(*args, **kwargs), dtype=np.float32)
        logits[bad_rows] = np.nan
        return logits

    monkeypatch.setattr(engine.batcher, "run", broken)


def test_a_non_finite_score_fails_the_request_naming_its_document(bert_engine, monkeypatch):
    overflowing(bert_engine, monkeypatch, [1])
    request = RerankRequest("cohere", [("q", "a"), ("q", "b"), ("q", "c")], ["a", "b", "c"])
    with pytest.raises(NonFiniteScore) as info:
        bert_engine.rerank(request)
    exc = info.value
    assert exc.field == "documents[1]" and exc.status == 500 and is_typed(exc)
    assert "1 of 3 documents in float32" in exc.message
    assert "set RERANK_DTYPE=float32" in exc.message


def test_in_chunk_mode_the_row_names_its_document(bert_engine, monkeypatch):
    long_text = " ".join(["word"] * 2000)  # several windows: rows are chunks, not documents
    overflowing(bert_engine, monkeypatch, [-1])  # the last chunk, which is the last document's
    request = RerankRequest("cohere", [("q", "short"), ("q", long_text)], ["short", long_text],
                            long_documents="chunk", documents_field="texts")
    with pytest.raises(NonFiniteScore) as info:
        bert_engine.rerank(request)
    assert info.value.field == "texts[1]"


def test_finite_scores_pass(bert_engine):
    result = bert_engine.rerank(RerankRequest("cohere", [("q", "a")], ["a"]))
    assert np.isfinite(result.raw).all()
