"""Scores equal the reference computations: a plain forward pass, and CrossEncoder.predict."""

import numpy as np
import pytest
import torch
import transformers

from reranker.engine import Reranker
from reranker.settings import Settings

MAX_LEN = 48
QUERY = "what is the capital city of america?"
DOCS = [
    "Carson City is the capital city of the American state of Nevada.",
    "Washington, D.C. is the capital of the United States. It is a federal district.",
    "",
    "panda " * 200,  # far beyond the limit: the document is cut, the query kept
    "Ünïcødé 文字 emoji 🐼 and \"quotes\" \\ backslashes\n\ttabs",
    "short",
]
KINDS = ["bert", "bert2", "xlmr", "deberta"]


@pytest.fixture(scope="module", params=KINDS)
def loaded(request, model_dirs):
    path = str(model_dirs(request.param))
    engine = Reranker.from_dir(path, Settings(max_length=MAX_LEN))
    tokenizer = transformers.AutoTokenizer.from_pretrained(path)
    model = transformers.AutoModelForSequenceClassification.from_pretrained(path).eval()
    yield request.param, path, engine, tokenizer, model
    engine.close()


def reference_logits(tokenizer, model, pairs, max_length=MAX_LEN):
    """One pair at a time, no padding: the plain forward pass with query-protecting truncation."""
    rows = []
    for query, doc in pairs:
        # Lists, not strings: tokenizer(q, "") silently drops an empty pair, the batch form
        # (what CrossEncoder.predict calls) keeps it.
        enc = tokenizer([query], [doc], truncation="only_second", max_length=max_length,
                        return_tensors="pt")
        with torch.inference_mode():
            rows.append(model(**enc).logits[0].numpy())
    return np.stack(rows)


def test_scores_equal_plain_forward_pass(loaded):
    _, _, engine, tokenizer, model = loaded
    assert engine.describe()["first_token_tail"], "the last-layer shortcut must be what we test"
    pairs = [(QUERY, d) for d in DOCS]
    expected = reference_logits(tokenizer, model, pairs)
    result = engine.rerank(_request(pairs))
    np.testing.assert_allclose(result.logits, expected, atol=1e-5, rtol=0)


def test_activation_follows_label_count(loaded):
    kind, _, engine, tokenizer, model = loaded
    pairs = [(QUERY, d) for d in DOCS[:3]]
    logits = reference_logits(tokenizer, model, pairs).astype(np.float64)
    result = engine.rerank(_request(pairs))
    if kind == "bert2":  # two labels: softmax positive class; raw is the logit difference
        exp = np.exp(logits - logits.max(axis=1, keepdims=True))
        np.testing.assert_allclose(result.relevance, exp[:, 1] / exp.sum(axis=1), atol=1e-5)
        np.testing.assert_allclose(result.raw, logits[:, 1] - logits[:, 0], atol=1e-5)
    else:
        np.testing.assert_allclose(result.raw, logits[:, 0], atol=1e-5)
        np.testing.assert_allclose(result.relevance, 1 / (1 + np.exp(-logits[:, 0])), atol=1e-5)


def _words(n: int) -> str:
    return " ".join(f"w{i % 7}" for i in range(n))


# Queries and documents from one word to far past the limit, around half of it included:
# fits whole, only the document cut, only the query cut, both cut to their halves.
LENGTHS = (0, 1, 5, 18, 21, 22, 23, 24, 30, 45, 60)
CUT_PAIRS = [(_words(max(q, 1)), _words(d)) for q in LENGTHS for d in LENGTHS]


@pytest.mark.parametrize("direction", ["right", "left"])
def test_rows_are_the_tokens_crossencoder_scores(loaded, direction, monkeypatch):
    """Every row equals tokenizer(q, d, truncation=True): a pair that fits is never cut,
    and a long query is cut only as far as longest-first truncation cuts it, from the side
    the request keeps (TEI's truncation_direction), as the tokenizer cuts both texts."""
    _, _, engine, tokenizer, _ = loaded
    monkeypatch.setattr(tokenizer, "truncation_side", direction)
    expected = tokenizer([q for q, _ in CUT_PAIRS], [d for _, d in CUT_PAIRS],
                         truncation=True, max_length=MAX_LEN)["input_ids"]
    rows = engine.encoder.encode(CUT_PAIRS, direction=direction).ids
    assert [list(r) for r in rows] == [list(e) for e in expected]


def test_truncate_false_refuses_a_pair_whose_query_is_too_long(loaded):
    """TEI's truncate=false refuses any pair over the limit, the query's tokens included:
    never a silent cut of the query."""
    from reranker.errors import PayloadTooLarge

    _, _, engine, _, _ = loaded
    with pytest.raises(PayloadTooLarge, match="pair 1 has") as caught:
        engine.encoder.encode([("short", "doc"), (_words(60), "doc")], truncate=False)
    assert caught.value.field == "documents[1]"


def test_agrees_with_sentence_transformers(loaded):
    from sentence_transformers import CrossEncoder

    _, path, engine, _, _ = loaded
    pairs = [(QUERY, d) for d in DOCS] + CUT_PAIRS[::7]
    ce = CrossEncoder(path, max_length=MAX_LEN, device="cpu", activation_fn=torch.nn.Identity())
    expected = np.asarray(ce.predict(pairs, batch_size=4, convert_to_numpy=True))
    result = engine.rerank(_request(pairs))
    np.testing.assert_allclose(result.logits.reshape(expected.shape), expected, atol=1e-5)


def test_long_query_is_capped_so_the_document_keeps_room(loaded):
    _, _, engine, tokenizer, model = loaded
    long_query = "capital " * 200
    encoded = engine.encoder.encode([(long_query, "the document")])
    row = encoded.ids[0]
    doc_ids = tokenizer("the document", add_special_tokens=False)["input_ids"]
    assert len(row) <= MAX_LEN
    assert _contains(row, doc_ids), "the whole short document must survive"
    with torch.inference_mode():
        kwargs = {"input_ids": torch.tensor([row])}
        if encoded.type_ids is not None:
            kwargs["token_type_ids"] = torch.tensor([encoded.type_ids[0]])
        expected = model(**kwargs).logits[0].numpy()
    result = engine.rerank(_request([(long_query, "the document")]))
    np.testing.assert_allclose(result.logits[0], expected, atol=1e-5)


def test_chunk_mode_takes_the_best_window(loaded):
    _, _, engine, tokenizer, model = loaded
    doc = " ".join(f"word{i}" for i in range(300))
    pairs = [(QUERY, doc)]
    # The request below asks for 50 windows; it gets RERANK_MAX_CHUNKS at most.
    encoded = engine.encoder.encode(pairs, chunk=True, max_chunks=engine.settings.max_chunks,
                                    overlap=engine.settings.chunk_overlap)
    assert len(encoded.ids) > 1 and set(encoded.owner) == {0}
    assert all(len(row) <= MAX_LEN for row in encoded.ids)
    windows = []
    with torch.inference_mode():
        for k, row in enumerate(encoded.ids):
            kwargs = {"input_ids": torch.tensor([row])}
            if encoded.type_ids is not None:
                kwargs["token_type_ids"] = torch.tensor([encoded.type_ids[k]])
            windows.append(model(**kwargs).logits[0].numpy())
    request = _request(pairs)
    request.long_documents, request.max_chunks = "chunk", 50
    result = engine.rerank(request)
    raw = [w[0] if len(w) == 1 else w[1] - w[0] for w in windows]
    assert result.raw[0] == pytest.approx(max(raw), abs=1e-5)
    truncated = engine.rerank(_request(pairs))
    assert result.raw[0] >= truncated.raw[0] - 1e-5


def _contains(row, part):
    return any(row[i:i + len(part)] == part for i in range(len(row) - len(part) + 1))


def _request(pairs):
    from reranker.request import RerankRequest

    return RerankRequest("cohere", list(pairs), [d for _, d in pairs])


@pytest.mark.parametrize("share", [0.05, 0.9])
@pytest.mark.parametrize("chunk", [False, True])
def test_any_query_share_leaves_each_text_a_token_in_a_small_room(model_dirs, share, chunk):
    """RERANK_MAX_QUERY_SHARE at either end of its range, with a request's small
    max_tokens: the query and the document keep a token each, and no row (no chunk window)
    is longer than the cap."""
    from reranker.encoding import PairEncoder

    tokenizer = transformers.AutoTokenizer.from_pretrained(str(model_dirs("bert")))
    encoder = PairEncoder(tokenizer, 512, share)
    query, doc = "alpha " * 700, "omega " * 600
    alpha, omega = (tokenizer.convert_tokens_to_ids(t) for t in ("alpha", "omega"))
    encoded = encoder.encode([(query, doc)], chunk=chunk, max_length=10)
    assert encoded.ids and all(len(row) <= 10 for row in encoded.ids)
    assert all(alpha in row and omega in row for row in encoded.ids)


def test_a_generic_tokenizer_still_feeds_bert_its_segment_ids(model_dirs, tmp_path):
    """transformers 5's generic tokenizer class does not list token_type_ids (4's does): a
    BERT cross-encoder saved with it is still scored with the segment ids it learned, and
    a packaged copy says so for every loader."""
    import json
    import shutil

    from deploy.package.fetch import portable_tokenizer_config

    generic = tmp_path / "generic"
    shutil.copytree(model_dirs("bert"), generic)
    config_path = generic / "tokenizer_config.json"
    config = json.loads(config_path.read_text())
    config_path.write_text(json.dumps({**config, "tokenizer_class": "TokenizersBackend"}))
    engine = Reranker.from_dir(str(generic), Settings(max_length=MAX_LEN))
    try:
        assert engine.encoder.uses_token_type_ids
        bert = transformers.AutoTokenizer.from_pretrained(str(model_dirs("bert")))
        model = transformers.AutoModelForSequenceClassification.from_pretrained(
            str(generic)).eval()
        pairs = [(QUERY, d) for d in DOCS]
        result = engine.rerank(_request(pairs))
        np.testing.assert_allclose(result.logits, reference_logits(bert, model, pairs),
                                   atol=1e-5, rtol=0)
    finally:
        engine.close()
    portable_tokenizer_config(generic)
    written = json.loads(config_path.read_text())
    assert written["tokenizer_class"] == "PreTrainedTokenizerFast"
    assert written["model_input_names"] == ["input_ids", "token_type_ids", "attention_mask"]
    assert "token_type_ids" in transformers.AutoTokenizer.from_pretrained(
        str(generic)).model_input_names
