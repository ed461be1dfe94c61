"""Bad input gives a typed error with the right status and a JSON body naming the field."""

import json
import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import inference
from reranker.engine import Reranker
from reranker.errors import RerankError
from reranker.settings import Settings

GOOD = {"query": "q", "documents": ["a", "b"]}

CASES = [
    # (body bytes, content type, status, field)
    (b"{", "application/json", 400, "body"),
    (b"", "application/json", 400, "body"),
    (b"\xff\xfe", "application/json", 400, "body"),
    (b'{"query": NaN, "documents": ["a"]}', "application/json", 400, "body"),
    (b"[" * 100000, "application/json", 400, "body"),
    (json.dumps(GOOD).encode(), "text/csv", 415, "Content-Type"),
    (json.dumps(GOOD).encode(), "application/octet-stream", 415, "Content-Type"),
    (b"[]", "application/json", 422, "body"),
    (b'"just a string"', "application/json", 422, "body"),
    (b"null", "application/json", 422, "body"),
    (b'{"hello": "world"}', "application/json", 422, "body"),
    (b'{"documents": ["a"]}', "application/json", 422, "query"),
    (b'{"query": "", "documents": ["a"]}', "application/json", 422, "query"),
    (b'{"query": "   ", "documents": ["a"]}', "application/json", 422, "query"),
    (b'{"query": null, "documents": ["a"]}', "application/json", 422, "query"),
    (b'{"query": 5, "documents": ["a"]}', "application/json", 422, "query"),
    (b'{"query": "q"}', "application/json", 422, "documents"),
    (b'{"query": "q", "documents": []}', "application/json", 422, "documents"),
    (b'{"query": "q", "documents": null}', "application/json", 422, "documents"),
    (b'{"query": "q", "documents": "a"}', "application/json", 422, "documents"),
    (b'{"query": "q", "documents": ["a", 3]}', "application/json", 422, "documents[1]"),
    (b'{"query": "q", "documents": ["a", null]}', "application/json", 422, "documents[1]"),
    (b'{"query": "q", "documents": [{"title": "x"}]}', "application/json", 422,
     "documents[0].text"),
    (b'{"query": "q", "documents": [{"t": "x"}], "rank_fields": ["t", "u"]}', "application/json",
     422, "documents[0].u"),
    (b'{"query": "q", "documents": ["a"], "top_n": 0}', "application/json", 422, "top_n"),
    (b'{"query": "q", "documents": ["a"], "top_n": -3}', "application/json", 422, "top_n"),
    (b'{"query": "q", "documents": ["a"], "top_n": 1.5}', "application/json", 422, "top_n"),
    (b'{"query": "q", "documents": ["a"], "top_n": "2"}', "application/json", 422, "top_n"),
    (b'{"query": "q", "documents": ["a"], "top_n": true}', "application/json", 422, "top_n"),
    (b'{"query": "q", "documents": ["a"], "return_documents": "yes"}', "application/json", 422,
     "return_documents"),
    (b'{"query": "q", "documents": ["a"], "topk": 0}', "application/json", 422, "topk"),
    (b'{"query": "q", "documents": ["a"], "topk": null}', "application/json", 422, "topk"),
    (b'{"query": "q", "documents": [1], "topk": 1}', "application/json", 422, "documents[0]"),
    (b'{"query": "q", "texts": [1]}', "application/json", 422, "texts[0]"),
    (b'{"query": "q", "texts": ["a"], "truncation_direction": "up"}', "application/json", 422,
     "truncation_direction"),
    (b'{"query": "q", "texts": ["a"], "raw_scores": 1}', "application/json", 422, "raw_scores"),
    (b'{"inputs": "just text"}', "application/json", 422, "inputs"),
    (b'{"inputs": []}', "application/json", 422, "inputs"),
    (b'{"inputs": {"text": "a"}}', "application/json", 422, "inputs.text_pair"),
    (b'{"inputs": [{"text": "a", "text_pair": 2}]}', "application/json", 422,
     "inputs[0].text_pair"),
    (b'{"inputs": {"text": "a", "text_pair": "b"}, "parameters": {"function_to_apply": "x"}}',
     "application/json", 422, "parameters.function_to_apply"),
    (b'{"inputs": {"text": "a", "text_pair": "b"}, "parameters": []}', "application/json", 422,
     "parameters"),
    (b'{"query": "q", "documents": ["a"], "long_documents": "split"}', "application/json", 422,
     "long_documents"),
    # Python's json accepts these; nothing after it could render or score them.
    (b'{"query": "q", "documents": ["a"], "top_n": Infinity}', "application/json", 400, "body"),
    (b'{"query": "q", "documents": ["a"], "top_n": -Infinity}', "application/json", 400, "body"),
    (b'{"query": "q", "documents": [{"text": "a", "x": 1e400}], "return_documents": true}',
     "application/json", 400, "body"),
    (b'{"query": "q", "documents": ["a"], "top_n": 1' + b"0" * 5000 + b"}", "application/json",
     400, "body"),
    (b'{"query": "q", "query": "r", "documents": ["a"]}', "application/json", 400, "query"),
    (b'{"query": "q", "documents": [{"text": "a", "x": ' + b"[" * 80 + b"]" * 80 + b"}]}",
     "application/json", 400, "body"),
    (b'{"query": "\xed\xa0\x80", "documents": ["a"]}', "application/json", 400, "body"),
    (b'{"query": "\xc3\x28", "documents": ["a"]}', "application/json", 400, "body"),
]


@pytest.fixture(scope="module")
def small_engine(bert_dir):
    engine = Reranker.from_dir(str(bert_dir), Settings(max_documents=5, max_chars=1000))
    yield engine
    engine.close()


def run_hooks(engine, body, content_type, accept="application/json"):
    request = inference.input_fn(body, content_type)
    return inference.output_fn(inference.predict_fn(request, engine), accept)


@pytest.mark.parametrize("body,content_type,status,field", CASES)
def test_bad_input_is_a_typed_error(small_engine, body, content_type, status, field):
    with pytest.raises(RerankError) as info:
        run_hooks(small_engine, body, content_type)
    error = info.value
    assert error.status == status
    payload = json.loads(str(error))  # what the DLC returns as the 400 body
    assert payload["error"]["field"] == field
    assert payload["error"]["type"] and payload["error"]["message"]


def test_too_many_documents_is_413(small_engine):
    with pytest.raises(RerankError) as info:
        run_hooks(small_engine, json.dumps({"query": "q", "documents": ["a"] * 6}), None)
    assert info.value.status == 413 and info.value.field == "documents"


def test_very_long_strings_are_413_or_truncated(small_engine):
    with pytest.raises(RerankError) as info:
        run_hooks(small_engine, json.dumps({"query": "q", "documents": ["x" * 1001]}), None)
    assert info.value.status == 413
    ok = run_hooks(small_engine, json.dumps({"query": "q " * 400, "documents": ["y " * 450]}),
                   None)
    assert json.loads(ok)["results"][0]["index"] == 0


def test_tei_truncate_false_refuses_long_pairs(small_engine):
    body = json.dumps({"query": "q", "texts": ["." * 990], "truncate": False})
    with pytest.raises(RerankError) as info:
        run_hooks(small_engine, body, "application/json")
    assert info.value.status == 413 and info.value.field == "texts[0]"


def test_unacceptable_accept_header(small_engine):
    with pytest.raises(RerankError) as info:
        run_hooks(small_engine, json.dumps(GOOD), "application/json", accept="text/csv")
    assert info.value.status == 406
    assert run_hooks(small_engine, json.dumps(GOOD), "application/json", accept="*/*")


def test_missing_content_type_is_read_as_json(small_engine):
    assert json.loads(run_hooks(small_engine, json.dumps(GOOD), None))["results"]


@pytest.mark.parametrize("text", ["🐼" * 50, "\u0000\u0001\u001f", "\ud800".encode(
    "utf-8", "surrogatepass").decode("utf-8", "replace"), "a\u200bb", "مرحبا", "  leading"])
def test_any_unicode_scores(small_engine, text):
    out = json.loads(run_hooks(small_engine, json.dumps({"query": text, "documents": [text]}),
                               "application/json"))
    assert 0 <= out["results"][0]["relevance_score"] <= 1


scalars = (st.none() | st.booleans() | st.integers(-5, 5) | st.floats(allow_nan=False)
           | st.text(max_size=8))
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(
        st.sampled_from(["query", "documents", "texts", "topk", "top_n", "inputs", "text",
                         "text_pair", "parameters", "rank_fields", "return_documents",
                         "raw_scores", "truncate", "long_documents", "x"]), inner, max_size=5),
    max_leaves=12)


FIXTURE_OK = [HealthCheck.function_scoped_fixture]


@settings(max_examples=300, deadline=None, suppress_health_check=FIXTURE_OK)
@given(body=json_values)
def test_fuzz_random_json_gives_a_result_or_a_typed_error(small_engine, body):
    try:
        out = run_hooks(small_engine, json.dumps(body), "application/json")
    except RerankError as error:
        assert 400 <= error.status < 500
        assert json.loads(str(error))["error"]["message"]
    else:
        json.loads(out)


@settings(max_examples=150, deadline=None, suppress_health_check=FIXTURE_OK)
@given(data=st.binary(max_size=64))
def test_fuzz_random_bytes(small_engine, data):
    try:
        run_hooks(small_engine, data, "application/json")
    except RerankError as error:
        assert error.status in (400, 413, 422)


LONE = ["\\ud800", "\\udfff", "a\\udc00b", "\\ud83d", "\\ude00\\ud83d"]


@pytest.mark.parametrize("escape", LONE)
def test_lone_surrogates_score_as_the_replacement_character(small_engine, escape):
    """Valid JSON escapes no UTF-8 text can hold: scored as U+FFFD, as tokenizers read bad text."""
    text = re.sub("[\ud800-\udfff]", "\ufffd", json.loads(f'"{escape}"'))
    body = (f'{{"query": "q{escape}", "documents": ["{escape}", {{"text": "{escape}"}}],'
            ' "return_documents": true}').encode()
    out = json.loads(run_hooks(small_engine, body, "application/json"))
    expected = small_engine.score("q" + text, [text, text])
    by_index = {r["index"]: r for r in out["results"]}
    assert [by_index[i]["relevance_score"] for i in (0, 1)] == pytest.approx(expected, abs=1e-6)
    assert by_index[1]["document"] == {"text": text}


@pytest.mark.parametrize("escape", LONE[:2])
def test_lone_surrogates_in_every_dialect(small_engine, escape):
    for body in ('{"query": "%s", "texts": ["%s"], "return_text": true}',
                 '{"query": "%s", "documents": ["%s"], "topk": 1}',
                 '{"inputs": {"text": "%s", "text_pair": "%s"}}',
                 '{"text_1": "%s", "text_2": ["%s"]}',
                 '{"query": "%s", "input": "%s", "return_documents": true}'):
        json.loads(run_hooks(small_engine, (body % (escape, escape)).encode(), None))


def test_lone_surrogate_in_a_key_named_by_an_error(small_engine):
    body = b'{"query": "q", "documents": [{"t": "x"}], "rank_fields": ["\\ud800"]}'
    with pytest.raises(RerankError) as info:
        run_hooks(small_engine, body, "application/json")
    assert info.value.field == "documents[0].\ufffd"
    info.value.to_json().encode("utf-8")  # renderable as the response body


def test_a_byte_order_mark_is_ignored(small_engine):
    body = b"\xef\xbb\xbf" + json.dumps(GOOD).encode()
    assert json.loads(run_hooks(small_engine, body, "application/json"))["results"]


def test_nesting_up_to_the_limit_is_echoed(small_engine):
    deep = "[" * 60 + "]" * 60
    body = '{"query": "q", "documents": [{"text": "a", "x": %s}], "return_documents": true}'
    out = json.loads(run_hooks(small_engine, (body % deep).encode(), None))
    assert out["results"][0]["document"]["x"] == json.loads(deep)


# Hostile JSON *text*: every code point (lone surrogates as escapes or raw), the constants and
# numbers Python accepts but JSON does not, duplicate keys, deep nesting, an optional BOM.
KEYS = ["query", "documents", "texts", "topk", "top_n", "inputs", "text", "text_pair",
        "parameters", "rank_fields", "return_documents", "return_text", "raw_scores",
        "text_1", "text_2", "queries", "items", "truncate_prompt_tokens", "use_activation",
        "input", "task_settings", "instruction", "x"]
any_char = st.characters(codec=None, categories=None)
json_strings = st.one_of(
    st.text(any_char, max_size=6).map(json.dumps),
    st.text(any_char, max_size=6).map(lambda s: json.dumps(s, ensure_ascii=False)),
    st.integers(0xD800, 0xDFFF).map(lambda c: f'"a\\u{c:04x}"'),
)
json_scalars = st.one_of(
    json_strings, st.sampled_from(["null", "true", "false", "NaN", "Infinity", "-Infinity",
                                   "1e400", "-1e999", "0", "-0", "2.5", "3.0", "1" * 4400]),
    st.integers().map(str), st.integers(40, 80).map(lambda n: "[" * n + "]" * n))
json_texts = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=4).map(lambda xs: "[" + ",".join(xs) + "]")
    | st.lists(st.tuples(st.sampled_from(KEYS), inner), max_size=5).map(
        lambda kv: "{" + ",".join(f'"{k}":{v}' for k, v in kv) + "}"),
    max_leaves=12)
json_bodies = st.tuples(st.booleans(), json_texts, st.booleans()).map(
    lambda t: ("\ufeff" if t[0] else "") + t[1]).map(
    lambda text: text.encode("utf-8", "surrogatepass"))


def assert_typed_4xx_or_json(call):
    try:
        out = call()
    except RerankError as error:
        assert 400 <= error.status < 500, error
        assert json.loads(error.to_json().encode("utf-8"))["error"]["message"]
    else:
        json.loads(out)


@settings(max_examples=300, deadline=None, suppress_health_check=FIXTURE_OK)
@given(body=json_bodies)
def test_fuzz_hostile_json_text(small_engine, body):
    assert_typed_4xx_or_json(lambda: run_hooks(small_engine, body, "application/json"))


@settings(max_examples=100, deadline=None, suppress_health_check=FIXTURE_OK)
@given(first=json_bodies, second=json_bodies)
def test_fuzz_hostile_json_lines(small_engine, first, second):
    body = first + b"\n" + second
    try:
        out = run_hooks(small_engine, body, "application/jsonlines")
    except RerankError as error:
        assert 400 <= error.status < 500, error
        json.loads(error.to_json().encode("utf-8"))
    else:
        for line in out.decode("utf-8").splitlines():
            json.loads(line)


class StatusContext:
    """What the hooks use of multi-model-server's context (mms.context.Context): a status
    per request.  The DLC parity test runs the real one; this covers the branches it
    cannot reach (a failure no client causes)."""

    def __init__(self):
        self.statuses = []

    def set_response_status(self, code=200, phrase="", idx=0):
        self.statuses.append((code, phrase))


def test_on_the_model_server_errors_are_answered_with_their_status(bert_engine, monkeypatch):
    context = StatusContext()
    body = json.dumps({"query": "q", "documents": ["a"], "top_n": 0}).encode()
    request = inference.input_fn(body, "application/json", context)
    answer = inference.output_fn(inference.predict_fn(request, bert_engine, context),
                                 "application/json", context)
    assert [code for code, _ in context.statuses] == [422]
    assert json.loads(answer)["error"]["field"] == "top_n"

    def broken(*_, **__):
        raise RuntimeError("CUDA error: an illegal memory access was encountered")

    monkeypatch.setattr(bert_engine, "rerank", broken)
    request = inference.input_fn(json.dumps(GOOD).encode(), "application/json", context)
    answer = inference.output_fn(inference.predict_fn(request, bert_engine, context),
                                 "application/json", context)
    assert context.statuses[-1][0] == 500
    assert json.loads(answer)["error"]["type"] == "internal_error"
    with pytest.raises(RuntimeError):  # elsewhere (our server) it is raised, as before
        inference.predict_fn(request, bert_engine)
    from reranker import refusals

    refusals._answer(context, 499, {})  # a status the standard library does not name
    assert context.statuses[-1] == (499, "")


def test_on_the_model_server_a_failed_load_is_a_503_until_it_loads(bert_dir, tmp_path,
                                                                    monkeypatch):
    """The DLC's model server keeps serving after model_fn fails (and the toolkit would load
    again on every request): each request is told why at once, 503.  A model the engine
    refuses stays refused; a passing failure is loaded again in the background and then
    serves.  Elsewhere the failure is raised (our server stops)."""
    import shutil
    import time

    from reranker import refusals, replicas
    from reranker.backends.base import ModelLoadError

    folder = tmp_path / "model"
    folder.mkdir()
    with pytest.raises(ModelLoadError):
        inference.model_fn(str(folder))
    context = StatusContext()
    body = json.dumps(GOOD).encode()

    def ask(model):
        request = inference.input_fn(body, "application/json", context)
        return json.loads(inference.output_fn(inference.predict_fn(request, model, context),
                                              "application/json", context))

    monkeypatch.setattr(refusals, "RELOAD_SECONDS", 0.0)
    refused = inference.model_fn(str(folder), context)
    answer = ask(refused)
    assert context.statuses[-1][0] == 503
    assert answer["error"]["type"] == "model_load_failed" and "config.json" in str(answer)
    assert "again" not in answer["error"]["message"]
    shutil.copytree(bert_dir, folder, dirs_exist_ok=True)
    assert ask(refused)["error"]["type"] == "model_load_failed"  # refused stays refused

    real, calls = replicas.load, []

    def flaky(*args, **kwargs):
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("CUDA out of memory")
        return real(*args, **kwargs)

    monkeypatch.setattr(replicas, "load", flaky)
    model = inference.model_fn(str(folder), context)
    assert "loaded again" in ask(model)["error"]["message"]  # and a reload has started
    deadline = time.monotonic() + 60
    while "error" in (answer := ask(model)) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert sorted(r["index"] for r in answer["results"]) == [0, 1]
    model._model.close()
