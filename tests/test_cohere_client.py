"""The real ``cohere`` SDK against our server's /v1/rerank and /v2/rerank (base_url at it).

The SDK parses our answers into its own response types, so a shape it cannot read fails
here.  The api_key is a placeholder: our server needs none and nothing leaves 127.0.0.1.
"""

from __future__ import annotations

import cohere
import httpx
import pytest

from example_texts import CAPITAL_DOCS, CAPITAL_QUERY, MOVIES, MOVIES_QUERY

pytestmark = pytest.mark.slow  # starts a server


def check_results(results, engine, query, docs, top_n):
    scores = engine.score(query, docs)
    assert len(results) == top_n
    got = [r.relevance_score for r in results]
    assert got == sorted(got, reverse=True)
    for r in results:
        assert r.relevance_score == pytest.approx(scores[r.index], abs=1e-5)
    # The best document is the engine's best, up to ties within the score tolerance.
    assert scores[results[0].index] >= max(scores) - 1e-5


def test_client_v2_rerank(client_url, client_engine):
    co = cohere.ClientV2(api_key="local", base_url=client_url)
    response = co.rerank(model="rerank-v3.5", query=MOVIES_QUERY, documents=MOVIES, top_n=4)
    assert isinstance(response, cohere.V2RerankResponse)
    assert response.id
    check_results(response.results, client_engine, MOVIES_QUERY, MOVIES, 4)


def test_client_v1_rerank_with_documents_and_rank_fields(client_url, client_engine):
    co = cohere.Client(api_key="local", base_url=client_url)
    response = co.rerank(model="rerank-english-v3.0", query=CAPITAL_QUERY,
                         documents=CAPITAL_DOCS, top_n=2, return_documents=True)
    assert isinstance(response, cohere.RerankResponse)
    check_results(response.results, client_engine, CAPITAL_QUERY, CAPITAL_DOCS, 2)
    assert [r.document.text for r in response.results] == [
        CAPITAL_DOCS[r.index] for r in response.results]
    assert response.meta.api_version.version == "1"
    records = [{"title": f"doc {i}", "body": d} for i, d in enumerate(CAPITAL_DOCS)]
    fielded = co.rerank(model="rerank-english-v3.0", query=CAPITAL_QUERY, documents=records,
                        rank_fields=["title", "body"])
    joined = [f"title: doc {i}\nbody: {d}" for i, d in enumerate(CAPITAL_DOCS)]
    check_results(fielded.results, client_engine, CAPITAL_QUERY, joined, len(CAPITAL_DOCS))


def test_max_tokens_per_doc_keeps_each_documents_first_tokens(client_url, client_engine,
                                                             bert_dir):
    # Cut at the tokenizer's offsets: decoding ids back to text does not round-trip.
    import transformers

    tokenizer = transformers.AutoTokenizer.from_pretrained(bert_dir)
    long_doc = " ".join(MOVIES) * 4
    offsets = tokenizer(long_doc, add_special_tokens=False,
                        return_offsets_mapping=True)["offset_mapping"]
    cut = long_doc[: offsets[2][1]]
    whole, capped, short = client_engine.score(MOVIES_QUERY, [long_doc, cut, MOVIES[0]])
    # The tiny model's scores sit close together: the cap must move this one measurably.
    assert abs(whole - capped) > 1e-5
    co = cohere.ClientV2(api_key="local", base_url=client_url)
    response = co.rerank(model="rerank-v3.5", query=MOVIES_QUERY,
                         documents=[long_doc, MOVIES[0]], max_tokens_per_doc=3)
    got = {r.index: r.relevance_score for r in response.results}
    assert got[0] == pytest.approx(capped, abs=1e-6)
    assert got[1] == pytest.approx(short, abs=1e-6)
    bad = httpx.post(client_url + "/v2/rerank", timeout=60,
                     json={"query": MOVIES_QUERY, "documents": [long_doc],
                           "max_tokens_per_doc": 0})
    assert bad.status_code == 422, bad.text
    assert bad.json()["error"]["field"] == "max_tokens_per_doc"


def test_bad_request_raises_the_sdk_error_with_our_field(client_url):
    co = cohere.ClientV2(api_key="local", base_url=client_url)
    with pytest.raises(cohere.core.ApiError) as caught:
        co.rerank(model="rerank-v3.5", query="", documents=MOVIES)
    assert caught.value.status_code == 422
    assert caught.value.body["error"]["field"] == "query"


def test_the_route_fixes_the_dialect(client_url):
    # topk would pick the aws-samples notebook's dialect on /invocations; /v2/rerank is
    # Cohere's always,
    # whatever dialect= the client's custom attribute asks for.
    body = {"query": CAPITAL_QUERY, "documents": CAPITAL_DOCS, "topk": 1}
    headers = {"X-Amzn-SageMaker-Custom-Attributes": "dialect=tei"}
    response = httpx.post(client_url + "/v2/rerank", json=body, headers=headers, timeout=60)
    assert response.status_code == 200, response.text
    assert len(response.json()["results"]) == len(CAPITAL_DOCS)


@pytest.fixture
def sagemaker_url(client_url, monkeypatch):
    """Cohere's SageMaker clients (for Cohere's models from AWS Marketplace) build the
    runtime URL themselves: only its host moves to our server, as AWS_ENDPOINT_URL does for
    boto3; the body mapping, SigV4 signing and response parsing are the SDK's own."""
    import cohere.aws_client

    def local_url(*, platform, aws_region, model, stream):
        assert platform == "sagemaker" and not stream
        return f"{client_url}/endpoints/{model}/invocations"

    monkeypatch.setattr(cohere.aws_client, "get_url", local_url)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    return client_url


def test_cohere_sagemaker_client_v2_reranks_through_the_runtime_path(sagemaker_url,
                                                                     client_engine):
    # Code written for Cohere Rerank on SageMaker switches to this endpoint by its name.
    co = cohere.SagemakerClientV2(aws_region="us-east-1")
    response = co.rerank(model="reranker", query=MOVIES_QUERY, documents=MOVIES, top_n=4)
    assert isinstance(response, cohere.V2RerankResponse)
    check_results(response.results, client_engine, MOVIES_QUERY, MOVIES, 4)


def test_cohere_sagemaker_client_v1(sagemaker_url, client_engine):
    co = cohere.SagemakerClient(aws_region="us-east-1")
    response = co.rerank(model="reranker", query=CAPITAL_QUERY, documents=CAPITAL_DOCS,
                         top_n=2)
    assert isinstance(response, cohere.RerankResponse)
    check_results(response.results, client_engine, CAPITAL_QUERY, CAPITAL_DOCS, 2)
