"""A LlamaIndex node postprocessor that reranks retrieved nodes with a SageMaker endpoint.

    from deploy.client.llamaindex_postprocessor import SageMakerRerank

    rerank = SageMakerRerank(endpoint_name="reranker", region_name="eu-west-1", top_n=5)
    engine = index.as_query_engine(similarity_top_k=25, node_postprocessors=[rerank])

Each node's text (with the metadata LlamaIndex embeds, as its own rerankers send) goes to
the endpoint through ``RerankClient``, so long candidate lists are split under the payload
limit and throttling is retried; the endpoint cuts to ``top_n`` and the nodes come back best
first with the endpoint's 0..1 relevance score as their score.
"""

from __future__ import annotations

from typing import Any

from llama_index.core.bridge.pydantic import Field, PrivateAttr
from llama_index.core.callbacks import CBEventType, EventPayload
from llama_index.core.postprocessor.types import BaseNodePostprocessor
from llama_index.core.schema import MetadataMode, NodeWithScore, QueryBundle

from deploy.client.rerank_client import RerankClient, client_of


class SageMakerRerank(BaseNodePostprocessor):
    endpoint_name: str = Field(description="SageMaker endpoint serving the reranker.")
    top_n: int = Field(default=3, gt=0, description="Nodes to keep, best first.")
    region_name: str | None = Field(default=None, description="AWS region of the endpoint.")
    inference_component: str | None = Field(
        default=None, description="The reranker's inference component, on a shared endpoint.")
    endpoint_url: str | None = Field(
        default=None, description="Another runtime URL, e.g. a local server from make serve.")
    keep_retrieval_score: bool = Field(
        default=False, description="Keep the retriever's score in metadata['retrieval_score'].")
    instruction: str | None = Field(
        default=None, description="What an LLM reranker should judge by (Qwen3-Reranker and"
        " other instruction-following rerankers); None: the endpoint's default.")
    serverless: bool = Field(
        default=False, description="A serverless endpoint: requests split at 4 MB, not 6 MB.")
    max_documents: int | None = Field(
        default=None, gt=0, description="The endpoint's RERANK_MAX_DOCUMENTS, where it is"
        " below the client's 1000: longer lists are split sooner.")
    _client: RerankClient | None = PrivateAttr(default=None)

    def __init__(self, *, client: RerankClient | None = None, **fields: Any):
        if client is not None:
            fields.setdefault("endpoint_name", client.endpoint_name)
        super().__init__(**fields)
        self._client = client

    @classmethod
    def class_name(cls) -> str:
        return "SageMakerRerank"

    @property
    def client(self) -> RerankClient:
        if self._client is None:
            self._client = client_of(self)
        return self._client

    def _postprocess_nodes(self, nodes: list[NodeWithScore],
                           query_bundle: QueryBundle | None = None) -> list[NodeWithScore]:
        if query_bundle is None:
            raise ValueError("SageMakerRerank needs the query: pass query_str or query_bundle")
        if not nodes:
            return []
        texts = [n.node.get_content(metadata_mode=MetadataMode.EMBED) for n in nodes]
        payload = {EventPayload.NODES: nodes, EventPayload.MODEL_NAME: self.endpoint_name,
                   EventPayload.QUERY_STR: query_bundle.query_str,
                   EventPayload.TOP_K: self.top_n}
        with self.callback_manager.event(CBEventType.RERANKING, payload=payload) as event:
            ranked = self.client.rerank(query_bundle.query_str, texts, top_n=self.top_n,
                                        instruction=self.instruction)
            kept = [self._scored(nodes[r["index"]], r["relevance_score"]) for r in ranked]
            event.on_end(payload={EventPayload.NODES: kept})
        return kept

    def _scored(self, node: NodeWithScore, score: float) -> NodeWithScore:
        if self.keep_retrieval_score:
            node.node.metadata["retrieval_score"] = node.score
            # Metadata, not text: a later rerank or embedding must not read the score.
            for excluded in (node.node.excluded_embed_metadata_keys,
                             node.node.excluded_llm_metadata_keys):
                if "retrieval_score" not in excluded:
                    excluded.append("retrieval_score")
        return NodeWithScore(node=node.node, score=score)
