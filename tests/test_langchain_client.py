"""LangChain's SageMaker cross-encoder, unmodified, reranking through our server.

``SagemakerEndpointCrossEncoder`` builds its own boto3 ``sagemaker-runtime`` client; botocore's
AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME points that client at 127.0.0.1, so the request travels
the runtime API path exactly as it would to an endpoint.  The retriever chain is LangChain's
own: ContextualCompressionRetriever + CrossEncoderReranker (langchain-classic in LangChain 1.x).
"""

from __future__ import annotations

import pytest
from langchain_classic.retrievers import ContextualCompressionRetriever
from langchain_classic.retrievers.document_compressors import CrossEncoderReranker
from langchain_community.cross_encoders import SagemakerEndpointCrossEncoder
from langchain_core.documents import Document
from langchain_core.retrievers import BaseRetriever

from example_texts import MOVIES, MOVIES_QUERY

pytestmark = pytest.mark.slow  # starts a server

TOP_N = 3


class CandidateRetriever(BaseRetriever):
    """The first stage (BM25, k-NN) in a real chain: here every candidate, in corpus order."""

    texts: list[str]

    def _get_relevant_documents(self, query, *, run_manager=None):
        return [Document(page_content=t, metadata={"id": i}) for i, t in enumerate(self.texts)]


@pytest.fixture
def cross_encoder(client_url, monkeypatch):
    monkeypatch.setenv("AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME", client_url)
    monkeypatch.delenv("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    return SagemakerEndpointCrossEncoder(endpoint_name="reranker", region_name="us-east-1")


def test_scores_come_back_in_input_order_like_the_engine(cross_encoder, client_engine):
    pairs = [(MOVIES_QUERY, m) for m in MOVIES] + [("a different query", MOVIES[0])]
    scores = cross_encoder.score(pairs)
    assert len(scores) == len(pairs)
    expected = (client_engine.score(MOVIES_QUERY, MOVIES)
                + client_engine.score("a different query", MOVIES[:1]))
    assert scores == pytest.approx(expected, abs=1e-5)
    assert all(isinstance(s, float) and 0 < s < 1 for s in scores)


def test_compression_retriever_returns_the_top_k(cross_encoder, client_engine):
    retriever = ContextualCompressionRetriever(
        base_compressor=CrossEncoderReranker(model=cross_encoder, top_n=TOP_N),
        base_retriever=CandidateRetriever(texts=MOVIES))
    docs = retriever.invoke(MOVIES_QUERY)
    assert len(docs) == TOP_N
    # The server answers the same request with the same scores: its own top-k is exact.
    served_scores = cross_encoder.score([(MOVIES_QUERY, m) for m in MOVIES])
    best = sorted(range(len(MOVIES)), key=lambda i: -served_scores[i])[:TOP_N]
    assert [d.metadata["id"] for d in docs] == best
    assert [d.page_content for d in docs] == [MOVIES[i] for i in best]
    # ...and that ranking is the engine's, up to ties within the 1e-5 score tolerance.
    direct = client_engine.score(MOVIES_QUERY, MOVIES)
    cut = max(direct[i] for i in range(len(MOVIES)) if i not in best)
    assert all(direct[i] >= cut - 1e-5 for i in best)


def test_a_server_error_reaches_langchain_as_its_error(cross_encoder):
    with pytest.raises(ValueError, match="text_pairs"):
        cross_encoder.score([])
