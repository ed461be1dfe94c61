"""A Haystack ranker component that reranks documents with a SageMaker endpoint.

    from deploy.client.haystack_ranker import SageMakerRanker

    pipeline.add_component("retriever", InMemoryBM25Retriever(document_store, top_k=25))
    pipeline.add_component("ranker", SageMakerRanker("reranker", region_name="eu-west-1"))
    pipeline.connect("retriever.documents", "ranker.documents")
    pipeline.run({"retriever": {"query": q}, "ranker": {"query": q, "top_k": 5}})

It takes what Haystack's own rankers take (``top_k``, ``meta_fields_to_embed``,
``embedding_separator``, ``score_threshold``), plus ``instruction`` for LLM rerankers that
follow one (at init or per run), and returns the documents best first with the
endpoint's 0..1 relevance score as ``score``.  Requests go through ``RerankClient`` (split
under the payload limit, throttling retried); the component serialises with its pipeline
and holds no credentials: boto3 finds them at run time.  Haystack loads a saved pipeline's
classes only from trusted modules: ``Pipeline.loads(yaml,
allowed_modules=["deploy.client.haystack_ranker"])``.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from haystack import Document, component, default_from_dict, default_to_dict

from deploy.client.rerank_client import RerankClient, client_of


@component
class SageMakerRanker:
    def __init__(self, endpoint_name: str, *, region_name: str | None = None, top_k: int = 10,
                 inference_component: str | None = None, endpoint_url: str | None = None,
                 meta_fields_to_embed: list[str] | None = None,
                 embedding_separator: str = "\n", score_threshold: float | None = None,
                 instruction: str | None = None, serverless: bool = False,
                 max_documents: int | None = None):
        _check_top_k(top_k)
        self.endpoint_name = endpoint_name
        self.region_name = region_name
        self.top_k = top_k
        self.inference_component = inference_component
        self.endpoint_url = endpoint_url
        self.meta_fields_to_embed = list(meta_fields_to_embed or [])
        self.embedding_separator = embedding_separator
        self.score_threshold = score_threshold
        self.instruction = instruction
        # A serverless endpoint takes 4 MB a request; an endpoint's RERANK_MAX_DOCUMENTS
        # below the candidates needs the list split to it.
        self.serverless = serverless
        self.max_documents = max_documents
        self._client: RerankClient | None = None

    def warm_up(self) -> None:
        if self._client is None:
            self._client = client_of(self)

    def to_dict(self) -> dict[str, Any]:
        return default_to_dict(
            self, endpoint_name=self.endpoint_name, region_name=self.region_name,
            top_k=self.top_k, inference_component=self.inference_component,
            endpoint_url=self.endpoint_url, meta_fields_to_embed=self.meta_fields_to_embed,
            embedding_separator=self.embedding_separator, score_threshold=self.score_threshold,
            instruction=self.instruction, serverless=self.serverless,
            max_documents=self.max_documents)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SageMakerRanker:
        return default_from_dict(cls, data)

    @component.output_types(documents=list[Document])
    def run(self, query: str, documents: list[Document], top_k: int | None = None,
            score_threshold: float | None = None, instruction: str | None = None
            ) -> dict[str, list[Document]]:
        top_k = self.top_k if top_k is None else top_k
        _check_top_k(top_k)
        threshold = self.score_threshold if score_threshold is None else score_threshold
        if not documents:
            return {"documents": []}
        self.warm_up()
        ranked = self._client.rerank(query, [self._text(d) for d in documents], top_n=top_k,
                                     instruction=instruction or self.instruction)
        kept = [replace(documents[r["index"]], score=r["relevance_score"]) for r in ranked]
        if threshold is not None:
            kept = [d for d in kept if d.score >= threshold]
        return {"documents": kept}

    def _text(self, document: Document) -> str:
        meta = [str(document.meta[k]) for k in self.meta_fields_to_embed
                if document.meta.get(k) is not None]
        return self.embedding_separator.join([*meta, document.content or ""])


def _check_top_k(top_k: int) -> None:
    if not isinstance(top_k, int) or top_k < 1:
        raise ValueError(f"top_k must be a positive integer, got {top_k!r}")
