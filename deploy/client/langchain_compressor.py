"""A LangChain document compressor that reranks retrieved documents with a SageMaker endpoint.

    from langchain_classic.retrievers import ContextualCompressionRetriever
    from deploy.client.langchain_compressor import SageMakerRerank

    retriever = ContextualCompressionRetriever(
        base_compressor=SageMakerRerank(endpoint_name="reranker", region_name="eu-west-1"),
        base_retriever=vector_store.as_retriever(search_kwargs={"k": 25}))

LangChain's own ``SagemakerEndpointCrossEncoder`` works too (it sends every pair in one
request and sorts on the client).  This one asks the endpoint for the top ``top_n`` in the
Cohere shape through ``RerankClient``: long candidate lists are split under the payload
limit, throttling is retried, and each kept document carries its 0..1 score in
``metadata["relevance_score"]``, as LangChain's Cohere reranker does.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from langchain_core.callbacks import Callbacks
from langchain_core.documents import BaseDocumentCompressor, Document
from pydantic import ConfigDict, Field, PrivateAttr

from deploy.client.rerank_client import RerankClient, client_of


class SageMakerRerank(BaseDocumentCompressor):
    model_config = ConfigDict(extra="forbid")

    endpoint_name: str
    top_n: int | None = Field(default=3, gt=0)
    region_name: str | None = None
    inference_component: str | None = None
    endpoint_url: str | None = None
    # What an LLM reranker should judge by (Qwen3-Reranker and other instruction-following
    # rerankers); None: the endpoint's default.
    instruction: str | None = None
    # A serverless endpoint takes 4 MB a request; an endpoint's RERANK_MAX_DOCUMENTS below
    # the client's 1000 splits lists sooner.
    serverless: bool = False
    max_documents: int | None = Field(default=None, gt=0)
    _client: RerankClient | None = PrivateAttr(default=None)

    def __init__(self, *, client: RerankClient | None = None, **fields: Any):
        if client is not None:
            fields.setdefault("endpoint_name", client.endpoint_name)
        super().__init__(**fields)
        self._client = client

    def __getstate__(self) -> dict:
        """Pickled without the boto3 client (made again on first use): LangChain pickles
        compressors, and a client holds a session that does not pickle."""
        state = super().__getstate__()
        private = dict(state.get("__pydantic_private__") or {})
        private["_client"] = None
        return {**state, "__pydantic_private__": private}

    @property
    def client(self) -> RerankClient:
        if self._client is None:
            self._client = client_of(self)
        return self._client

    def compress_documents(self, documents: Sequence[Document], query: str,
                           callbacks: Callbacks | None = None) -> Sequence[Document]:
        if not documents:
            return []
        texts = [d.page_content for d in documents]
        ranked = self.client.rerank(query, texts, top_n=self.top_n,
                                    instruction=self.instruction)
        return [_scored(documents[r["index"]], r["relevance_score"]) for r in ranked]


def _scored(document: Document, score: float) -> Document:
    metadata = {**document.metadata, "relevance_score": score}
    return Document(page_content=document.page_content, metadata=metadata, id=document.id)
