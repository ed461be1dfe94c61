"""Elasticsearch's amazon_sagemaker service (elastic API) against the endpoint, and the folder
`python -m deploy elasticsearch` writes.

No Elasticsearch runs here.  What it sends is built the way its ElasticRerankPayload builds
it (``input`` a string for one document, ``return_documents`` and ``top_n`` only when set)
and goes through the real ``sagemaker-runtime`` client to our server's runtime path, as
Elasticsearch's AWS SDK call goes to SageMaker; the answer is read as strictly as its
parser reads it (no top-level key but ``rerank``).
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from example_texts import CAPITAL_DOCS, CAPITAL_QUERY, PANDA_DOCS, PANDA_QUERY
from test_dialects import call, direct

ACCOUNT = "123456789012"


def elastic_payload(query: str, documents: list[str], return_documents: bool | None = None,
                    top_n: int | None = None) -> dict:
    body = {"input": documents if len(documents) > 1 else documents[0], "query": query}
    if return_documents is not None:
        body["return_documents"] = return_documents
    if top_n is not None:
        body["top_n"] = top_n
    return body


def read_like_elasticsearch(answer: dict) -> list[tuple[int, float, str | None]]:
    """RankedDocsResults' parser: ``rerank`` alone at the top; index an int, relevance_score
    a number, text an optional string."""
    assert set(answer) == {"rerank"}, answer
    docs = []
    for doc in answer["rerank"]:
        assert isinstance(doc["index"], int) and isinstance(doc["relevance_score"], float)
        assert doc.get("text") is None or isinstance(doc["text"], str)
        docs.append((doc["index"], doc["relevance_score"], doc.get("text")))
    return docs


def test_the_payload_elasticsearch_sends_is_answered_in_its_shape(bert_engine):
    out, result = call(bert_engine, elastic_payload(CAPITAL_QUERY, CAPITAL_DOCS, True, 3))
    assert result.request.dialect == "elastic"
    docs = read_like_elasticsearch(out)
    expected = direct(bert_engine, CAPITAL_QUERY, CAPITAL_DOCS)
    assert len(docs) == 3 and [d[1] for d in docs] == sorted((d[1] for d in docs), reverse=True)
    for index, score, text in docs:
        assert score == pytest.approx(expected[index], abs=1e-6)
        assert text == CAPITAL_DOCS[index]
    # One document arrives as a plain string; without return_documents no text comes back.
    (single,) = read_like_elasticsearch(call(bert_engine, elastic_payload(
        PANDA_QUERY, PANDA_DOCS[:1]))[0])
    assert single[0] == 0 and single[2] is None


@pytest.mark.parametrize("body,field", [
    ({"query": "q", "input": []}, "input"),
    ({"query": "q", "input": ["a", 3]}, "input[1]"),
    ({"query": "q", "input": 3}, "input"),
    ({"query": "", "input": ["a"]}, "query"),
    ({"query": "q", "input": ["a"], "top_n": 0}, "top_n"),
    ({"query": "q", "input": ["a"], "task_settings": []}, "task_settings"),
    ({"query": "q", "input": ["a"], "task_settings": {"instruction": 4}},
     "task_settings.instruction"),
])
def test_bad_payloads_name_the_field(bert_engine, body, field):
    with pytest.raises(Exception) as refused:
        call(bert_engine, body)
    assert refused.value.status == 422 and refused.value.field == field


def test_an_llm_reranker_takes_its_instruction_from_task_settings(llm_dirs):
    from reranker.engine import Reranker

    engine = Reranker.from_dir(str(llm_dirs("qwen3")))
    try:
        body = elastic_payload(PANDA_QUERY, PANDA_DOCS)
        plain = read_like_elasticsearch(call(engine, body)[0])
        told, result = call(engine, {**body, "task_settings": {"instruction": "Find bears"}})
        assert result.request.instruction == "Find bears"
        assert dict((i, s) for i, s, _ in read_like_elasticsearch(told)) != pytest.approx(
            dict((i, s) for i, s, _ in plain), abs=1e-9)
    finally:
        engine.close()


@pytest.mark.slow  # starts a server
def test_through_the_sagemaker_runtime_client(client_url, client_engine):
    import boto3

    runtime = boto3.client("sagemaker-runtime", endpoint_url=client_url, region_name="us-east-1",
                           aws_access_key_id="testing", aws_secret_access_key="testing")
    response = runtime.invoke_endpoint(
        EndpointName="reranker", ContentType="application/json", Accept="application/json",
        Body=json.dumps(elastic_payload(CAPITAL_QUERY, CAPITAL_DOCS, top_n=2)))
    docs = read_like_elasticsearch(json.loads(response["Body"].read()))
    expected = client_engine.score(CAPITAL_QUERY, CAPITAL_DOCS)
    assert [d[0] for d in docs] == sorted(range(4), key=lambda i: -expected[i])[:2]


def cli(*args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "deploy", "elasticsearch", *map(str, args)],
                          capture_output=True, text=True, timeout=120)


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    out = tmp_path_factory.mktemp("es") / "out"
    run = cli("--endpoint", "My-Reranker", "--region", "eu-west-1", "--account", ACCOUNT,
              "--document-field", "passage_text", "--index", "docs", "--out", out)
    assert run.returncode == 0, run.stderr
    return out


def test_the_inference_endpoint_names_the_endpoint_and_no_key(folder):
    body = json.loads((folder / "1-inference-endpoint.json").read_text())
    assert body["service"] == "amazon_sagemaker"
    settings = body["service_settings"]
    assert (settings["api"], settings["endpoint_name"], settings["region"]) == (
        "elastic", "My-Reranker", "eu-west-1")
    assert settings["access_key"].startswith("<") and settings["secret_key"].startswith("<")
    for path in folder.rglob("*"):
        if path.is_file():
            assert "AKIA" not in path.read_text() and "testing" not in path.read_text()


def test_the_test_call_and_the_search_use_the_inference_id(folder):
    test = json.loads((folder / "2-test-inference.json").read_text())
    assert set(test) == {"query", "input", "top_n", "return_documents"}
    search = json.loads((folder / "3-search.json").read_text())["retriever"][
        "text_similarity_reranker"]
    assert search["inference_id"] == "my-reranker-rerank" and search["field"] == "passage_text"
    assert search["retriever"]["standard"]["query"]["match"]["passage_text"]
    readme = (folder / "README.md").read_text()
    for needle in ("PUT _inference/rerank/my-reranker-rerank", "POST docs/_search", "jq --arg",
                   "RERANK_MAX_DOCUMENTS", "sagemaker:InvokeEndpoint"):
        assert needle in readme, needle


def test_the_policy_invokes_exactly_this_endpoint(folder):
    policy = json.loads((folder / "iam" / "invoke-endpoint-policy.json").read_text())
    (statement,) = policy["Statement"]
    assert statement["Action"] == "sagemaker:InvokeEndpoint"
    assert statement["Resource"] == f"arn:aws:sagemaker:eu-west-1:{ACCOUNT}:endpoint/my-reranker"


def test_an_inference_component_is_named(tmp_path):
    run = cli("--endpoint", "shared", "--region", "us-east-1", "--account", ACCOUNT,
              "--component", "bge-m3", "--out", tmp_path / "out")
    assert run.returncode == 0, run.stderr
    body = json.loads((tmp_path / "out" / "1-inference-endpoint.json").read_text())
    assert body["service_settings"]["inference_component_name"] == "bge-m3"
    assert "`bge-m3`" in (tmp_path / "out" / "README.md").read_text()


@pytest.mark.parametrize("args,needle", [
    (["--region", "nowhere"], "--region 'nowhere' is not an AWS region"),
    (["--account", "12"], "--account '12' is not a 12-digit"),
    (["--account", ""], "--account is required"),
    (["--inference-id", "Has Space"], "--inference-id"),
    (["--inference-id", "rr-"], "--inference-id 'rr-'"),
    (["--index", "_hidden"], "--index '_hidden'"),
    (["--rank-window", "0"], "--rank-window must be at least 1"),
])
def test_bad_flags_are_one_line(tmp_path, args, needle):
    base = {"--endpoint": "rr", "--region": "us-east-1", "--account": ACCOUNT,
            "--out": str(tmp_path / "out")}
    for flag, value in zip(args[::2], args[1::2]):
        base[flag] = value
    run = cli(*[x for pair in base.items() for x in pair])
    assert run.returncode == 2
    assert run.stderr.count("\n") == 1 and needle in run.stderr, run.stderr


def test_ids_and_indexes_elasticsearch_takes_are_taken():
    from deploy.integrations.elasticsearch.target import build

    target = build("rr", "us-east-1", ACCOUNT, inference_id="my.rerank", index="logs.2024")
    assert (target.inference_id, target.index) == ("my.rerank", "logs.2024")


def test_the_iam_user_fits_iams_64_characters():
    from deploy.integrations.elasticsearch.target import build

    assert build("rr", "us-east-1", ACCOUNT).iam_user == "elasticsearch-rr"
    long = "r" * 63
    users = {build(name, "us-east-1", ACCOUNT).iam_user for name in (long, long[:-1] + "s")}
    assert len(users) == 2 and all(len(user) <= 64 for user in users)


def test_the_folder_is_readable_by_others_as_the_umask_allows(folder):
    """A staging folder is private (mkdtemp's 0700); the folder it becomes is not."""
    import os
    import stat

    umask = os.umask(0o022)
    os.umask(umask)
    assert stat.S_IMODE(folder.stat().st_mode) == 0o777 & ~umask
    assert "run them from this folder" in (folder / "README.md").read_text()
