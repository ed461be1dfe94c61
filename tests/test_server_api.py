"""Every dialect over real HTTP, on /invocations and on the runtime API path with boto3.

Scores are checked against the engine run in-process on the same model directory.  With
RERANK_TEST_URL (and RERANK_TEST_MODEL_DIR) set, the module tests that server instead of
starting one: ``make docker-test`` points it at the container.
"""

from __future__ import annotations

import json
import math

import httpx
import pytest

pytestmark = pytest.mark.slow  # starts servers

QUERY = "what is the capital city of america"
DOCS = ["the giant panda is a bear species endemic to china",
        "washington dc is the capital of the united states",
        "carson city is the capital city of the american state of nevada"]


@pytest.fixture(scope="module")
def served(base_url, suite_model_dir):
    """(base URL, model directory) of the server under test: the HTTP suites' (conftest)."""
    return base_url, suite_model_dir


@pytest.fixture(scope="module")
def client(served):
    with httpx.Client(base_url=served[0], timeout=60) as http:
        yield http


@pytest.fixture(scope="module")
def engine(served):
    from reranker.engine import Reranker
    from reranker.settings import Settings

    model = Reranker.from_dir(str(served[1]), Settings(warmup=False))
    yield model
    model.close()


def sigmoid(x: float) -> float:
    return 1 / (1 + math.exp(-x))


def test_ping_answers_200_when_ready(client):
    response = client.get("/ping")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_cohere(client, engine):
    raw = engine.score(QUERY, DOCS, raw=True)
    response = client.post("/invocations", json={"query": QUERY, "documents": DOCS, "top_n": 2,
                                                 "return_documents": True})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    expected = sorted(range(3), key=lambda i: -raw[i])[:2]
    assert [r["index"] for r in body["results"]] == expected
    for item in body["results"]:
        assert item["relevance_score"] == pytest.approx(sigmoid(raw[item["index"]]), abs=1e-5)
        assert item["document"] == {"text": DOCS[item["index"]]}
    assert body["usage"]["total_tokens"] > 0


def test_tei(client, engine):
    raw = engine.score(QUERY, DOCS, raw=True)
    response = client.post("/invocations", json={"query": QUERY, "texts": DOCS,
                                                 "raw_scores": True, "return_text": True})
    assert response.status_code == 200, response.text
    body = response.json()
    assert [r["index"] for r in body] == sorted(range(3), key=lambda i: -raw[i])
    for item in body:
        assert item["score"] == pytest.approx(raw[item["index"]], abs=1e-5)
        assert item["text"] == DOCS[item["index"]]


def test_topk_returns_raw_logits_cut_to_topk(client, engine):
    raw = engine.score(QUERY, DOCS, raw=True)
    response = client.post("/invocations", json={"query": QUERY, "documents": DOCS, "topk": 1})
    assert response.status_code == 200, response.text
    best = max(range(3), key=lambda i: raw[i])
    assert response.json() == [{"index": best, "score": pytest.approx(raw[best], abs=1e-5)}]


def test_pipeline_single_and_list(client, engine):
    # The pipeline scores (text, text_pair) in the order given.
    pair = {"text": DOCS[1], "text_pair": QUERY}
    expected = sigmoid(engine.score(DOCS[1], [QUERY], raw=True)[0])
    single = client.post("/invocations", json={"inputs": pair})
    assert single.status_code == 200, single.text
    assert single.json()["score"] == pytest.approx(expected, abs=1e-5)
    many = client.post("/invocations", json={"inputs": [pair, pair]})
    assert [a["score"] for a in many.json()] == pytest.approx([expected] * 2, abs=1e-5)


@pytest.mark.parametrize("path", ["/invocations", "/score", "/v1/score"])
def test_vllm_score(client, engine, path):
    expected = engine.score(QUERY, DOCS)
    response = client.post(path, json={"text_1": QUERY, "text_2": DOCS})
    assert response.status_code == 200, response.text
    assert [d["score"] for d in response.json()["data"]] == pytest.approx(expected, abs=1e-5)


def test_rerank_route_takes_tei_and_the_cohere_shape(client, engine):
    expected = engine.score(QUERY, DOCS)
    tei = client.post("/rerank", json={"query": QUERY, "texts": DOCS}).json()
    cohere = client.post("/rerank", json={"query": QUERY, "documents": DOCS}).json()
    assert {i["index"]: i["score"] for i in tei} == pytest.approx(dict(enumerate(expected)),
                                                                  abs=1e-5)
    assert {r["index"]: r["relevance_score"] for r in cohere["results"]} == pytest.approx(
        dict(enumerate(expected)), abs=1e-5)


def test_info_and_models_name_what_is_served(client, engine):
    described = engine.describe()
    info = client.get("/info")
    assert info.status_code == 200, info.text
    body = info.json()
    assert body["model_id"] == described["model"]
    assert body["max_input_length"] == described["max_length"]
    assert body["max_client_batch_size"] == 16  # the suite's RERANK_MAX_DOCUMENTS
    assert body["version"] and body["engine"]["backend"] == described["backend"]
    models = client.get("/v1/models").json()
    assert models["object"] == "list"
    assert [m["id"] for m in models["data"]] == [described["model"]]
    assert models["data"][0]["created"] > 0


def test_custom_attribute_dialect_overrides_detection(client):
    body = {"query": QUERY, "documents": DOCS, "topk": 1}  # detected as topk
    headers = {"X-Amzn-SageMaker-Custom-Attributes": "trace=1, dialect=cohere"}
    response = client.post("/invocations", json=body, headers=headers)
    assert response.status_code == 200, response.text
    assert len(response.json()["results"]) == 3
    headers["X-Amzn-SageMaker-Custom-Attributes"] = "dialect=klingon"
    response = client.post("/invocations", json=body, headers=headers)
    assert response.status_code == 422
    assert response.json()["error"]["field"] == "dialect"


def test_unicode_and_long_texts_score_like_the_engine(client, engine):
    docs = ["naïve café ☕ — 東京は日本の首都です", "مرحبا بالعالم", "e\u0301" * 50,
            "🦄" * 200, "capital " * 2000]
    raw = engine.score("Ünïcödé 質問 🔍", docs, raw=True)
    response = client.post("/invocations", json={"query": "Ünïcödé 質問 🔍", "texts": docs,
                                                 "raw_scores": True})
    assert response.status_code == 200, response.text
    for item in response.json():
        assert item["score"] == pytest.approx(raw[item["index"]], abs=1e-5)


def test_request_id_is_reused_or_made(client):
    given = client.post("/invocations", json={"query": QUERY, "documents": DOCS},
                        headers={"X-Amzn-RequestId": "req-42"})
    assert given.headers["x-request-id"] == "req-42"
    made = client.get("/ping")
    assert len(made.headers["x-request-id"]) == 32


def runtime_client(base_url: str):
    import boto3

    return boto3.client("sagemaker-runtime", endpoint_url=base_url, region_name="us-east-1",
                        aws_access_key_id="testing", aws_secret_access_key="testing")


def test_boto3_invoke_endpoint(served, engine):
    runtime = runtime_client(served[0])
    response = runtime.invoke_endpoint(
        EndpointName="reranker", ContentType="application/json", Accept="application/json",
        Body=json.dumps({"query": QUERY, "texts": DOCS, "raw_scores": True}),
        CustomAttributes="dialect=tei")
    assert response["ContentType"].startswith("application/json")
    assert response["InvokedProductionVariant"] == "AllTraffic"
    raw = engine.score(QUERY, DOCS, raw=True)
    for item in json.loads(response["Body"].read()):
        assert item["score"] == pytest.approx(raw[item["index"]], abs=1e-5)


def test_boto3_sees_errors_as_model_error_like_on_aws(served):
    runtime = runtime_client(served[0])
    with pytest.raises(runtime.exceptions.ModelError) as caught:
        runtime.invoke_endpoint(EndpointName="reranker", ContentType="application/json",
                                Body=json.dumps({"query": "", "documents": DOCS}))
    error = caught.value.response
    assert error["OriginalStatusCode"] == 422
    assert json.loads(error["OriginalMessage"])["error"]["field"] == "query"


def test_boto3_jsonlines_answers_one_line_per_line(served, engine):
    lines = [{"query": QUERY, "texts": DOCS, "raw_scores": True}, {"query": ""},
             {"text_pairs": [[QUERY, d] for d in DOCS], "raw_scores": True}]
    response = runtime_client(served[0]).invoke_endpoint(
        EndpointName="reranker", ContentType="application/jsonlines",
        Accept="application/jsonlines", Body="\n".join(map(json.dumps, lines)) + "\n")
    assert response["ContentType"].startswith("application/jsonlines")
    tei, error, langchain = map(json.loads, response["Body"].read().decode().split("\n"))
    raw = engine.score(QUERY, DOCS, raw=True)
    assert {i["index"]: i["score"] for i in tei} == pytest.approx(dict(enumerate(raw)), abs=1e-5)
    assert error["error"]["field"] == "query" and error["error"]["line"] == 2
    assert langchain["scores"] == pytest.approx(raw, abs=1e-5)
