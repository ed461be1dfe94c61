"""Cohere's ``max_tokens_per_doc``: each document keeps its first N tokens, for cross-encoders
and LLM rerankers alike.

The reference for a capped document is the same request with the document's text cut where
its N-th token ends (the tokenizer's offsets; decoding ids back to text does not round-trip),
so a capped request must score exactly as that shorter document does.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import transformers

from example_texts import CAPITAL_QUERY
from reranker import dialects
from reranker.engine import Reranker
from reranker.errors import InvalidRequest
from reranker.request import RerankRequest
from reranker.settings import Settings

# Plain words, each its own token in every tokenizer here, so a text cut at a token's edge
# tokenizes back to exactly the tokens kept.
LONG_DOC = " ".join(f"the capital {w} is washington" for w in
                    ("city", "state", "river", "road", "hill", "park") * 12)
CAP = 23
MAX_LENGTH = 48


def _cut(tokenizer, text: str, cap: int, direction: str = "right") -> str:
    """``text`` cut to its first (left: last) ``cap`` tokens, at the tokenizer's offsets."""
    offsets = tokenizer(text, add_special_tokens=False,
                        return_offsets_mapping=True)["offset_mapping"]
    assert len(offsets) > cap, "the document must be longer than the cap"
    if direction == "left":
        return text[offsets[len(offsets) - cap][0]:]
    return text[: offsets[cap - 1][1]]


def _ids(tokenizer, text: str) -> list[int]:
    return tokenizer(text, add_special_tokens=False)["input_ids"]


def _parse(body: dict):
    return dialects.parse(json.dumps(body).encode(), "application/json")


def _cohere(documents: list[str], **fields) -> RerankRequest:
    return _parse({"query": CAPITAL_QUERY, "documents": documents, **fields})


# --- the Cohere dialect ----------------------------------------------------------------


def test_the_cohere_dialect_carries_the_cap():
    assert _cohere(["d"], max_tokens_per_doc=7).max_document_tokens == 7
    assert _cohere(["d"], max_tokens_per_doc=7.0).max_document_tokens == 7
    assert _cohere(["d"], max_tokens_per_doc=None).max_document_tokens is None
    assert _cohere(["d"]).max_document_tokens is None


@pytest.mark.parametrize("value", [0, -1, 2.5, "12", True, [], {}])
def test_a_bad_cap_is_a_422_naming_the_field(value):
    with pytest.raises(InvalidRequest) as caught:
        _cohere(["d"], max_tokens_per_doc=value)
    assert caught.value.status == 422
    assert caught.value.field == "max_tokens_per_doc"
    assert "max_tokens_per_doc" in str(caught.value)


# --- cross-encoders ----------------------------------------------------------------------


@pytest.fixture(scope="module", params=["bert", "xlmr"])
def encoder(request, model_dirs):
    path = str(model_dirs(request.param))
    engine = Reranker.from_dir(path, Settings(max_length=MAX_LENGTH, max_chunks=16,
                                              chunk_overlap=4, warmup=False))
    yield engine, transformers.AutoTokenizer.from_pretrained(path)
    engine.close()


def test_a_capped_document_scores_as_its_first_tokens(encoder):
    engine, tokenizer = encoder
    cap = 9  # below the room the pair leaves, so the cap alone decides what is kept
    cut = _cut(tokenizer, LONG_DOC, cap)
    assert _ids(tokenizer, cut) == _ids(tokenizer, LONG_DOC)[:cap]
    capped = engine.encoder.encode([(CAPITAL_QUERY, LONG_DOC)], max_document_tokens=cap)
    reference = tokenizer([CAPITAL_QUERY], [cut], truncation="only_second",
                          max_length=MAX_LENGTH)["input_ids"]
    assert capped.ids == reference
    uncapped = engine.encoder.encode([(CAPITAL_QUERY, LONG_DOC)])
    assert len(uncapped.ids[0]) == MAX_LENGTH > len(capped.ids[0])

    docs = [LONG_DOC, "Washington is the capital of the United States."]
    result = engine.rerank(_cohere(docs, max_tokens_per_doc=cap))
    expected = engine.rerank(_cohere([cut, docs[1]]))
    np.testing.assert_array_equal(result.logits, expected.logits)
    assert result.tokens == expected.tokens


def test_the_cap_keeps_the_side_the_truncation_direction_keeps(encoder):
    # Compared on ids: a text cut before a word tokenizes differently in SentencePiece
    # vocabularies, which mark the space before a word.
    engine, tokenizer = encoder
    pairs = [(CAPITAL_QUERY, LONG_DOC)]
    capped = engine.encoder.encode(pairs, max_document_tokens=9, direction="left")
    # The whole pair's row without the document's tokens before its last 9.
    whole = tokenizer([CAPITAL_QUERY], [LONG_DOC])
    which = whole.sequence_ids(0)
    first_kept = which.index(1) + which.count(1) - 9
    kept = [i for at, (i, seq) in enumerate(zip(whole["input_ids"][0], which))
            if seq != 1 or at >= first_kept]
    assert capped.ids == [kept]


def test_in_chunk_mode_the_cap_limits_the_document_before_its_windows(encoder):
    engine, tokenizer = encoder
    cut = _cut(tokenizer, LONG_DOC, 60)
    assert _ids(tokenizer, cut) == _ids(tokenizer, LONG_DOC)[:60]
    pairs = [(CAPITAL_QUERY, LONG_DOC)]
    windows = dict(chunk=True, max_chunks=16, overlap=4)
    capped = engine.encoder.encode(pairs, max_document_tokens=60, **windows)
    reference = engine.encoder.encode([(CAPITAL_QUERY, cut)], **windows)
    uncapped = engine.encoder.encode(pairs, **windows)
    assert capped.ids == reference.ids
    assert 1 < len(capped.ids) < len(uncapped.ids)

    result = engine.rerank(_cohere([LONG_DOC], max_tokens_per_doc=60,
                                   long_documents="chunk"))
    expected = engine.rerank(_cohere([cut], long_documents="chunk"))
    np.testing.assert_array_equal(result.logits, expected.logits)


def test_without_the_field_or_under_it_nothing_changes(encoder):
    engine, _ = encoder
    docs = [LONG_DOC, "Washington is the capital of the United States.", "short"]
    plain = engine.rerank(_cohere(docs))
    for fields in ({"max_tokens_per_doc": None}, {"max_tokens_per_doc": 10_000}):
        other = engine.rerank(_cohere(docs, **fields))
        np.testing.assert_array_equal(other.logits, plain.logits)
        assert other.tokens == plain.tokens
    np.testing.assert_array_equal(plain.relevance, engine.score(CAPITAL_QUERY, docs))


# --- LLM rerankers -----------------------------------------------------------------------


@pytest.fixture(scope="module", params=["qwen3", "gemma"])
def llm(request, llm_dirs):
    path = str(llm_dirs(request.param))
    engine = Reranker.from_dir(path, Settings(llm_max_length=160, max_chunks=16,
                                              chunk_overlap=4, warmup=False))
    yield engine, transformers.AutoTokenizer.from_pretrained(path)
    engine.close()


def test_an_llm_prompt_holds_the_documents_first_tokens(llm):
    engine, tokenizer = llm
    cut = _cut(tokenizer, LONG_DOC, CAP)
    assert _ids(tokenizer, cut) == _ids(tokenizer, LONG_DOC)[:CAP]
    docs = [LONG_DOC, "Washington is the capital of the United States."]
    capped = engine.prompts.encode([(CAPITAL_QUERY, d) for d in docs], max_document_tokens=CAP)
    reference = engine.prompts.encode([(CAPITAL_QUERY, cut), (CAPITAL_QUERY, docs[1])])
    uncapped = engine.prompts.encode([(CAPITAL_QUERY, d) for d in docs])
    assert capped.groups[0].rows == reference.groups[0].rows
    assert len(capped.groups[0].rows[0]) < len(uncapped.groups[0].rows[0])
    assert capped.groups[0].rows[1] == uncapped.groups[0].rows[1]  # a short one stays whole

    result = engine.rerank(_cohere(docs, max_tokens_per_doc=CAP))
    expected = engine.rerank(_cohere([cut, docs[1]]))
    np.testing.assert_allclose(result.logits, expected.logits, atol=1e-6, rtol=0)
    assert result.tokens == expected.tokens


def test_an_llm_cap_keeps_the_side_the_truncation_direction_keeps(llm):
    engine, tokenizer = llm
    cut = _cut(tokenizer, LONG_DOC, CAP, "left")
    capped = engine.prompts.encode([(CAPITAL_QUERY, LONG_DOC)], max_document_tokens=CAP,
                                   direction="left")
    assert capped.groups[0].rows == engine.prompts.encode([(CAPITAL_QUERY, cut)]).groups[0].rows


def test_an_llm_cap_never_keeps_more_tokens_than_asked(llm):
    """An emoji or a CJK character can be several byte-level tokens of one character: the
    cut falls between characters, so a capped document never holds more than the cap."""
    engine, tokenizer = llm
    doc = "ab 🐼🐼🐼 panda 中文字符 end"
    for cap in range(1, len(_ids(tokenizer, doc)) + 1):
        for direction in ("right", "left"):
            (text,) = engine.prompts._capped([doc], cap, direction)
            assert len(_ids(tokenizer, text)) <= cap, (cap, direction, text)
            assert text in doc


def test_llm_chunk_windows_cover_only_the_capped_document(llm):
    engine, tokenizer = llm
    cut = _cut(tokenizer, LONG_DOC, 150)
    pairs = [(CAPITAL_QUERY, LONG_DOC)]
    windows = dict(max_chunks=16, overlap=4)
    capped = engine.prompts.encode(pairs, max_document_tokens=150, **windows).groups[0]
    reference = engine.prompts.encode([(CAPITAL_QUERY, cut)], **windows).groups[0]
    uncapped = engine.prompts.encode(pairs, **windows).groups[0]
    assert capped.rows == reference.rows
    assert 1 < len(capped.rows) < len(uncapped.rows)

    result = engine.rerank(_cohere([LONG_DOC], max_tokens_per_doc=150,
                                   long_documents="chunk"))
    expected = engine.rerank(_cohere([cut], long_documents="chunk"))
    np.testing.assert_allclose(result.logits, expected.logits, atol=1e-6, rtol=0)


def test_an_llm_request_without_the_field_is_unchanged(llm):
    engine, _ = llm
    docs = [LONG_DOC, "short"]
    plain = engine.rerank(_cohere(docs))
    other = engine.rerank(_cohere(docs, max_tokens_per_doc=None))
    np.testing.assert_array_equal(other.logits, plain.logits)
    np.testing.assert_allclose(plain.relevance, engine.score(CAPITAL_QUERY, docs), atol=1e-6)
