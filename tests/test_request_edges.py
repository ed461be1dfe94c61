"""Edges of request handling an audit found: JSON lines bodies that amplify, options some
dialects ignored, errors naming the wrong or a partial field, Accept's q-values, charsets,
loose types in the score dialect, and hooks called with what a server may really pass.
Each must answer a typed 4xx naming its field (or be served), never a raw Python error."""

from __future__ import annotations

import json
import re

import pytest

import inference
from reranker import dialects
from reranker.engine import Reranker
from reranker.errors import RerankError
from reranker.settings import Settings
from serving.hooks import Hooks

JSONL = "application/jsonlines"
GOOD = {"query": "q", "documents": ["a", "b"]}
LONG_DOC = "filler words " * 400 + " the capital of the united states is washington"


@pytest.fixture(scope="module")
def engine(bert_dir):
    engine = Reranker.from_dir(str(bert_dir), Settings(max_documents=5, max_chars=1000,
                                                       warmup=False))
    yield engine
    engine.close()


@pytest.fixture(scope="module")
def qwen3(qwen3_engine):
    return qwen3_engine


def hooks(engine, body, content_type="application/json", accept="application/json",
          context=None):
    request = inference.input_fn(body, content_type, context)
    return inference.output_fn(inference.predict_fn(request, engine), accept)


def refused(call) -> RerankError:
    with pytest.raises(RerankError) as caught:
        call()
    error = caught.value
    assert 400 <= error.status < 500 and json.loads(str(error))["error"]["message"]
    return error


# --- 1. JSON lines bodies are bounded by their lines, not only their documents ----------------

@pytest.mark.parametrize("line", [b"1\n", b"\n", b"{}\n"], ids=["number", "blank", "object"])
def test_many_bad_lines_are_one_413_before_any_is_parsed(engine, monkeypatch, line):
    parsed = []
    monkeypatch.setattr(dialects, "_parse_one", lambda *args: parsed.append(args))
    error = refused(lambda: hooks(engine, line * 6, JSONL, JSONL))
    assert (error.status, error.field) == (413, "body") and not parsed
    assert "RERANK_MAX_DOCUMENTS" in error.message


def test_bad_lines_count_with_the_good_lines_documents(engine):
    body = b"\n".join([json.dumps({"query": "q", "texts": ["a"] * 4}).encode(), b"[1]", b"2"])
    assert refused(lambda: hooks(engine, body, JSONL, JSONL)).status == 413
    body = b"\n".join([json.dumps({"query": "q", "texts": ["a"] * 4}).encode(), b"2"]) + b"\n"
    out = hooks(engine, body, JSONL, JSONL).split(b"\n")
    assert len(out[0]) and json.loads(out[1])["error"]["line"] == 2


def test_error_lines_are_short_and_carry_no_format_hint(engine):
    out = hooks(engine, b"1\n[]\n{}\n\n{\n", JSONL, JSONL).split(b"\n")
    assert len(out) == 5
    for n, line in enumerate(out, 1):
        error = json.loads(line)["error"]
        assert error["line"] == n and len(line) < 200, line
        assert "Cohere" not in error["message"]
    assert "Cohere" in str(refused(lambda: hooks(engine, b"{}")))  # one body: the whole hint


# --- 2. long documents in every dialect -------------------------------------------------------

CHUNKED = [
    {"text_1": "q", "text_2": ["a"], "long_documents": "chunk"},
    {"query": "q", "input": ["a"], "long_documents": "chunk"},
    {"inputs": {"text": "q", "text_pair": "a"}, "long_documents": "chunk"},
    {"text_1": "q", "text_2": "a", "max_chunks_per_doc": 3},
    {"query": "q", "input": "a", "max_chunks_per_doc": 3},
    {"inputs": [{"text": "q", "text_pair": "a"}], "max_chunks_per_doc": 3},
]


@pytest.mark.parametrize("body", CHUNKED, ids=lambda b: next(iter(b)) + "-" + list(b)[-1])
def test_long_documents_is_read_by_every_dialect(body):
    request = dialects.parse(json.dumps(body), "application/json")
    assert request.long_documents == "chunk"
    assert request.max_chunks == body.get("max_chunks_per_doc")


@pytest.mark.parametrize("dialect,body", [
    ("score", {"text_1": "capital of the united states", "text_2": [LONG_DOC]}),
    ("elastic", {"query": "capital of the united states", "input": [LONG_DOC]}),
    ("pipeline", {"inputs": [{"text": "capital of the united states", "text_pair": LONG_DOC}]}),
])
def test_chunk_mode_scores_windows_in_every_dialect(bert_engine, dialect, body):
    rows = []

    class Rows:
        def tokenized(self, seconds, count, tokens):
            rows.append(count)

    bert_engine.observe(Rows())
    try:
        for mode in ("truncate", "chunk"):
            request = dialects.parse(json.dumps({**body, "long_documents": mode}), None)
            assert request.dialect == dialect
            bert_engine.rerank(request)
    finally:
        bert_engine.observe(None)
    assert rows[0] == 1 and rows[1] > 1  # the long document as several windows


# --- 3. an LLM reranker's errors name the instruction and the token cap -----------------------

def test_a_too_long_instruction_is_named(qwen3):
    body = {"query": "q", "documents": ["a"], "instruction": "x " * 50000}
    error = refused(lambda: hooks(qwen3, json.dumps(body)))
    assert (error.status, error.field) == (413, "instruction")
    body = {"query": "q", "input": ["a"], "task_settings": {"instruction": "x " * 50000}}
    assert refused(lambda: hooks(qwen3, json.dumps(body))).field == "task_settings.instruction"


def test_the_character_cap_applies_to_the_instruction_before_tokenizing(qwen3, monkeypatch):
    monkeypatch.setattr(qwen3.prompts, "encode", lambda *a, **k: pytest.fail("tokenized"))
    body = {"query": "q", "documents": ["a"], "instruction": "x" * 2_000_000}
    error = refused(lambda: hooks(qwen3, json.dumps(body)))
    assert (error.status, error.field) == (413, "instruction")
    assert "RERANK_MAX_CHARS" in error.message


def test_a_token_cap_below_the_prompt_is_a_422_naming_it(qwen3):
    body = {"text_1": "q", "text_2": "a", "truncate_prompt_tokens": 10}
    error = refused(lambda: hooks(qwen3, json.dumps(body)))
    assert (error.status, error.field) == (422, "truncate_prompt_tokens")
    least = int(re.search(r"at least (\d+)", error.message).group(1))
    out = json.loads(hooks(qwen3, json.dumps({**body, "truncate_prompt_tokens": least})))
    assert len(out["data"]) == 1


@pytest.mark.parametrize("body,field", [
    ({"query": "q " * 50000, "documents": ["a"]}, "query"),
    ({"text_1": "q " * 50000, "text_2": ["a", "b"]}, "text_1"),
    ({"queries": ["ok", "q " * 50000], "documents": ["a", "b"]}, "queries[1]"),
    ({"text_pairs": [["ok", "a"], ["q " * 50000, "b"]]}, "text_pairs[1][0]"),
    ({"inputs": [{"text": "ok", "text_pair": "a"}, {"text": "q " * 50000, "text_pair": "b"}]},
     "inputs[1].text"),
])
def test_a_long_query_is_named_by_its_own_field(qwen3, engine, body, field):
    """Leaving an LLM's prompt no room, or over the character cap (1000 in ``engine``):
    either way the error names the query as the client sent it."""
    assert refused(lambda: hooks(qwen3, json.dumps(body))).field == field
    error = refused(lambda: hooks(engine, json.dumps(body)))
    assert (error.status, error.field) == (413, field) and "RERANK_MAX_CHARS" in error.message


@pytest.mark.parametrize("body,field", [
    ({"query": "q", "documents": ["a", "d " * 600]}, "documents[1]"),
    ({"text_1": "q", "text_2": "d " * 600}, "text_2"),
    ({"text_1": "q", "text_2": ["a", "d " * 600]}, "text_2[1]"),
    ({"text_pairs": [["q", "a"], ["q", "d " * 600]]}, "text_pairs[1][1]"),
    ({"inputs": {"text": "q", "text_pair": "d " * 600}}, "inputs.text_pair"),
    ({"inputs": [{"text": "q", "text_pair": "a"}, {"text": "q", "text_pair": "d " * 600}]},
     "inputs[1].text_pair"),
])
def test_a_long_document_is_named_by_its_own_field(engine, body, field):
    """Over the character cap (1000 in ``engine``): the document as the client sent it."""
    error = refused(lambda: hooks(engine, json.dumps(body)))
    assert (error.status, error.field) == (413, field) and "RERANK_MAX_CHARS" in error.message


def test_truncate_false_in_chunk_mode_scores_the_windows(bert_engine, qwen3):
    """truncate=false refuses a pair the model would cut; chunk mode cuts none, it windows."""
    body = {"query": "q", "texts": ["a", "word " * 5000], "truncate": False}
    for reranker in (bert_engine, qwen3):
        assert refused(lambda r=reranker: hooks(r, json.dumps(body))).field == "texts[1]"
        out = json.loads(hooks(reranker, json.dumps({**body, "long_documents": "chunk"})))
        assert sorted(item["index"] for item in out) == [0, 1]


# --- 4. whole field paths ---------------------------------------------------------------------

@pytest.mark.parametrize("body,field", [
    ('{"inputs": {"text": "a", "text_pair": "b"}, "parameters": {"top_k": 0}}',
     "parameters.top_k"),
    ('{"inputs": {"text": "a", "text_pair": "b"}, "parameters": {"function_to_apply": 1}}',
     "parameters.function_to_apply"),
    ('{"query": "q", "documents": [{"text": "a", "text": "b"}]}', "documents[0].text"),
    ('{"inputs": [{"text": "a", "text_pair": "b"}, {"text": "a", "text": "b"}]}',
     "inputs[1].text"),
    ('{"query": "q", "input": "a", "task_settings": {"x": {"y": [1, {"k": 1, "k": 2}]}}}',
     "task_settings.x.y[1].k"),
    ('{"query": "q", "query": "r", "documents": ["a"]}', "query"),
])
def test_errors_name_the_whole_path(engine, body, field):
    assert refused(lambda: hooks(engine, body)).field == field


# --- 5. Accept ---------------------------------------------------------------------------------

@pytest.mark.parametrize("accept", ["application/json;q=0, text/html", "application/json;q=0",
                                    "text/html, application/jsonlines;q=0.000"])
def test_q_zero_is_not_acceptable(engine, accept):
    error = refused(lambda: hooks(engine, json.dumps(GOOD), accept=accept))
    assert (error.status, error.field) == (406, "Accept")


@pytest.mark.parametrize("accept", ["application/json;q=0.1, text/html", "text/html, */*;q=0.1",
                                    "application/*;q=0.5", "APPLICATION/JSON;Q=1",
                                    "application/jsonlines", "application/json;q=bad"])
def test_acceptable_with_q(engine, accept):
    assert json.loads(hooks(engine, json.dumps(GOOD), accept=accept))["results"]


def test_a_jsonlines_body_is_answered_in_jsonlines_under_accept_json(engine):
    """The DLC turns a missing Accept into application/json: a JSON lines body keeps its
    answer in kind, one line per line (what Batch Transform writes back)."""
    body = (json.dumps(GOOD) + "\n" + json.dumps(GOOD) + "\n").encode()
    request = inference.input_fn(body, JSONL)
    result = inference.predict_fn(request, engine)
    out = inference.output_fn(result, "application/json")
    assert result.content_type == JSONL and len(out.split(b"\n")) == 2


def test_the_server_door_refuses_accept_before_any_work(engine):
    def predict_fn(data, model):
        pytest.fail("scored before Accept was checked")
    door = Hooks({"model_fn": inference.model_fn, "input_fn": inference.input_fn,
                  "predict_fn": predict_fn, "output_fn": inference.output_fn}, {})
    with pytest.raises(RerankError) as caught:
        door.invoke(engine, json.dumps(GOOD).encode(), "application/json",
                    "application/json;q=0, text/html", None)
    assert caught.value.status == 406


@pytest.mark.parametrize("body, field", [
    ({"query": "q", "documents": [""] * 4}, "documents"),
    ({"query": "q", "texts": [""] * 4}, "texts"),
    ({"query": "q", "documents": [""] * 4, "topk": 1}, "documents"),
    ({"text_pairs": [["q", ""]] * 4}, "text_pairs"),
    ({"text_1": "q", "text_2": [""] * 4}, "text_2"),
    ({"query": "q", "input": [""] * 4}, "input"),
    ({"inputs": [{"text": "q", "text_pair": ""}] * 4}, "inputs"),
])
def test_too_many_documents_are_refused_before_any_pair_is_made(monkeypatch, body, field):
    """Every dialect holds its arrays to RERANK_MAX_DOCUMENTS while parsing: millions of
    empty strings fit in a few kilobytes of gzip."""
    monkeypatch.setenv("RERANK_MAX_DOCUMENTS", "3")
    with pytest.raises(RerankError) as caught:
        dialects.parse(json.dumps(body).encode(), "application/json")
    assert caught.value.status == 413 and caught.value.field == field
    assert "4 documents in one request; the limit is 3" in str(caught.value)


def test_work_nobody_waits_for_is_dropped_before_it_starts(engine):
    """A request whose client left while it queued for a thread is not parsed nor scored."""
    import threading

    from serving.hooks import RequestContext

    def refuse(*args):
        pytest.fail("worked for a client that is gone")
    door = Hooks({"model_fn": inference.model_fn, "input_fn": refuse, "predict_fn": refuse,
                  "output_fn": inference.output_fn}, {})
    gone = threading.Event()
    gone.set()
    with pytest.raises(RerankError) as caught:
        door.invoke(engine, json.dumps(GOOD).encode(), "application/json", None,
                    RequestContext({}, "model", cancel=gone))
    assert caught.value.status == 499


def test_a_custom_output_fn_keeps_its_own_accept(engine):
    def output_fn(prediction, accept):
        return b"csv"
    door = Hooks({"model_fn": inference.model_fn, "input_fn": inference.input_fn,
                  "predict_fn": inference.predict_fn, "output_fn": output_fn}, {})
    payload, _ = door.invoke(engine, json.dumps(GOOD).encode(), "application/json",
                             "text/csv", None)
    assert payload == b"csv"


# --- 6. charsets --------------------------------------------------------------------------------

@pytest.mark.parametrize("content_type", [
    "application/json; charset=latin-1", "application/json; charset=utf-16",
    "application/json;charset=ISO-8859-1", 'application/json; charset="us-ascii"',
    "application/jsonlines; charset=latin-1", "application/x-www-form-urlencoded; charset=cp1252",
])
def test_a_charset_other_than_utf8_is_415(engine, content_type):
    error = refused(lambda: hooks(engine, json.dumps(GOOD).encode(), content_type))
    assert (error.status, error.field) == (415, "Content-Type")


@pytest.mark.parametrize("content_type", [
    "application/json; charset=utf-8", "application/json; charset=UTF8",
    'application/json; charset="utf-8"', "application/json;CHARSET=Utf-8; x=y",
])
def test_utf8_in_any_spelling_is_served(engine, content_type):
    assert json.loads(hooks(engine, json.dumps(GOOD).encode(), content_type))["results"]


# --- 7. the score dialect's model and priority ------------------------------------------------

@pytest.mark.parametrize("extra,field", [
    ({"model": 5}, "model"), ({"model": ["m"]}, "model"), ({"priority": False}, "priority"),
    ({"priority": True}, "priority"), ({"priority": None}, "priority"),
    ({"priority": "0"}, "priority"), ({"priority": 1}, "priority"),
])
def test_score_refuses_loose_types(engine, extra, field):
    body = {"text_1": "q", "text_2": ["a"], **extra}
    error = refused(lambda: hooks(engine, json.dumps(body)))
    assert (error.status, error.field) == (422, field)


@pytest.mark.parametrize("extra", [{"model": None}, {"model": "m"}, {"priority": 0},
                                   {"priority": 0.0}])
def test_score_takes_what_vllm_takes(engine, extra):
    body = {"text_1": "q", "text_2": ["a"], **extra}
    assert json.loads(hooks(engine, json.dumps(body)))["data"]


# --- 8. hooks called with what a server or a Python caller may pass ----------------------------

@pytest.mark.parametrize("data", [None, {"query": "q"}, 5, ["a"]])
def test_input_fn_refuses_what_is_no_body(data):
    error = refused(lambda: inference.input_fn(data, "application/json"))
    assert (error.status, error.field) == (400, "body")


@pytest.mark.parametrize("wrap", [memoryview, bytearray])
def test_input_fn_reads_buffers(engine, wrap):
    assert json.loads(hooks(engine, wrap(json.dumps(GOOD).encode())))["results"]


def test_header_bytes_are_read_as_latin1(engine):
    out = hooks(engine, json.dumps(GOOD).encode(), b"application/json", b"application/json")
    assert json.loads(out)["results"]
    out = hooks(engine, json.dumps(GOOD).encode() + b"\n", bytearray(b"application/jsonlines"),
                memoryview(b"*/*"))
    assert json.loads(out)["results"]


class _Context:
    def __init__(self, headers: dict):
        self.request_processor = [self]
        self._headers = headers

    def get_request_properties(self):
        return self._headers


@pytest.mark.parametrize("headers", [
    {"X-Amzn-SageMaker-Custom-Attributes": b"dialect=\xff"},
    {b"x-amzn-sagemaker-custom-attributes": b"dialect=\xff\xfe"},
])
def test_a_custom_attribute_that_is_not_utf8_is_a_422(engine, headers):
    error = refused(lambda: hooks(engine, json.dumps(GOOD), context=_Context(headers)))
    assert (error.status, error.field) == (422, "dialect")
