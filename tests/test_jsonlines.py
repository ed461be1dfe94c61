"""application/jsonlines, the Batch Transform format: one request per line in any dialect,
one answer line per request line in order, a bad line answered by an error on its own line.

The server test streams a 10,000-line file through Batch Transform's split rules
(tests/batch_transform.py: SplitType=Line with MultiRecord up to MaxPayloadInMB) into our local
server, and reads the output as the job would write it; SingleRecord, one HTTP call per line,
sends the file's first 1,000 lines (every dialect, every kind of bad line).
"""

from __future__ import annotations

import json
from types import SimpleNamespace

import httpx
import pytest

import inference
from batch_transform import MB, RecordTooLarge, mini_batches, transform
from bench.local_server import start_server
from clientutil import local_engine
from deploy.sagemaker import modes
from reranker.errors import InvalidJSON
from suite_server import SUITE_ENV

LINES = 10_000
SINGLE_RECORD_LINES = 1_000  # one call per line: a prefix holds every dialect and bad line
MAX_DOCUMENTS = 16
MAX_PAYLOAD_MB = 1
TOPICS = ["the capital of the united states", "giant pandas in china", "batman movies",
          "harlem renaissance art", "carson city nevada", "greek food in astoria"]
JSONL = "application/jsonlines"
PER_REQUEST = {"id", "line"}


def request_line(i: int) -> tuple[bytes, str | None]:
    """Line i of the input file and the field its error names (None: a good line)."""
    bad = {17: (b'{"query": "q", "documents": [', "body"),
           50: (json.dumps({"query": "q", "documents": "one"}).encode(), "documents"),
           100: (json.dumps({"query": "q", "texts": ["d"] * (MAX_DOCUMENTS + 1)}).encode(),
                 "texts"),
           200: (b"", "body")}
    if i % 331 in bad:
        return bad[i % 331]
    query = f"query {i} on {TOPICS[i % len(TOPICS)]}"
    docs = [f"line {i} text {j}: {TOPICS[(i + j) % len(TOPICS)]}" for j in range(3)]
    bodies = [
        {"query": query, "documents": docs, "top_n": 2, "return_documents": True},
        {"query": query, "texts": docs, "return_text": True},
        {"query": query, "documents": docs, "topk": 1},
        {"inputs": [{"text": d, "text_pair": query} for d in docs]},
        {"text_pairs": [[query, d] for d in docs]},
        {"query": query, "documents": [{"text": d} for d in docs], "return_documents": True},
        {"query": query, "texts": docs, "raw_scores": True, "return_text": True},
    ]
    return json.dumps(bodies[i % len(bodies)], ensure_ascii=False).encode(), None


def write_input(path, lines: int = LINES) -> None:
    with open(path, "wb") as out:
        for i in range(lines):
            out.write(request_line(i)[0] + b"\n")


def check_line(i: int, answer: dict | list) -> None:
    """The answer on output line i belongs to input line i (texts echo the line number)."""
    _, error_field = request_line(i)
    if error_field is not None:
        assert answer["error"]["field"] == error_field and answer["error"]["line"] > 0, answer
        return
    kind = i % 7
    echoed = {0: lambda: [r["document"]["text"] for r in answer["results"]],
              5: lambda: [r["document"]["text"] for r in answer["results"]],
              1: lambda: [r["text"] for r in answer], 6: lambda: [r["text"] for r in answer]}
    if kind in echoed:
        assert all(text.startswith(f"line {i} text ") for text in echoed[kind]()), answer
    sizes = {0: ("results", 2), 2: (None, 1), 3: (None, 3), 4: ("scores", 3)}
    if kind in sizes:
        key, n = sizes[kind]
        assert len(answer[key] if key else answer) == n, answer


# --- in-process, through the four hooks -------------------------------------------------------

def hooks(engine, body: bytes, content_type=JSONL, accept=JSONL) -> bytes:
    request = inference.input_fn(body, content_type)
    return inference.output_fn(inference.predict_fn(request, engine), accept)


def test_each_line_in_its_own_dialect_in_order(bert_engine):
    lines = [request_line(i)[0] for i in range(7)]
    out = hooks(bert_engine, b"\n".join(lines) + b"\n").decode().split("\n")
    assert len(out) == 7
    for i, line in enumerate(out):
        check_line(i, json.loads(line))
    for i, line in enumerate(out):
        check_scores(i, json.loads(line), bert_engine)


def test_bad_lines_answer_errors_on_their_own_line(bert_engine):
    body = b'{"query": "q", "texts": ["a"]}\n{oops\n\n\xff\xfe\n{"query": "q"}\n[1]\n'
    out = [json.loads(line) for line in hooks(bert_engine, body).decode().split("\n")]
    assert len(out) == 6
    assert out[0][0]["index"] == 0
    assert [o["error"]["line"] for o in out[1:]] == [2, 3, 4, 5, 6]
    assert [o["error"]["type"] for o in out[1:]] == [
        "invalid_json", "invalid_json", "invalid_json", "validation_error", "unknown_format"]


def test_a_str_body_as_the_dlc_passes_it(bert_engine):
    body = "\n".join(request_line(i)[0].decode() for i in (1, 4, 17))
    out = [json.loads(line) for line in hooks(bert_engine, body).decode().split("\n")]
    assert [type(o).__name__ for o in out] == ["list", "dict", "dict"]
    assert "scores" in out[1] and out[2]["error"]["line"] == 3


def test_dialect_attribute_applies_to_every_line(bert_engine):
    body = b'{"query": "q", "documents": ["a", "b"], "topk": 1}\n' * 2
    request = inference.input_fn(body, JSONL, _Context("dialect=cohere"))
    out = inference.output_fn(inference.predict_fn(request, bert_engine), JSONL).split(b"\n")
    assert [len(json.loads(line)["results"]) for line in out] == [2, 2]


def test_a_server_that_cannot_score_fails_the_whole_body(bert_dir):
    """A 503 for the body, never a 200 of error lines: Batch Transform retries a 5xx but
    writes a 200's lines to S3 as results."""
    from reranker.engine import Reranker
    from reranker.errors import EngineClosed
    from reranker.settings import Settings

    engine = Reranker.from_dir(str(bert_dir), Settings(warmup=False))
    engine.close()
    body = b'{"query": "q", "documents": ["a"]}\n{"query": "q", "documents": ["b"]}\n'
    with pytest.raises(EngineClosed) as caught:
        hooks(engine, body)
    assert caught.value.status == 503


def test_an_empty_body_is_a_400_not_an_empty_answer(bert_engine):
    with pytest.raises(InvalidJSON) as caught:
        inference.input_fn(b"", JSONL)
    assert caught.value.status == 400 and caught.value.field == "body"
    # A lone newline is one empty record: it is answered, with its error.
    assert json.loads(hooks(bert_engine, b"\n"))["error"]["line"] == 1


class _Context:
    """The MMS-shaped context a hook receives, carrying one custom attribute header."""

    def __init__(self, attributes: str):
        self.request_processor = [self]
        self._headers = {"X-Amzn-SageMaker-Custom-Attributes": attributes}

    def get_request_properties(self):
        return self._headers


# --- the splitter itself ----------------------------------------------------------------------

def test_multirecord_packs_whole_lines_up_to_the_payload_limit():
    records = [b"x" * 400_000 + b"\n"] * 5
    batches = list(mini_batches(records, "MultiRecord", 1))
    assert [len(b) for b in batches] == [800_002, 800_002, 400_001]
    assert b"".join(batches) == b"".join(records)
    assert len(list(mini_batches(records, "SingleRecord", 1))) == 5
    with pytest.raises(RecordTooLarge):
        list(mini_batches([b"x" * (MB + 1)], "MultiRecord", 1))


# --- a 10,000-line file through our server, as Batch Transform sends it -----------------------

@pytest.fixture(scope="module")
def batch_server(bert_dir):
    """Our server under the environment ``transform`` gives the job: SERVE_MAX_PAYLOAD_BYTES
    and RERANK_MAX_BODY_DOCUMENTS sized to MaxPayloadInMB."""
    job = SimpleNamespace(max_payload_mb=MAX_PAYLOAD_MB, env={})
    env = {**SUITE_ENV, "RERANK_MAX_DOCUMENTS": str(MAX_DOCUMENTS),
           **modes.Transform().job_environment(job)}
    with start_server(bert_dir, env=env) as url, httpx.Client(base_url=url, timeout=600) as http:
        yield http


def test_a_mini_batch_passing_the_document_limits_together_is_scored(batch_server):
    """Each line within RERANK_MAX_DOCUMENTS; all lines of the one call together past it
    and past its 1000 default, as a MultiRecord mini-batch of many lines is."""
    lines = [json.dumps({"query": f"q{i}", "documents": [f"d{j}" for j in range(MAX_DOCUMENTS)]}
                        ).encode() + b"\n" for i in range(80)]
    [body] = mini_batches(lines, "MultiRecord", MAX_PAYLOAD_MB)
    assert len(lines) * MAX_DOCUMENTS > 1000
    answers = invoker(batch_server)(body).decode().splitlines()
    assert len(answers) == len(lines)
    assert all(len(json.loads(a)["results"]) == MAX_DOCUMENTS for a in answers)


@pytest.fixture(scope="module")
def input_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("transform") / "queries.jsonl"
    write_input(path)
    return path


def invoker(http: httpx.Client):
    def invoke(payload: bytes) -> bytes:
        response = http.post("/invocations", content=payload,
                             headers={"Content-Type": JSONL, "Accept": JSONL})
        assert response.status_code == 200, response.text[:500]
        assert response.headers["content-type"].startswith(JSONL)
        return response.content
    return invoke


@pytest.mark.slow
def test_ten_thousand_lines_through_multirecord_and_singlerecord(batch_server, input_file,
                                                                 bert_dir, tmp_path):
    assert input_file.stat().st_size > MAX_PAYLOAD_MB * MB  # so MultiRecord splits it
    multi = transform(input_file, invoker(batch_server), strategy="MultiRecord",
                      max_payload_mb=MAX_PAYLOAD_MB)
    lines = multi.decode().split("\n")
    assert len(lines) == LINES + 1 and lines[-1] == ""  # one line per record, each ended
    for i, line in enumerate(lines[:-1]):
        check_line(i, json.loads(line))
    with local_engine(bert_dir) as engine:
        for i in range(1, LINES, 991):  # scores are the engine's (a sample: every dialect)
            if request_line(i)[1] is None:
                check_scores(i, json.loads(lines[i]), engine)
    prefix = tmp_path / "prefix.jsonl"
    write_input(prefix, SINGLE_RECORD_LINES)
    single = transform(prefix, invoker(batch_server), strategy="SingleRecord", max_concurrent=4)
    assert close([json.loads(x) for x in single.decode().split("\n")[:-1]],
                 [json.loads(x) for x in lines[:SINGLE_RECORD_LINES]])


def check_scores(i: int, answer, engine) -> None:
    """Line i as the server answered it within the batch == the line alone, in-process."""
    alone = json.loads(hooks(engine, request_line(i)[0], "application/json", None))
    assert close(answer, alone), (answer, alone)


def close(got, expected) -> bool:
    """JSON values equal, floats within 1e-5; aside from what belongs to the request, not the
    line: Cohere's per-request id and an error's line number within its request body."""
    if isinstance(expected, float):
        return isinstance(got, float) and abs(got - expected) <= 1e-5
    if isinstance(expected, dict):
        keys = expected.keys() - PER_REQUEST
        return (isinstance(got, dict) and got.keys() - PER_REQUEST == keys
                and all(close(got[k], expected[k]) for k in keys))
    if isinstance(expected, list):
        return (isinstance(got, list) and len(got) == len(expected)
                and all(close(g, e) for g, e in zip(by_index(got), by_index(expected))))
    return got == expected


def by_index(items: list) -> list:
    """A ranking in document order: scores tied within 1e-5 may swap places between batches."""
    if all(isinstance(item, dict) and "index" in item for item in items):
        return sorted(items, key=lambda item: item["index"])
    return items
