"""Bad input on the newer input paths: LangChain's text_pairs, curl's form-typed body and
application/jsonlines.  Named cases check the status and field; hypothesis (with the
strategies of test_errors.py) checks that nothing else than a result or a typed 4xx comes
out, and that a jsonlines body always answers one line per line."""

from __future__ import annotations

import contextlib
import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reranker.engine import Reranker
from reranker.errors import PayloadTooLarge, RerankError
from reranker.settings import Settings
from test_errors import assert_typed_4xx_or_json, json_bodies, json_values, run_hooks

JSON, FORM, JSONL = "application/json", "application/x-www-form-urlencoded", "application/jsonlines"
FIXTURE_OK = [HealthCheck.function_scoped_fixture]

CASES = [
    # (body, content type, status, field)
    (b'{"text_pairs": []}', JSON, 422, "text_pairs"),
    (b'{"text_pairs": "q, d"}', JSON, 422, "text_pairs"),
    (b'{"text_pairs": null}', JSON, 422, "text_pairs"),
    (b'{"text_pairs": [["q"]]}', JSON, 422, "text_pairs[0]"),
    (b'{"text_pairs": [["q", "d", "e"]]}', JSON, 422, "text_pairs[0]"),
    (b'{"text_pairs": [{"query": "q", "text": "d"}]}', JSON, 422, "text_pairs[0]"),
    (b'{"text_pairs": [["q", "d"], "qd"]}', JSON, 422, "text_pairs[1]"),
    (b'{"text_pairs": [[1, "d"]]}', JSON, 422, "text_pairs[0][0]"),
    (b'{"text_pairs": [["", "d"]]}', JSON, 422, "text_pairs[0][0]"),
    (b'{"text_pairs": [["q", null]]}', JSON, 422, "text_pairs[0][1]"),
    (b'{"text_pairs": [["q", "d"]], "raw_scores": "yes"}', JSON, 422, "raw_scores"),
    (json.dumps({"text_pairs": [["q", "d"]] * 6}).encode(), JSON, 413, "text_pairs"),
    (b"query=q&documents=a", FORM, 415, "Content-Type"),
    (b'["q", "a"]', FORM, 415, "Content-Type"),
    (b"{", FORM, 415, "Content-Type"),
    (b"", FORM, 415, "Content-Type"),
    (b'{"query": "", "documents": ["a"]}', FORM, 422, "query"),
    (b"", JSONL, 400, "body"),
]


@pytest.fixture(scope="module")
def small_engine(bert_dir):  # test_errors.py's limits: 5 documents, 1,000 characters
    with contextlib.closing(Reranker.from_dir(str(bert_dir), Settings(max_documents=5,
                                                                      max_chars=1000))) as e:
        yield e


@pytest.mark.parametrize("body,content_type,status,field", CASES)
def test_bad_input_is_a_typed_error(small_engine, body, content_type, status, field):
    with pytest.raises(RerankError) as info:
        run_hooks(small_engine, body, content_type)
    assert (info.value.status, info.value.field) == (status, field)
    assert json.loads(str(info.value))["error"]["message"]


pairs = st.lists(st.one_of(st.lists(json_values, max_size=3),
                           st.tuples(st.text(max_size=6), st.text(max_size=6)).map(list),
                           json_values), max_size=4)


@settings(max_examples=150, deadline=None, suppress_health_check=FIXTURE_OK)
@given(text_pairs=st.one_of(pairs, json_values), raw=st.one_of(st.booleans(), json_values))
def test_fuzz_text_pairs(small_engine, text_pairs, raw):
    body = json.dumps({"text_pairs": text_pairs, "raw_scores": raw})
    assert_typed_4xx_or_json(lambda: run_hooks(small_engine, body, JSON))


@settings(max_examples=150, deadline=None, suppress_health_check=FIXTURE_OK)
@given(body=st.one_of(json_bodies, st.binary(max_size=64)))
def test_fuzz_form_typed_bodies(small_engine, body):
    assert_typed_4xx_or_json(lambda: run_hooks(small_engine, body, FORM))


@settings(max_examples=100, deadline=None, suppress_health_check=FIXTURE_OK)
@given(lines=st.lists(st.one_of(json_bodies, st.just(b'{"query": "q", "texts": ["a"]}'),
                                st.binary(max_size=16)), min_size=1, max_size=6))
def test_fuzz_jsonlines_answers_one_line_per_line(small_engine, lines):
    lines = [line.replace(b"\n", b" ") for line in lines]  # a newline would start a record
    body = b"\n".join(lines) + b"\n"
    try:
        out = run_hooks(small_engine, body, JSONL, JSONL).split(b"\n")
    except PayloadTooLarge as exc:  # the lines' documents together pass the engine's limit
        assert exc.field == "body" and len(lines) > 1
        return
    assert len(out) == len(lines)
    for answer in map(json.loads, out):
        if isinstance(answer, dict) and "error" in answer:
            assert answer["error"]["type"] and answer["error"]["message"]
