"""LLM rerankers saved by sentence-transformers' CrossEncoder are scored as it scores them.

A Qwen3ForCausalLM is not always Qwen3-Reranker: a fine-tune saved by sentence-transformers
6 carries its own chat template and its LogitScore's token ids.  The engine reads them and
matches ``CrossEncoder(directory).predict``; where its saved configuration asks for what the
engine does not reproduce, the model is refused.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
import transformers

from demo_models import llm
from example_texts import CAPITAL_DOCS, CAPITAL_QUERY
from reranker import profiles, saved_cross_encoder
from reranker.backends.base import ModelLoadError
from reranker.engine import Reranker
from reranker.errors import InvalidRequest
from reranker.request import RerankRequest
from reranker.settings import Settings

TOL = 1e-5
DOCS = CAPITAL_DOCS[:3]

@pytest.fixture(scope="module")
def weights(llm_dirs) -> Path:
    """The test run's tiny Qwen3 weights, which every saved model copies (building is slow)."""
    return llm_dirs("qwen3")


def _saved(folder: Path, weights: Path, **case) -> Path:
    return llm.saved_cross_encoder(folder / "saved", weights=weights, **case)


@pytest.fixture(scope="module")
def saved_as(weights, tmp_path_factory):
    """``saved_as(template=..., judged=...)``: the model saved with that template and judged
    tokens, saved once for the module (saving loads and writes the model: seconds) and
    shared by the tests that only load it.  A test that changes a saved model's files saves
    its own with ``_saved``."""
    cache: dict[tuple, Path] = {}

    def get(template: str, judged: tuple[str, str | None] = ("1", "0")) -> Path:
        if (template, judged) not in cache:
            cache[template, judged] = _saved(tmp_path_factory.mktemp("saved-as"), weights,
                                             template=template, judged=judged)
        return cache[template, judged]

    return get


def _engine(path) -> Reranker:
    return Reranker.from_dir(str(path), Settings(warmup=False))


def _reference(path, *prompts: str | None) -> np.ndarray:
    """CrossEncoder(path)'s raw scores of the capital pairs: one row per prompt given
    (None: its default), or one array without any."""
    from sentence_transformers import CrossEncoder

    model = CrossEncoder(str(path), device="cpu")
    rows = [np.asarray(model.predict([(CAPITAL_QUERY, d) for d in DOCS], prompt=prompt,
                                     activation_fn=torch.nn.Identity()))
            for prompt in prompts or (None,)]
    return np.stack(rows) if prompts else rows[0]


def _scores_of(path) -> list[float]:
    """Raw scores of the capital pairs from a fresh engine on ``path``."""
    engine = _engine(path)
    try:
        return engine.score(CAPITAL_QUERY, DOCS, raw=True)
    finally:
        engine.close()


def _scores(engine, instruction=None) -> np.ndarray:
    pairs = [(CAPITAL_QUERY, d) for d in DOCS]
    return engine.rerank(RerankRequest("cohere", pairs, DOCS, instruction=instruction)).raw


# A template that writes a system text of its own when it is given none (as Qwen2.5's does).
OWN_DEFAULT_SYSTEM = llm.FINE_TUNE_CHAT_TEMPLATE.replace(
    "{% for m in messages %}{% if m.role == 'system' %}<|im_start|>system\n{{ m.content }}"
    "<|im_end|>\n{% endif %}{% endfor %}",
    "<|im_start|>system\n{% if messages[0].role == 'system' %}{{ messages[0].content }}"
    "{% else %}You are a careful judge.{% endif %}<|im_end|>\n")


@pytest.mark.parametrize("case", [
    dict(),  # two tokens, "1" and "0"
    dict(prompt="Judge the passage for a curious reader."),
    dict(template=OWN_DEFAULT_SYSTEM),
], ids=["added-system-message", "over-a-default-prompt", "over-the-template's-own"])
def test_an_instruction_is_the_cross_encoders_prompt(weights, tmp_path, case):
    """Its own template and judged ids, not the Qwen3 family's: the same raw scores as
    CrossEncoder.predict.  Where the template renders a system message before the query, a
    request's instruction goes there, as CrossEncoder.predict(prompt=...) sends it; without
    one the saved default prompt (or the template's own text) stays."""
    path = _saved(tmp_path, weights, **case)
    assert OWN_DEFAULT_SYSTEM != llm.FINE_TUNE_CHAT_TEMPLATE
    engine = _engine(path)
    try:
        assert engine.describe()["profile"] == profiles.CHAT_TEMPLATE
        assert engine.profile.takes_instruction
        _, _, instruction = engine.profile.with_instruction(None)
        assert instruction == case.get("prompt", "You are a careful judge." if case else "")
        instruction = "Prefer passages that name a city."
        plain, prompted = _reference(path, None, instruction)
        assert np.abs(_scores(engine) - plain).max() < TOL
        ours = _scores(engine, instruction)
        assert np.abs(ours - prompted).max() < TOL
        assert np.abs(ours - _scores(engine)).max() > 1e-4  # it reached the model
    finally:
        engine.close()


def test_a_template_without_a_system_message_takes_no_instruction(saved_engine):
    assert not saved_engine.profile.takes_instruction
    with pytest.raises(InvalidRequest):
        _scores(saved_engine, "anything")


def test_one_token_and_template_arguments_score_as_the_cross_encoder(weights, tmp_path):
    """One judged token's logit (a LogitScore without a false token) and the saved template
    arguments: the same raw scores as CrossEncoder.predict."""
    path = _saved(tmp_path, weights, judged=("1", None),
                  chat_kwargs={"add_generation_prompt": True})
    engine = _engine(path)
    try:
        assert engine.describe()["profile"] == profiles.CHAT_TEMPLATE
        saved_ids = json.loads((path / "1_LogitScore" / "config.json").read_text())
        assert engine.prompts.judged == [saved_ids["true_token_id"]]
        assert saved_ids["false_token_id"] is None
        assert "<|im_start|>assistant" in "".join(engine.profile.suffix)
        ours = np.array(engine.score(CAPITAL_QUERY, DOCS, raw=True))
        assert np.abs(ours - _reference(path)).max() < TOL
    finally:
        engine.close()


def test_a_saved_qwen3_reranker_keeps_its_family(weights, tmp_path):
    """Saved with the card's prompt as its template and yes/no: the same prompt as the
    qwen3-reranker profile, which stays (it takes instructions) and scores as CrossEncoder."""
    path = _saved(tmp_path, weights, judged=("yes", "no"),
                  template=llm.QWEN3_RERANKER_CHAT_TEMPLATE)
    engine = _engine(path)
    try:
        assert engine.describe()["profile"] == "qwen3-reranker"
        ours = np.array(engine.score(CAPITAL_QUERY, DOCS, raw=True))
        assert np.abs(ours - _reference(path)).max() < TOL
        engine.rerank(RerankRequest("cohere", [(CAPITAL_QUERY, "x")], ["x"],
                                    instruction="find capitals"))
    finally:
        engine.close()
    # Its saved max_length still caps the family's prompt, as CrossEncoder cuts at it.
    _edit(path, "sentence_bert_config.json", lambda c: c.update(processing_kwargs={
        "text": {"max_length": 120, "truncation": True}}))
    engine = _engine(path)
    try:
        assert (engine.describe()["profile"], engine.max_length) == ("qwen3-reranker", 120)
    finally:
        engine.close()


def test_its_own_template_without_a_saved_configuration_wins_over_the_family(weights, tmp_path):
    """No modules.json: sentence-transformers' default (the chat template, yes/no), which
    the engine follows too rather than the family's prompt."""
    path = tmp_path / "unsaved"
    shutil.copytree(weights, path)
    (path / "chat_template.jinja").write_text(llm.FINE_TUNE_CHAT_TEMPLATE)
    engine = _engine(path)
    try:
        assert engine.describe()["profile"] == profiles.CHAT_TEMPLATE
        ours = np.array(engine.score(CAPITAL_QUERY, DOCS, raw=True))
        assert np.abs(ours - _reference(path)).max() < TOL
    finally:
        engine.close()


@pytest.fixture(scope="module")
def saved(saved_as) -> Path:
    """A fine-tune with JUDGE_CHAT_TEMPLATE (no system message), judging 1/0."""
    return saved_as(llm.JUDGE_CHAT_TEMPLATE)


@pytest.fixture(scope="module")
def saved_engine(saved):
    """An engine on ``saved``, loaded once for the tests that only score through it."""
    engine = _engine(saved)
    yield engine
    engine.close()


def _copy(saved: Path, tmp_path: Path) -> Path:
    path = tmp_path / "copy"
    shutil.copytree(saved, path)
    return path


def _edit(path: Path, name: str, change) -> None:
    data = json.loads((path / name).read_text())
    change(data)
    (path / name).write_text(json.dumps(data))


@pytest.mark.parametrize("name, change, says", [
    ("modules.json", lambda m: m.append({"idx": 2, "name": "2", "path": "2_Dense",
                                         "type": "sentence_transformers.base.modules.Dense"}),
     "Transformer followed by a LogitScore"),
    ("sentence_bert_config.json", lambda c: c["modality_config"].pop("message"),
     "plain text"),
    ("sentence_bert_config.json", lambda c: c.update(query_expansion={"tokens": 8}),
     "query_expansion"),
    ("sentence_bert_config.json",
     lambda c: c.update(processing_kwargs={"text": {"add_special_tokens": True}}),
     "processing_kwargs.text.add_special_tokens"),
    ("1_LogitScore/config.json", lambda c: c.update(module_input_name="other"),
     "does not write"),
    ("config_sentence_transformers.json", lambda c: c.update(default_prompt_name="missing"),
     "names no prompt"),
], ids=["extra-module", "no-chat-template-modality", "query-expansion", "text-kwargs",
        "unwired-input", "missing-prompt"])
def test_what_the_engine_does_not_reproduce_is_refused(saved, tmp_path, name, change, says):
    path = _copy(saved, tmp_path)
    _edit(path, name, change)
    with pytest.raises(ModelLoadError, match=says):
        _engine(path)


def test_a_saved_max_length_cuts_the_document_as_cross_encoder_does(saved, tmp_path):
    """Length and padding settings are read, not refused: a saved max_length caps the prompt
    as CrossEncoder cuts it (the document only, the template's end kept)."""
    path = _copy(saved, tmp_path)
    _edit(path, "sentence_bert_config.json", lambda c: c.update(processing_kwargs={
        "text": {"max_length": 96, "truncation": True}}))
    docs = [*DOCS, "washington is the capital " * 100]
    engine = _engine(path)
    try:
        assert engine.max_length == 96
        ours = np.array(engine.score(CAPITAL_QUERY, docs, raw=True))
    finally:
        engine.close()
    from sentence_transformers import CrossEncoder

    reference = CrossEncoder(str(path), device="cpu").predict(
        [(CAPITAL_QUERY, d) for d in docs], activation_fn=torch.nn.Identity())
    assert np.abs(ours - reference).max() < TOL


# The question comes after the document, before the turn ends: a cut must keep it.
QUESTION_AFTER_DOCUMENT = llm.FINE_TUNE_CHAT_TEMPLATE.replace(
    "first).content }}<|im_end|>", "first).content }}\nIs the passage relevant? Answer 1 or"
    " 0.<|im_end|>")


def test_a_cut_document_keeps_the_templates_text_after_it(weights, tmp_path):
    """CrossEncoder writes the template's tail back after cutting the document: the text
    between the document and the turn's end is part of it, in a cut row and in every window."""
    path = _saved(tmp_path, weights, template=QUESTION_AFTER_DOCUMENT)
    _edit(path, "sentence_bert_config.json", lambda c: c.update(processing_kwargs={
        "text": {"max_length": 96, "truncation": True}}))
    docs = [*DOCS, "washington is the capital " * 100]
    engine = _engine(path)
    try:
        ours = np.array(engine.score(CAPITAL_QUERY, docs, raw=True))
        for max_chunks in (0, 3):
            rows = engine.prompts.encode([(CAPITAL_QUERY, docs[-1])], max_chunks=max_chunks)
            for row in rows.groups[0].rows:
                text = engine.prompts._plain.decode(rows.groups[0].prefix + row,
                                                    skip_special_tokens=False)
                assert "\nIs the passage relevant? Answer 1 or 0.<|im_end|>" in text
                assert len(rows.groups[0].prefix) + len(row) == 96
    finally:
        engine.close()
    from sentence_transformers import CrossEncoder

    reference = CrossEncoder(str(path), device="cpu").predict(
        [(CAPITAL_QUERY, d) for d in docs], activation_fn=torch.nn.Identity())
    assert np.abs(ours - reference).max() < TOL


def test_padding_and_no_added_special_tokens_are_read_not_refused(saved, tmp_path):
    path = _copy(saved, tmp_path)
    _edit(path, "sentence_bert_config.json", lambda c: c.update(processing_kwargs={
        "common": {"padding": True, "padding_side": "left", "add_special_tokens": False},
        "text": {"max_length": 200}, "chat_template": {"max_length": 150}}))
    scoring = saved_cross_encoder.read(str(path))
    assert scoring.max_length == 150 and scoring.chat_kwargs == {}


_DOCUMENT = "{{ (messages | selectattr('role', 'eq', 'document') | first).content }}"
_QUERY = "{{ (messages | selectattr('role', 'eq', 'query') | first).content }}"
_SYSTEM = "{% for m in messages %}{% if m.role == 'system' %}{{ m.content }}{% endif %}{% endfor %}"
# Contextual AI's reranker v2 layout: the document, then the query with the instruction
# after it, and the logit of one token at the end.
DOCUMENT_THEN_QUERY = ("Check whether a given document contains information helpful to answer"
                       f" the query.\n<Document> {_DOCUMENT}\n<Query> {_QUERY}"
                       + _SYSTEM.replace("{{ m.content }}", " {{ m.content }}") + " ??")
# A chat layout with the system message, the document's turn, then the query's.
DOCUMENT_TURN_FIRST = (
    f"<|im_start|>system\n{_SYSTEM}<|im_end|>\n<|im_start|>user\n<Document>: {_DOCUMENT}"
    f"<|im_end|>\n<|im_start|>user\n<Query>: {_QUERY}<|im_end|>\n<|im_start|>assistant\n")
# Nothing before the document's line: no prefix to share.
OPENS_WITH_THE_DOCUMENT = f"<Document> {_DOCUMENT}\n<Query> {_QUERY} ??"


@pytest.mark.parametrize("template, judged", [
    (DOCUMENT_THEN_QUERY, ("!", None)),
    (DOCUMENT_TURN_FIRST, ("1", "0")),
    (OPENS_WITH_THE_DOCUMENT, ("1", "0")),
], ids=["query-line-after-the-document", "query-turn-after-the-document", "no-shared-head"])
def test_a_template_with_the_document_first_scores_as_the_cross_encoder(saved_as, template,
                                                                        judged):
    """The query after the document: the query is in each row's suffix, the shared prefix is
    the template's head (or nothing), and several queries in one request share it."""
    path = saved_as(template, judged)
    engine = _engine(path)
    try:
        assert engine.profile.query_after_document
        assert engine.describe()["profile"] == profiles.CHAT_TEMPLATE
        queries = [CAPITAL_QUERY, "which city is the capital of the united states?"]
        pairs = [(q, d) for q in queries for d in DOCS]
        from sentence_transformers import CrossEncoder

        reference = CrossEncoder(str(path), device="cpu")
        expected = reference.predict(pairs, activation_fn=torch.nn.Identity())
        got = engine.rerank(RerankRequest("cohere", pairs, [d for _, d in pairs])).raw
        assert np.abs(np.asarray(got) - expected).max() < TOL
        if template == OPENS_WITH_THE_DOCUMENT:
            assert not engine.profile.takes_instruction
            return
        instruction = "Prefer passages that name a city."
        expected = reference.predict(pairs, prompt=instruction,
                                     activation_fn=torch.nn.Identity())
        prompted = engine.rerank(RerankRequest("cohere", pairs, [d for _, d in pairs],
                                               instruction=instruction)).raw
        assert np.abs(np.asarray(prompted) - expected).max() < TOL
        assert np.abs(np.asarray(prompted) - np.asarray(got)).max() > 1e-4
    finally:
        engine.close()


def test_a_document_first_prompt_cuts_the_document_and_keeps_the_query(saved_as):
    path = saved_as(DOCUMENT_THEN_QUERY, ("!", None))
    engine = Reranker.from_dir(str(path), Settings(warmup=False, llm_max_length=64))
    try:
        rows = engine.prompts.encode([(CAPITAL_QUERY, "paris " * 200)])
        (row,) = rows.groups[0].rows
        assert len(rows.groups[0].prefix) + len(row) == 64
        tail = engine.prompts._plain.decode(row[-20:])
        assert tail.endswith(f"<Query> {CAPITAL_QUERY} ??")
    finally:
        engine.close()


def test_a_cut_document_keeps_the_template_between_it_and_the_query(saved_as):
    """The document's turn ends with template tokens (``<|im_end|>`` and the next turn's
    start): a cut or a window shortens the document, never them."""
    path = saved_as(DOCUMENT_TURN_FIRST)
    engine = Reranker.from_dir(str(path), Settings(warmup=False, llm_max_length=64))
    try:
        prompts = engine.prompts
        between = f"<|im_end|>\n<|im_start|>user\n<Query>: {CAPITAL_QUERY}<|im_end|>"
        for max_chunks in (0, 3):
            rows = prompts.encode([(CAPITAL_QUERY, "paris " * 200)], max_chunks=max_chunks)
            group = rows.groups[0]
            assert len(group.rows) == max(max_chunks, 1)
            for row in group.rows:
                assert len(group.prefix) + len(row) == 64
                text = prompts._plain.decode(group.prefix + row, skip_special_tokens=False)
                # (jinja drops the template's final newline, for the reference too)
                assert between in text and text.endswith("<|im_start|>assistant")
    finally:
        engine.close()


# One turn per message, each opened by its role's name on its own line (ChatML): the
# document starts right after a newline.  (The comment names the roles it renders.)
TURN_PER_MESSAGE = ("{# query, document #}{% for m in messages %}<|im_start|>{{ m.role }}\n"
                    "{{ m.content }}<|im_end|>\n{% endfor %}"
                    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")


def test_a_document_that_starts_with_whitespace_is_tokenized_as_the_reference_does(
        weights, tmp_path):
    """The prompt's newline and a document's leading newline or space are one token in the
    reference's tokens ("\n\n"): the document's piece starts at the turn's special token,
    so it is tokenized with them."""
    from sentence_transformers import CrossEncoder

    path = _saved(tmp_path, weights, template=TURN_PER_MESSAGE)
    docs = ["plain", "\nstarts with a newline", "\n\ntwo newlines", " \nspace, newline"]
    engine = _engine(path)
    try:
        ours = np.asarray(engine.score(CAPITAL_QUERY, docs, raw=True))
    finally:
        engine.close()
    reference = CrossEncoder(str(path), device="cpu").predict(
        [(CAPITAL_QUERY, d) for d in docs], activation_fn=torch.nn.Identity())
    assert np.abs(ours - np.asarray(reference)).max() < TOL


def test_a_template_that_ends_with_the_document_scores_an_empty_one(weights, tmp_path):
    """Nothing after the document: an empty document is judged at the prompt's last token,
    as CrossEncoder judges it, alone or beside others (no empty row reaches the model)."""
    from sentence_transformers import CrossEncoder

    # The document's line holds nothing else, and nothing follows it: an empty document's
    # row would be empty.
    template = f"<|im_start|>user\nQuery: {_QUERY}\n{_DOCUMENT}"
    path = _saved(tmp_path, weights, template=template)
    engine = _engine(path)
    try:
        rows = engine.prompts.encode([(CAPITAL_QUERY, "")]).groups
        assert [len(group.rows[0]) for group in rows] == [1]  # the prefix's last token
        ours = np.asarray(engine.score(CAPITAL_QUERY, ["a document", ""], raw=True))
        alone = engine.score(CAPITAL_QUERY, [""], raw=True)
    finally:
        engine.close()
    reference = np.asarray(CrossEncoder(str(path), device="cpu").predict(
        [(CAPITAL_QUERY, d) for d in ("a document", "")], activation_fn=torch.nn.Identity()))
    assert np.abs(ours - reference).max() < TOL
    assert abs(alone[0] - reference[1]) < TOL


@pytest.mark.parametrize("line", [f"Passage: {_DOCUMENT} Question: {_QUERY}",
                                  f"Question: {_QUERY} Passage: {_DOCUMENT}"],
                         ids=["document-first", "query-first"])
def test_a_query_on_the_documents_line_is_refused(saved, tmp_path, line):
    """Tokenized apart, a document and a query on one line would not be the reference's
    tokens: refused, not scored on the family's prompt either."""
    path = _copy(saved, tmp_path)
    (path / "chat_template.jinja").write_text(line)
    with pytest.raises(ModelLoadError, match="the query and the document on one line"):
        _engine(path)


def test_saved_ids_without_a_usable_template_are_refused(saved, tmp_path):
    """Its template gone, the Qwen3 family would prompt it, but judging "yes"/"no" where it
    was saved to judge "1"/"0": refused, not scored on the family's guess."""
    path = _copy(saved, tmp_path)
    (path / "chat_template.jinja").unlink()
    with pytest.raises(ModelLoadError, match="cannot rebuild its prompt"):
        _engine(path)


@pytest.fixture(scope="module")
def saved_classifier(model_dirs, tmp_path_factory) -> Path:
    """A BERT cross-encoder saved by sentence-transformers (modules.json: one Transformer)."""
    from sentence_transformers import CrossEncoder

    out = tmp_path_factory.mktemp("saved-classifier") / "model"
    CrossEncoder(str(model_dirs("bert")), device="cpu").save(str(out))
    return out


def test_a_cross_encoder_saved_by_sentence_transformers_scores_as_its_model(
        saved_classifier, model_dirs):
    """A sequence-classification CrossEncoder's configuration says nothing about prompts."""
    assert saved_cross_encoder.read(str(saved_classifier)) is None
    assert saved_cross_encoder.read(str(saved_classifier / "absent")) is None
    assert _scores_of(saved_classifier) == _scores_of(model_dirs("bert"))


@pytest.mark.parametrize("name, change, says", [
    ("modules.json", lambda m: m.append({"idx": 1, "name": "1", "path": "1_Dense",
                                         "type": "sentence_transformers.base.modules.Dense"}),
     "classification head alone"),
    ("config_sentence_transformers.json",
     lambda c: c.update(prompts={"q": "query: "}, default_prompt_name="q"),
     "default prompt"),
], ids=["extra-module", "default-prompt"])
def test_a_cross_encoder_with_more_than_its_head_is_refused(saved_classifier, tmp_path, name,
                                                            change, says):
    path = _copy(saved_classifier, tmp_path)
    _edit(path, name, change)
    with pytest.raises(ModelLoadError, match=says):
        _engine(path)


def test_packaging_carries_the_saved_configuration(saved, saved_engine, tmp_path, capsys):
    """The archive keeps what scoring reads (modules.json, the LogitScore folder's config,
    the template), says which prompt it scores, and the model scores from it as from the
    saved directory."""
    from deploy.__main__ import main
    from deploy.package import archive

    out = tmp_path / "model.tar.gz"
    assert main(["package", str(saved), "-o", str(out)]) == 0
    assert "prompt      chat-template, as sentence-transformers' CrossEncoder" in (
        capsys.readouterr().out)
    names = {name for name, _ in archive.list_names(out)}
    assert {"modules.json", "sentence_bert_config.json", "config_sentence_transformers.json",
            "1_LogitScore/config.json", "chat_template.jinja"} <= names
    unpacked = tmp_path / "unpacked"
    archive.safe_extract(out, unpacked)
    assert _scores_of(unpacked) == saved_engine.score(CAPITAL_QUERY, DOCS, raw=True)


def test_packaging_refuses_what_the_engine_does_not_reproduce(saved, tmp_path, capsys):
    from deploy.__main__ import main

    path = _copy(saved, tmp_path)
    _edit(path, "sentence_bert_config.json", lambda c: c.update(query_expansion={"n": 8}))
    assert main(["package", str(path), "-o", str(tmp_path / "x.tar.gz")]) == 2
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(lines) == 1 and "query_expansion" in lines[0], lines
    assert not (tmp_path / "x.tar.gz").exists()


@pytest.mark.parametrize("template, profile", [
    (llm.JUDGE_CHAT_TEMPLATE, profiles.CHAT_TEMPLATE),  # its own prompt
    (llm.QWEN3_RERANKER_CHAT_TEMPLATE, "qwen3-reranker-seq-cls"),  # the card's, as a template
], ids=["own-prompt", "card-prompt"])
def test_a_converted_checkpoint_is_prompted_by_its_own_template(llm_dirs, tmp_path, template,
                                                                profile):
    """A *-seq-cls conversion whose tokenizer carries a chat template: sentence-transformers
    renders it and reads the one-label head, and so does the engine (the family's profile
    where the template is the card's prompt)."""
    path = tmp_path / "seq-cls"
    shutil.copytree(llm_dirs("qwen3-seq-cls"), path)
    tokenizer = transformers.AutoTokenizer.from_pretrained(path)
    tokenizer.chat_template = template
    tokenizer.save_pretrained(path)
    engine = _engine(path)
    try:
        assert engine.describe()["profile"] == profile
        assert engine.profile.head == "seq-cls"
        ours = np.array(engine.score(CAPITAL_QUERY, DOCS, raw=True))
        assert np.abs(ours - _reference(path)).max() < TOL
    finally:
        engine.close()


def test_a_tokenizer_that_marks_where_each_piece_starts_is_refused(tmp_path):
    """SentencePiece's Metaspace (Mistral, Llama 2, Gemma) puts "▁" at the start of each
    text it is given: the engine's pieces, tokenized apart, would not be CrossEncoder's
    whole prompt, so such a chat template is refused rather than scored differently."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tokenizer = Tokenizer(models.BPE(unk_token="<unk>"))
    tokenizer.pre_tokenizer = pre_tokenizers.Metaspace(prepend_scheme="first")
    tokenizer.decoder = decoders.Metaspace(prepend_scheme="first")
    texts = ["Rate 1 or 0.", "Query: what is the capital of france?", "yes no",
             "Passage: Paris is the capital and largest city of France.", "user"] * 10
    tokenizer.train_from_iterator(texts, trainers.BpeTrainer(
        vocab_size=300, special_tokens=["<unk>", "<|im_start|>", "<|im_end|>"]))
    fast = PreTrainedTokenizerFast(tokenizer_object=tokenizer, unk_token="<unk>",
                                   additional_special_tokens=["<|im_start|>", "<|im_end|>"])
    fast.chat_template = llm.FINE_TUNE_CHAT_TEMPLATE
    with pytest.raises(ModelLoadError, match="does not split the chat template's pieces"):
        profiles.recognise({"architectures": ["MistralForCausalLM"], "model_type": "mistral"},
                           fast, str(tmp_path))
