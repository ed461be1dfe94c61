"""LLM rerankers score exactly as their references (fp32, within 1e-5).

Each reference is re-implemented literally from its source: a full-vocabulary forward pass
of AutoModelForCausalLM on the reference's own prompt and padding.  The engine instead runs
the decoder body, shares each query's prefix cache and multiplies only the judged rows.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import transformers

from example_texts import CAPITAL_DOCS, CAPITAL_QUERY
from reranker import profiles
from reranker.engine import Reranker
from reranker.errors import PayloadTooLarge
from reranker.request import RerankRequest
from reranker.settings import Settings

DOCS = CAPITAL_DOCS + ["", "short", "a much longer passage " * 12]
TOL = 1e-5


def _engine(path, **settings) -> Reranker:
    return Reranker.from_dir(str(path), Settings(warmup=False, **settings))


def _causal(path):
    tokenizer = transformers.AutoTokenizer.from_pretrained(path)
    model = transformers.AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32).eval()
    return tokenizer, model


def _qwen3_card(path, query, docs, instruction=None):
    """The Qwen3-Reranker model card: format_instruction, process_inputs, compute_logits."""
    tokenizer, model = _causal(path)
    tokenizer.padding_side = "left"
    prefix = profiles.QWEN3_SYSTEM
    suffix = profiles.QWEN3_SUFFIX
    prefix_tokens = tokenizer.encode(prefix, add_special_tokens=False)
    suffix_tokens = tokenizer.encode(suffix, add_special_tokens=False)
    if instruction is None:
        instruction = "Given a web search query, retrieve relevant passages that answer the query"
    pairs = [f"<Instruct>: {instruction}\n<Query>: {query}\n<Document>: {doc}" for doc in docs]
    inputs = tokenizer(pairs, padding=False, truncation="longest_first",
                       return_attention_mask=False,
                       max_length=8192 - len(prefix_tokens) - len(suffix_tokens))
    for i, ele in enumerate(inputs["input_ids"]):
        inputs["input_ids"][i] = prefix_tokens + ele + suffix_tokens
    inputs = tokenizer.pad(inputs, padding=True, return_tensors="pt", max_length=8192)
    token_true = tokenizer.convert_tokens_to_ids("yes")
    token_false = tokenizer.convert_tokens_to_ids("no")
    with torch.no_grad():
        batch_scores = model(**inputs).logits[:, -1, :]
    true_vector = batch_scores[:, token_true]
    false_vector = batch_scores[:, token_false]
    stacked = torch.stack([false_vector, true_vector], dim=1)
    p_yes = torch.nn.functional.log_softmax(stacked, dim=1)[:, 1].exp()
    return (true_vector - false_vector).numpy(), p_yes.numpy()


def _prepare_for_model(first, second, max_length):
    """transformers 4's ``prepare_for_model(first, second, truncation="only_second",
    add_special_tokens=False)`` (gone in transformers 5): the second sequence is cut."""
    room = max(0, max_length - len(first))
    return {"input_ids": list(first) + list(second[:room])}


def _mxbai_v2(path, query, docs, instruction=None):
    """mxbai-rerank's MxbaiRerankV2.prepare_inputs and forward (max_length 8192)."""
    tokenizer, model = _causal(path)
    tokenizer.padding_side = "left"

    def ids(x):
        return tokenizer(x, return_tensors=None, add_special_tokens=False)["input_ids"]

    yes_loc, no_loc = ids("1")[0], ids("0")[0]
    task, sep = ids(profiles.MXBAI_TASK), ids("\n")
    chat_prefix, chat_suffix = ids(profiles.MXBAI_CHAT_PREFIX), ids(profiles.MXBAI_CHAT_SUFFIX)
    items = []
    for document in docs:
        query_prompt = f"query: {query}"
        if instruction:
            query_prompt = "".join([f"instruction: {instruction}", "\n", query_prompt])
        query_inputs = tokenizer(query_prompt, return_tensors=None, add_special_tokens=False,
                                 max_length=8192 * 3 // 4, truncation=True)
        document_inputs = tokenizer(f"document: {document}", return_tensors=None,
                                    add_special_tokens=False, max_length=4096, truncation=True)
        item = _prepare_for_model(query_inputs["input_ids"], sep + document_inputs["input_ids"],
                                  max_length=8192)
        item["input_ids"] = chat_prefix + item["input_ids"] + sep + task + chat_suffix
        item["attention_mask"] = [1] * len(item["input_ids"])
        items.append(item)
    inputs = tokenizer.pad(items, padding="longest", pad_to_multiple_of=8, return_tensors="pt")
    with torch.no_grad():
        logits = model(input_ids=inputs["input_ids"],
                       attention_mask=inputs["attention_mask"]).logits
    return (logits[:, -1, yes_loc] - logits[:, -1, no_loc]).numpy()


def _flag_llm_reranker(path, query, docs, prompt=None):
    """FlagEmbedding's FlagLLMReranker.compute_score_single_gpu ("A: "/"B: ", sep "\\n")."""
    tokenizer, model = _causal(path)
    if prompt is None:
        prompt = profiles.GEMMA_PROMPT
    yes_loc = tokenizer("Yes", add_special_tokens=False)["input_ids"][0]
    prompt_inputs = tokenizer(prompt, return_tensors=None, add_special_tokens=False)["input_ids"]
    sep_inputs = tokenizer("\n", return_tensors=None, add_special_tokens=False)["input_ids"]
    max_length = 512
    encode_max_length = max_length + len(sep_inputs) + len(prompt_inputs)
    batch = []
    for doc in docs:
        query_inputs = tokenizer("A: " + query, add_special_tokens=False,
                                 max_length=max_length * 3 // 4, truncation=True)
        passage_inputs = tokenizer("B: " + doc, add_special_tokens=False,
                                   max_length=max_length, truncation=True)
        item = _prepare_for_model([tokenizer.bos_token_id] + query_inputs["input_ids"],
                                  sep_inputs + passage_inputs["input_ids"],
                                  max_length=encode_max_length)
        item["input_ids"] = item["input_ids"] + sep_inputs + prompt_inputs
        item["attention_mask"] = [1] * len(item["input_ids"])
        batch.append({"input_ids": item["input_ids"], "attention_mask": item["attention_mask"]})
    inputs = tokenizer.pad(batch, padding=True, pad_to_multiple_of=8, return_tensors="pt")
    with torch.no_grad():
        logits = model(**inputs).logits
    # last_logit_pool
    lengths = inputs["attention_mask"].sum(dim=1) - 1
    last = torch.stack([logits[i, lengths[i], :] for i in range(len(docs))])
    return last[:, yes_loc].numpy()


def test_qwen3_reranker_matches_its_model_card(llm_dirs):
    path = llm_dirs("qwen3")
    engine = _engine(path)
    try:
        for instruction in (None, "Find the passage that names a city"):
            raw, p_yes = _qwen3_card(path, CAPITAL_QUERY, DOCS, instruction)
            request = RerankRequest("python", [(CAPITAL_QUERY, d) for d in DOCS], DOCS,
                                    instruction=instruction)
            result = engine.rerank(request)
            assert np.abs(result.raw - raw).max() < TOL
            assert np.abs(result.relevance - p_yes).max() < TOL
    finally:
        engine.close()


def test_mxbai_rerank_v2_matches_its_library(llm_dirs):
    path = llm_dirs("mxbai-v2")
    engine = _engine(path)
    try:
        for instruction in (None, "Rank capitals first"):
            expected = _mxbai_v2(path, CAPITAL_QUERY, DOCS, instruction)
            request = RerankRequest("python", [(CAPITAL_QUERY, d) for d in DOCS], DOCS,
                                    instruction=instruction)
            assert np.abs(engine.rerank(request).raw - expected).max() < TOL
    finally:
        engine.close()


def test_bge_reranker_v2_gemma_matches_flag_llm_reranker(llm_dirs):
    path = llm_dirs("gemma")
    engine = _engine(path)
    try:
        expected = _flag_llm_reranker(path, CAPITAL_QUERY, DOCS)
        assert np.abs(np.array(engine.score(CAPITAL_QUERY, DOCS, raw=True)) - expected).max() < TOL
        prompt = "Does passage B answer query A? Answer 'Yes' or 'No'."
        expected = _flag_llm_reranker(path, CAPITAL_QUERY, DOCS, prompt)
        request = RerankRequest("python", [(CAPITAL_QUERY, d) for d in DOCS], DOCS,
                                instruction=prompt)
        assert np.abs(engine.rerank(request).raw - expected).max() < TOL
    finally:
        engine.close()


def test_seq_cls_conversion_gets_the_prompt_and_equals_the_causal_model(llm_dirs,
                                                                       qwen3_engine):
    causal, seq_cls = qwen3_engine, _engine(llm_dirs("qwen3-seq-cls"))
    try:
        assert seq_cls.describe()["profile"] == "qwen3-reranker-seq-cls"
        raw, _ = _qwen3_card(llm_dirs("qwen3"), CAPITAL_QUERY, DOCS)
        prefixes = []
        original = seq_cls.backend.prefix
        seq_cls.backend.prefix = lambda ids: prefixes.append(ids) or original(ids)
        got = np.array(seq_cls.score(CAPITAL_QUERY, DOCS, raw=True))
        assert len(prefixes) == 1  # its documents continue one shared prefix
        assert np.abs(got - raw).max() < TOL
        assert np.abs(got - np.array(causal.score(CAPITAL_QUERY, DOCS, raw=True))).max() < TOL
    finally:
        seq_cls.close()


def test_shared_prefix_equals_full_recomputation(llm_dirs):
    """Tiny token budgets force many batches of mixed lengths; several queries per request
    (LangChain pairs) give several prefixes.  Both must equal whole prompts run alone."""
    engine = _engine(llm_dirs("qwen3"), batch_tokens=64, max_batch_rows=3)
    try:
        pairs = [(q, d) for q in (CAPITAL_QUERY, "panda?") for d in DOCS]
        prefixes = []
        original = engine.backend.prefix
        engine.backend.prefix = lambda ids: prefixes.append(ids) or original(ids)
        result = engine.rerank(RerankRequest("python", pairs, [d for _, d in pairs]))
        assert len(prefixes) == 2  # once per query, not once per document
        rows, owner = engine.prompts.encode(pairs).full_rows()
        whole = np.array([engine.backend.whole(np.array([r]), np.ones((1, len(r)), np.int64))[0]
                          for r in rows])
        expected = np.empty(len(pairs))
        expected[owner] = whole[:, 0] - whole[:, 1]
        assert np.abs(result.raw - expected).max() < TOL
    finally:
        engine.close()


@pytest.mark.parametrize("family", ["qwen3", "gemma"])
def test_without_shareable_caches_each_document_runs_whole(llm_dirs, family):
    """A transformers whose caches the backend cannot expand: each continuation runs after
    its prefix in full, in the same batches, with the same scores."""
    pairs = [(q, d) for q in (CAPITAL_QUERY, "panda?") for d in DOCS]
    request = RerankRequest("python", pairs, [d for _, d in pairs])
    shared, whole = (_engine(llm_dirs(family), batch_tokens=64, max_batch_rows=3)
                     for _ in range(2))
    try:
        whole.backend.shares_prefix = False
        assert whole.describe()["shared_prefix"] is False
        assert isinstance(whole.backend.prefix([1, 2, 3]), list)  # no cache is computed
        assert np.abs(whole.rerank(request).raw - shared.rerank(request).raw).max() < TOL
    finally:
        shared.close()
        whole.close()


class _Forwards:
    """An engine observer that keeps each forward pass's reported token counts."""

    def __init__(self):
        self.tokens = self.padded = 0

    def forwarded(self, seconds, rows, tokens, padded_tokens):
        self.tokens += tokens
        self.padded += padded_tokens


@pytest.mark.parametrize("shared", [True, False])
def test_metrics_count_the_tokens_computed(llm_dirs, shared):
    """Forward-pass metrics count each prefix once when its cache is shared, and once per
    document when every continuation runs after its prefix in full."""
    engine = _engine(llm_dirs("qwen3"), batch_tokens=64, max_batch_rows=3)
    try:
        engine.backend.shares_prefix = shared
        forwards = _Forwards()
        engine.observe(forwards)
        pairs = [(q, d) for q in (CAPITAL_QUERY, "panda?") for d in DOCS]
        engine.rerank(RerankRequest("python", pairs, [d for _, d in pairs]))
        encoded = engine.prompts.encode(pairs)
        assert forwards.tokens == (encoded.computed if shared else encoded.tokens)
        assert forwards.padded >= forwards.tokens
    finally:
        engine.close()


def test_sentence_transformers_cross_encoder_on_a_chat_template(llm_dirs):
    """An unknown causal LM whose chat template renders a query and a document is scored
    like sentence-transformers 6's CrossEncoder (LogitScore: logit(yes) - logit(no))."""
    from sentence_transformers import CrossEncoder

    model_dir = llm_dirs("chat-template")
    engine = _engine(model_dir)
    try:
        assert engine.describe()["profile"] == profiles.CHAT_TEMPLATE
        ours = np.array(engine.score(CAPITAL_QUERY, DOCS, raw=True))
        reference = CrossEncoder(str(model_dir), device="cpu").predict(
            [(CAPITAL_QUERY, d) for d in DOCS], activation_fn=torch.nn.Identity())
        assert np.abs(ours - np.asarray(reference)).max() < TOL
    finally:
        engine.close()


def test_truncation_cuts_only_the_document(llm_dirs):
    engine = _engine(llm_dirs("qwen3"), llm_max_length=128)
    try:
        long_doc = "washington is the capital " * 200
        rows = engine.prompts.encode([(CAPITAL_QUERY, long_doc)])
        group = rows.groups[0]
        assert len(group.prefix) + len(group.rows[0]) == 128
        whole = engine.prompts.encode([(CAPITAL_QUERY, "x")]).groups[0]
        assert group.prefix == whole.prefix  # template, instruction and query whole
        tokenizer = transformers.AutoTokenizer.from_pretrained(llm_dirs("qwen3"))
        suffix = tokenizer(profiles.QWEN3_SUFFIX, add_special_tokens=False)["input_ids"]
        assert group.rows[0][-len(suffix):] == suffix  # and the suffix
        with pytest.raises(PayloadTooLarge) as info:
            engine.rerank(RerankRequest("tei", [(CAPITAL_QUERY, long_doc)], [long_doc],
                                        documents_field="texts", truncate=False))
        assert info.value.field == "texts[0]"
        with pytest.raises(PayloadTooLarge) as info:
            engine.score("capital " * 200, ["doc"])
        assert info.value.field == "query"
    finally:
        engine.close()


@pytest.mark.parametrize("family", ["qwen3", "gemma"])
def test_chunk_mode_scores_each_window_and_keeps_the_best(llm_dirs, family):
    """A document too long for one prompt becomes overlapping windows after the document
    label, each a continuation of the query's prefix with the suffix; its score is the best
    window's, each window scored as its whole prompt would be."""
    engine = _engine(llm_dirs(family), llm_max_length=96, chunk_overlap=8, max_chunks=5)
    try:
        long_doc = " ".join(f"word{i}" for i in range(300))
        docs = ["a short one", long_doc]
        pairs = [(CAPITAL_QUERY, d) for d in docs]
        rows = engine.prompts.encode(pairs, max_chunks=5, overlap=8)
        group = rows.groups[0]
        assert group.pairs == [0, 1, 1, 1, 1, 1]  # capped at max_chunks
        truncated = engine.prompts.encode(pairs).groups[0].rows[1]
        first, second = group.rows[1], group.rows[2]
        assert first == truncated  # the first window is what truncation keeps
        prompts = engine.prompts
        _, suffix_pieces, instruction = prompts.profile.with_instruction(None)
        suffix = prompts._pieces(suffix_pieces, instruction=instruction)
        label = prompts._label_tokens(prompts._plain.encode(prompts._before + long_doc))
        assert all(r[-len(suffix):] == suffix for r in group.rows)
        assert second[:label] == first[:label]  # each window keeps the document's label
        # ... and that label is the label alone: no token of the document's first word (the
        # tokenizer glues the label's space to it, " word0") is repeated in every window.
        assert prompts._plain.decode(second[:label]) == prompts._before.rstrip(" ")
        assert 0 < label < prompts._label
        # A left cut (TEI's truncation_direction) keeps the same label before the tail.
        left = prompts.encode(pairs, direction="left").groups[0].rows[1]
        assert left[:label] == first[:label]
        assert prompts._plain.decode(left[:-len(suffix)]).endswith("word299")
        width = len(first) - label - len(suffix)
        # Consecutive windows share 8 tokens; every row fits the 96-token prompt.
        assert second[label:label + 8] == first[label + width - 8:label + width]
        assert all(len(group.prefix) + len(r) == 96 for r in group.rows[1:-1])

        result = engine.rerank(RerankRequest("cohere", pairs, docs, long_documents="chunk"))
        whole = np.array([engine.backend.whole(np.array([group.prefix + r]),
                                               np.ones((1, len(group.prefix) + len(r)),
                                                       np.int64))[0] for r in group.rows])
        per_row = whole[:, 0] - whole[:, 1] if whole.shape[1] == 2 else whole[:, 0]
        assert abs(result.raw[0] - per_row[0]) < TOL
        assert abs(result.raw[1] - per_row[1:].max()) < TOL
        plain = engine.rerank(RerankRequest("cohere", pairs, docs))  # truncation: window 1
        assert abs(plain.raw[1] - per_row[1]) < TOL
    finally:
        engine.close()


def test_sentence_transformers_cross_encoder_on_qwen3(tmp_path):
    """CrossEncoder on a Qwen3-Reranker whose chat template is the card's prompt (how
    sentence-transformers prompts it) scores what the qwen3-reranker profile scores."""
    from sentence_transformers import CrossEncoder

    from demo_models.llm import qwen3_reranker

    path = qwen3_reranker(tmp_path / "qwen3-chat", chat_template=True)
    engine = _engine(path)
    try:
        assert engine.describe()["profile"] == "qwen3-reranker"
        ours = np.array(engine.score(CAPITAL_QUERY, DOCS, raw=True))
        reference = CrossEncoder(str(path), device="cpu").predict(
            [(CAPITAL_QUERY, d) for d in DOCS], activation_fn=torch.nn.Identity())
        assert np.abs(ours - np.asarray(reference)).max() < TOL
    finally:
        engine.close()


def test_concurrent_requests_share_prefixes_and_keep_scores(llm_dirs):
    """Eight threads, two queries: the worker merges equal prefixes across requests and every
    request gets the scores it gets alone."""
    from concurrent.futures import ThreadPoolExecutor

    engine = _engine(llm_dirs("qwen3"), batch_tokens=96)
    try:
        queries = [CAPITAL_QUERY, "panda?"] * 4
        alone = {q: engine.score(q, DOCS, raw=True) for q in set(queries)}
        with ThreadPoolExecutor(8) as pool:
            together = list(pool.map(lambda q: engine.score(q, DOCS, raw=True), queries))
        for query, scores in zip(queries, together):
            assert np.abs(np.array(scores) - np.array(alone[query])).max() < TOL
    finally:
        engine.close()


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_continuations_on_cpu_batch_in_the_measured_budget(llm_dirs, dtype):
    """1024 tokens per batch of continuations in every CPU precision (bf16 2048 scored up to
    23% fewer pairs/s); RERANK_BATCH_TOKENS still wins."""
    engine = _engine(llm_dirs("qwen3"), dtype=dtype)
    chosen = _engine(llm_dirs("qwen3"), dtype=dtype, batch_tokens=300)
    try:
        assert engine.batcher.token_budget == 1024
        assert chosen.batcher.token_budget == 300
    finally:
        engine.close()
        chosen.close()
