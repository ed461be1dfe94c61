"""deploy.client.RerankClient with the real boto3 ``sagemaker-runtime`` client.

Real-time calls go to our own server (container/serving, started by bench/local_server.py),
whose POST /endpoints/{name}/invocations is the runtime API's path.  The retry test puts a
small loopback proxy in front of it that answers the first request(s) with a plain HTTP 503
-- a stand-in for SageMaker's "service unavailable", stated as such: it is not SageMaker.
Async calls go to moto in server mode (S3 and InvokeEndpointAsync); moto does not run a
model, so its result queue is seeded with what our real hooks answer for the same body.
"""

from __future__ import annotations

import http.server
import json
import logging
import os
import subprocess
import threading
import urllib.request
from pathlib import Path

import boto3
import pytest

from bench.local_server import start_server
from deploy.client import RerankClient, RerankClientError
from deploy.client.examples import two_stage
from example_texts import CAPITAL_DOCS, CAPITAL_QUERY

ROOT = Path(__file__).resolve().parent.parent

DOCS = [f"document {i} about {'bats and heroes' if i % 3 == 0 else 'the capital city'}"
        for i in range(23)]
QUERY = "super hero movie about bats"


@pytest.fixture(scope="module")
def server(bert_dir):
    """At most 2 requests in flight (more get 503), 5 documents per request (more get 413)."""
    with start_server(bert_dir, env={"RERANK_MAX_DOCUMENTS": "5", "SERVE_MAX_CONCURRENCY": "2"}
                      ) as url:
        yield url


@pytest.fixture(scope="module")
def expected(bert_engine):
    return bert_engine.score(QUERY, DOCS)


def client(url, **kwargs) -> RerankClient:
    kwargs.setdefault("concurrency", 2)  # within the server's admission limit
    return RerankClient("reranker-test", endpoint_url=url, region="us-east-1", **kwargs)


def test_splits_by_document_limit_and_merges_in_input_order(server, expected):
    c = client(server, max_documents=5)
    assert c.split(QUERY, DOCS, c.payload_limit) == [(0, 5), (5, 10), (10, 15), (15, 20),
                                                      (20, 23)]
    results = c.rerank(QUERY, DOCS)
    assert sorted(r["index"] for r in results) == list(range(len(DOCS)))
    assert [r["relevance_score"] for r in results] == sorted(
        (r["relevance_score"] for r in results), reverse=True)
    assert c.scores(QUERY, DOCS) == pytest.approx(expected, abs=1e-6)


def test_top_n_applies_after_the_merge(server, expected):
    c = client(server, max_documents=5)
    top = c.rerank(QUERY, DOCS, top_n=4)
    best = sorted(range(len(DOCS)), key=lambda i: -expected[i])[:4]
    assert [r["index"] for r in top] == best
    documents = c.rerank(QUERY, DOCS, top_n=2, return_documents=True)
    assert [r["document"] for r in documents] == [{"text": DOCS[i]} for i in best[:2]]


def test_splits_by_payload_size(server, expected):
    c = client(server, max_documents=5, max_payload_bytes=16 * 1024 + 150)
    batches = c.split(QUERY, DOCS, c.payload_limit)
    assert batches[0][0] == 0 and batches[-1][1] == len(DOCS)
    assert all(a < b for a, b in batches) and max(b - a for a, b in batches) < 5  # bytes bind
    for a, b in batches:
        assert len(c._body(QUERY, DOCS[a:b], None, False)) <= c.payload_limit - 16 * 1024
    assert c.scores(QUERY, DOCS) == pytest.approx(expected, abs=1e-6)
    with pytest.raises(ValueError, match="document 0 is"):
        c.rerank(QUERY, ["x" * 1000])


def test_server_refusals_become_clear_errors(server):
    c = client(server, max_documents=50)  # more than the server's RERANK_MAX_DOCUMENTS=5
    with pytest.raises(RerankClientError, match="RERANK_MAX_DOCUMENTS") as info:
        c.rerank(QUERY, DOCS)
    assert info.value.status == 413
    with pytest.raises(ValueError, match="top_n"):
        c.rerank(QUERY, DOCS, top_n=0)
    with pytest.raises(ValueError, match="documents"):
        c.rerank(QUERY, "not a list")


class _Flaky(http.server.BaseHTTPRequestHandler):
    """Loopback proxy: the first ``failures`` POSTs get HTTP 503, the rest go to upstream."""

    def do_POST(self):  # noqa: N802 (http.server's naming)
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        proxy = self.server
        with proxy.lock:
            proxy.seen += 1
            fail = proxy.failures > 0
            proxy.failures -= fail
        if fail:
            payload = b'{"message": "Service Unavailable (test proxy, not SageMaker)"}'
            self.send_response(503)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)
            return
        request = urllib.request.Request(proxy.upstream + self.path, data=body, method="POST",
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=60) as response:
            payload = response.read()
            status = response.status
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args):
        pass


@pytest.fixture()
def flaky(server):
    proxy = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Flaky)
    proxy.upstream, proxy.lock, proxy.seen, proxy.failures = server, threading.Lock(), 0, 0
    thread = threading.Thread(target=proxy.serve_forever, daemon=True)
    thread.start()
    yield proxy
    proxy.shutdown()
    proxy.server_close()


def test_retries_a_503_with_backoff(flaky, expected):
    flaky.failures = 2
    # botocore's own retries off, so the 503s must be handled by the client's loop.
    c = client(f"http://127.0.0.1:{flaky.server_port}", max_documents=5, concurrency=1,
               botocore_attempts=1, backoff=0.01)
    assert c.scores(QUERY, DOCS) == pytest.approx(expected, abs=1e-6)
    assert flaky.seen == 5 + 2  # five batches, two of the tries refused once
    flaky.failures, flaky.seen = 100, 0
    c = client(f"http://127.0.0.1:{flaky.server_port}", max_documents=5, concurrency=1,
               botocore_attempts=1, backoff=0.01, max_attempts=3)
    with pytest.raises(RerankClientError) as info:
        c.rerank(QUERY, DOCS[:3])
    assert info.value.status == 503 and flaky.seen == 3


def test_correct_under_the_servers_admission_limit(server, expected):
    """6 requests in flight against SERVE_MAX_CONCURRENCY=2: refused ones (503) are retried."""
    c = client(server, max_documents=2, concurrency=6, backoff=0.02, max_attempts=12)
    assert c.scores(QUERY, DOCS) == pytest.approx(expected, abs=1e-6)


def test_two_stage_example_keeps_the_top_five(server, bert_engine):
    c = client(server, max_documents=5)
    top = two_stage.two_stage(c, two_stage.QUERY, two_stage.CANDIDATES, first_stage=False)
    scores = bert_engine.score(two_stage.QUERY, two_stage.CANDIDATES)
    best = sorted(range(25), key=lambda i: -scores[i])[:5]
    assert [row["corpus_index"] for row in top] == best
    assert [row["text"] for row in top] == [two_stage.CANDIDATES[i] for i in best]
    corpus = two_stage.CANDIDATES + ["bats bats bats super hero", "a quiet drama"]
    assert two_stage.bm25("bats super hero", corpus, k=1) == [25]
    assert len(two_stage.two_stage(c, "bats super hero", corpus, candidates=10)) == 5


def test_two_stage_example_runs_with_only_the_server_url(server, capsys, tmp_path):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("\n".join(two_stage.CANDIDATES[:8]) + "\n")
    assert two_stage.main(["--endpoint-url", server, "--corpus", str(corpus),
                           "--candidates", "4", "--keep", "2"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == f"query: {two_stage.QUERY}" and len(lines) == 3


def test_two_stage_example_without_a_server_says_so_in_one_line(capsys):
    assert two_stage.main(["--endpoint-url", "http://127.0.0.1:9"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: EndpointConnectionError")
    with pytest.raises(SystemExit) as refused:
        two_stage.main([])
    assert refused.value.code == 2 and "--endpoint-url" in capsys.readouterr().err


def test_invoke_without_credentials_says_how_to_get_them(monkeypatch, capsys, tmp_path):
    from deploy.__main__ import main

    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN",
                 "AWS_PROFILE", "AWS_DEFAULT_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.chdir(tmp_path)
    code = main(["invoke", "--endpoint", "reranker", "--region", "us-east-1", "-q", "q",
                 "-d", "a", "b"])
    err = capsys.readouterr().err
    assert code == 2 and "aws configure" in err and len(err.strip().splitlines()) == 1
    # The example says it as the commands do, not as botocore's exception name.
    assert two_stage.main(["--endpoint", "reranker", "--region", "us-east-1"]) == 2
    assert capsys.readouterr().err.startswith("error: no AWS credentials found")
    for name in ("AWS_REGION", "AWS_DEFAULT_REGION"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(SystemExit):
        two_stage.main(["--endpoint", "reranker"])
    assert "no AWS region: pass --region" in capsys.readouterr().err


def test_invoke_cli_prints_a_table(server, capsys):
    from deploy.__main__ import main

    code = main(["invoke", "--endpoint", "reranker-test", "--endpoint-url", server,
                 "--region", "us-east-1", "--max-documents", "4", "-q", QUERY,
                 "-d", *DOCS[:7], "--top-n", "3", "--json"])
    out = capsys.readouterr().out
    assert code == 0 and len(json.loads(out)) == 3
    code = main(["invoke", "--endpoint", "reranker-test", "--endpoint-url", server,
                 "--region", "us-east-1", "-q", QUERY, "-d", *DOCS[:7]])
    out, err = capsys.readouterr()
    assert code == 2 and "RERANK_MAX_DOCUMENTS" in err and len(err.strip().splitlines()) == 1
    # Documents are printed as text: brackets are no markup to rich.
    code = main(["invoke", "--endpoint", "reranker-test", "--endpoint-url", server,
                 "--region", "us-east-1", "-q", QUERY, "-d", "a [/x] b", "big.[citation]"])
    out = capsys.readouterr().out
    assert code == 0 and "a [/x] b" in out and "big.[citation]" in out


# ---------------------------------------------------------------- instructions

INSTRUCTION = "Prefer passages that name a city."


def expected_with(engine, query: str, docs: list[str], instruction: str | None) -> list[float]:
    from reranker.request import RerankRequest

    request = RerankRequest("cohere", [(query, d) for d in docs], docs, instruction=instruction)
    return engine.rerank(request).relevance.tolist()


def test_an_instruction_reaches_an_llm_reranker_in_every_split_request(llm_suite):
    url, engine = llm_suite
    c = client(url, max_documents=3)
    assert len(c.split(CAPITAL_QUERY, CAPITAL_DOCS, c.payload_limit, INSTRUCTION)) > 1
    got = c.scores(CAPITAL_QUERY, CAPITAL_DOCS, instruction=INSTRUCTION)
    want = expected_with(engine, CAPITAL_QUERY, CAPITAL_DOCS, INSTRUCTION)
    assert got == pytest.approx(want, abs=1e-5)
    plain = c.scores(CAPITAL_QUERY, CAPITAL_DOCS)
    assert plain == pytest.approx(expected_with(engine, CAPITAL_QUERY, CAPITAL_DOCS, None),
                                  abs=1e-5)
    assert max(abs(a - b) for a, b in zip(got, plain)) > 1e-4  # it reached the model


def test_the_instruction_counts_in_the_payload_split(server):
    c = client(server, max_payload_bytes=16 * 1024 + 800)
    long = "rank by recency " * 20
    batches = c.split(QUERY, DOCS, c.payload_limit, long)
    assert len(batches) > len(c.split(QUERY, DOCS, c.payload_limit))
    for a, b in batches:
        assert len(c._body(QUERY, DOCS[a:b], None, False, long)) <= c.payload_limit - 16 * 1024
    with pytest.raises(ValueError, match="instruction must be a non-empty string"):
        c.rerank(QUERY, DOCS, instruction=" ")


def test_a_cross_encoder_refuses_an_instruction_by_name(server):
    with pytest.raises(RerankClientError) as caught:
        client(server).rerank(QUERY, DOCS[:3], instruction=INSTRUCTION)
    assert caught.value.status == 422 and "instruction" in str(caught.value)


def test_invoke_cli_and_make_invoke_send_the_instruction(llm_suite, capsys):
    from deploy.__main__ import main

    url, engine = llm_suite
    docs = CAPITAL_DOCS[:3]
    want = expected_with(engine, CAPITAL_QUERY, docs, INSTRUCTION)
    code = main(["invoke", "--endpoint", "reranker-test", "--endpoint-url", url,
                 "--region", "us-east-1", "-q", CAPITAL_QUERY, "-d", *docs,
                 "--instruction", INSTRUCTION, "--json"])
    assert code == 0
    got = {r["index"]: r["relevance_score"] for r in json.loads(capsys.readouterr().out)}
    assert [got[i] for i in range(3)] == pytest.approx(want, abs=1e-5)
    # Through make, with quotes that a shell would trip on.
    quoted = f"{INSTRUCTION} (it's \"quoted\", $HOME, $(shell id))"
    want = expected_with(engine, CAPITAL_QUERY, docs, quoted)
    # -o: never rebuild .venv from here, whatever changed in requirements.txt.
    done = subprocess.run(
        ["make", "-s", "-C", str(ROOT), "-o", ".venv/.installed", "invoke", "ENDPOINT=t",
         f"ENDPOINT_URL={url}", "REGION=us-east-1", f"QUERY={CAPITAL_QUERY}",
         "DOCS=" + "|".join(docs), f"INSTRUCTION={quoted}"],
        capture_output=True, text=True, timeout=120, env={**os.environ, "COLUMNS": "200"})
    assert done.returncode == 0, done.stderr
    assert all(f"{score:.4f}" in done.stdout for score in want), done.stdout


# ---------------------------------------------------------------- async, against moto


@pytest.fixture()
def moto(monkeypatch):
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    yield f"http://{host}:{port}"
    server.stop()


def _seed(moto_url: str, results: list[dict]) -> None:
    request = urllib.request.Request(
        f"{moto_url}/moto-api/static/sagemaker/async-endpoint-results",
        data=json.dumps({"results": results}).encode(), method="POST",
        headers={"Content-Type": "application/json"})
    urllib.request.urlopen(request).close()


def _real_answer(engine, body: bytes) -> str:
    """What our hooks answer for ``body`` (the answer an async endpoint would store)."""
    import inference

    return inference.output_fn(engine.rerank(inference.input_fn(body, "application/json")),
                               "application/json").decode()


def test_rerank_async_uploads_polls_and_merges(moto, bert_engine):
    s3 = boto3.client("s3", endpoint_url=moto, region_name="us-east-1")
    s3.create_bucket(Bucket="async")
    session = boto3.Session(region_name="us-east-1")
    uploads = []  # (key, first document) of each request put in S3
    session.events.register(
        "provide-client-params.s3.PutObject", lambda params, **_: uploads.append(
            (params["Key"], json.loads(params["Body"])["documents"][0])))
    c = RerankClient("reranker-async", region="us-east-1", session=session, endpoint_url=moto,
                     s3_endpoint_url=moto, max_documents=5)
    batches = c.split(QUERY, DOCS[:8], 6 << 20)
    assert batches == [(0, 5), (5, 8)]
    bodies = [c._body(QUERY, DOCS[a:b], 3, False, raw_scores=True) for a, b in batches]
    _seed(moto, [{"data": _real_answer(bert_engine, body)} for body in bodies])
    top = c.rerank_async(QUERY, DOCS[:8], top_n=3, input_location="s3://async/in/",
                         poll_seconds=0.01, timeout=30)
    expected = bert_engine.score(QUERY, DOCS[:8])
    assert [r["index"] for r in top] == sorted(range(8), key=lambda i: -expected[i])[:3]
    assert sorted(doc for _, doc in uploads) == sorted([DOCS[0], DOCS[5]])
    # Answered: the uploaded requests are deleted.
    assert s3.list_objects_v2(Bucket="async", Prefix="in/").get("KeyCount", 0) == 0
    # A location naming its object is numbered when the list needs several requests.
    uploads.clear()
    _seed(moto, [{"data": _real_answer(bert_engine, body)} for body in bodies])
    again = c.rerank_async(QUERY, DOCS[:8], top_n=3, input_location="s3://async/in/req.json",
                           poll_seconds=0.01, timeout=30)
    assert again == top
    assert sorted(key for key, _ in uploads) == ["in/req-0.json", "in/req-1.json"]
    _seed(moto, [{"is_failure": True, "data": '{"error": {"message": "boom"}}'}])
    with pytest.raises(RerankClientError, match="async inference failed"):
        c.rerank_async(QUERY, DOCS[:2], input_location="s3://async/in/", poll_seconds=0.01,
                       timeout=30)
    # A failed request's upload is deleted too: nothing is left in the input prefix.
    assert s3.list_objects_v2(Bucket="async", Prefix="in/").get("KeyCount", 0) == 0


def test_merge_keeps_each_answers_order_among_equal_scores():
    """Relevance saturates at 1.0 while the server still ranks by raw score: equal scores
    keep the server's order, not the documents' input order."""
    from deploy.client.rerank_client import merge

    answers = [{"results": [{"index": 2, "relevance_score": 1.0},
                            {"index": 0, "relevance_score": 1.0},
                            {"index": 1, "relevance_score": 0.5}]},
               {"results": [{"index": 1, "relevance_score": 1.0},
                            {"index": 0, "relevance_score": 0.7}]}]
    merged = merge(answers, [(0, 3), (3, 5)], None, False)
    assert [r["index"] for r in merged] == [2, 0, 4, 3, 1]
    with pytest.raises(RerankClientError, match="without a score"):
        merge([{"results": [{"index": 0}]}], [(0, 1)], None, False)


def test_split_requests_are_merged_by_raw_score():
    """Logits 40 and 45 both read relevance 1.0: answered as raw scores, the split list
    ranks as one request would, and reports the relevance the server would have."""
    import math

    from deploy.client.rerank_client import merge

    answers = [{"results": [{"index": 0, "relevance_score": 40.0},
                            {"index": 1, "relevance_score": -800.0}]},
               {"results": [{"index": 0, "relevance_score": 45.0}]}]
    merged = merge(answers, [(0, 2), (2, 3)], 2, False, raw=True)
    assert [r["index"] for r in merged] == [2, 0]
    assert [r["relevance_score"] for r in merged] == [1.0, 1.0]
    tail = merge(answers, [(0, 2), (2, 3)], None, False, raw=True)[-1]
    assert tail["index"] == 1 and tail["relevance_score"] == 0.0
    assert merge([{"results": [{"index": 0, "relevance_score": 1.5}]}], [(0, 1)], None,
                 False, raw=True)[0]["relevance_score"] == pytest.approx(
                     1 / (1 + math.exp(-1.5)), abs=0)


def _async_client(moto: str):
    """An S3 client on moto with the "async" bucket, and a RerankClient sending through it."""
    s3 = boto3.client("s3", endpoint_url=moto, region_name="us-east-1")
    s3.create_bucket(Bucket="async")
    return s3, RerankClient("reranker-async", region="us-east-1",
                            session=boto3.Session(region_name="us-east-1"), endpoint_url=moto,
                            s3_endpoint_url=moto, backoff=0.01)


def test_an_async_call_is_not_sent_again_after_a_closed_connection(moto):
    """SageMaker may have queued it before the connection closed: a second call would
    queue (and bill) it twice.  The upload is deleted: this call is abandoned."""
    from botocore.exceptions import ConnectionClosedError

    s3, c = _async_client(moto)
    calls = []

    def closed(**_):
        calls.append(1)
        raise ConnectionClosedError(endpoint_url=moto)
    c.runtime.meta.events.register("before-send.sagemaker-runtime.InvokeEndpointAsync", closed)
    with pytest.raises(ConnectionClosedError):
        c.rerank_async(QUERY, DOCS[:2], input_location="s3://async/in/", poll_seconds=0.01,
                       timeout=5)
    assert calls == [1]
    assert s3.list_objects_v2(Bucket="async", Prefix="in/").get("KeyCount", 0) == 0


def test_an_async_call_is_not_sent_again_after_a_5xx(moto):
    """A 500 may come after SageMaker queued the request: only refusals (throttling, not
    ready) are retried for an async call, never a failure that may have been taken."""
    from botocore.awsrequest import AWSResponse

    class Body:
        def __init__(self, data: bytes):
            self.data = data

        def stream(self, **_):
            yield self.data

    _, c = _async_client(moto)
    calls = []

    def failed(request, **_):
        calls.append(1)
        return AWSResponse(request.url, 500, {"x-amzn-ErrorType": "InternalFailure",
                                              "Content-Type": "application/json"},
                           Body(b'{"message": "the service failed"}'))
    c.runtime.meta.events.register("before-send.sagemaker-runtime.InvokeEndpointAsync", failed)
    with pytest.raises(RerankClientError, match="InternalFailure"):
        c.rerank_async(QUERY, DOCS[:2], input_location="s3://async/in/", poll_seconds=0.01,
                       timeout=5)
    assert calls == [1]
    assert c._s3() is c._s3()  # one S3 client per RerankClient
