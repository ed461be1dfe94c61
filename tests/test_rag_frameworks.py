"""Our rerank components for LlamaIndex, Haystack and LangChain, inside each framework's own
pipeline, calling our server through the real boto3 ``sagemaker-runtime`` client.

Each framework runs unmodified: LlamaIndex's RetrieverQueryEngine, a Haystack Pipeline with
its in-memory BM25 retriever (serialised to YAML and back), LangChain's
ContextualCompressionRetriever.  Every score that comes back is checked against the engine's
direct forward pass on the same model.
"""

from __future__ import annotations

import os

import pytest

from example_texts import CAPITAL_DOCS, CAPITAL_QUERY, MOVIES, MOVIES_QUERY

os.environ.setdefault("HAYSTACK_TELEMETRY_ENABLED", "False")  # no network here

pytestmark = pytest.mark.slow  # starts a server

TOP_N = 3


@pytest.fixture
def client(client_url, monkeypatch):
    from deploy.client import RerankClient

    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    # max_documents=4 splits the candidates over several requests, merged by the client.
    return RerankClient("reranker", endpoint_url=client_url, max_documents=4)


def check_ranking(texts, scores, engine, query=MOVIES_QUERY, corpus=MOVIES, top_n=TOP_N):
    direct = engine.score(query, corpus)
    assert len(texts) == top_n
    assert scores == sorted(scores, reverse=True)
    for text, score in zip(texts, scores):
        assert score == pytest.approx(direct[corpus.index(text)], abs=1e-5)
    # The kept texts are the engine's best, up to ties within the score tolerance.
    assert min(scores) >= sorted(direct, reverse=True)[top_n - 1] - 1e-5


# ---------------------------------------------------------------- LlamaIndex

def llama_nodes(texts):
    from llama_index.core.schema import NodeWithScore, TextNode

    return [NodeWithScore(node=TextNode(text=t, id_=f"movie-{i}"), score=0.5)
            for i, t in enumerate(texts)]


def test_llamaindex_query_engine_keeps_the_top_n(client, client_engine, monkeypatch):
    from llama_index.core import Settings, get_response_synthesizer
    from llama_index.core.llms import MockLLM
    from llama_index.core.query_engine import RetrieverQueryEngine
    from llama_index.core.retrievers import BaseRetriever

    from deploy.client.llamaindex_postprocessor import SageMakerRerank

    class Candidates(BaseRetriever):
        def _retrieve(self, query_bundle):
            return llama_nodes(MOVIES)

    # No LLM is needed to read the reranked sources; LlamaIndex's default would be OpenAI.
    monkeypatch.setattr(Settings, "_llm", MockLLM())
    rerank = SageMakerRerank(client=client, top_n=TOP_N, keep_retrieval_score=True)
    engine = RetrieverQueryEngine(
        retriever=Candidates(), node_postprocessors=[rerank],
        response_synthesizer=get_response_synthesizer(response_mode="no_text"))
    nodes = engine.query(MOVIES_QUERY).source_nodes
    check_ranking([n.node.get_content() for n in nodes], [n.score for n in nodes],
                  client_engine)
    assert all(n.node.metadata["retrieval_score"] == 0.5 for n in nodes)
    # Kept as metadata: the text a later rerank or embedding reads does not carry it.
    assert all("retrieval_score" not in n.node.get_content(metadata_mode="embed")
               for n in nodes)


def test_llamaindex_postprocessor_by_endpoint_name(client_url, client_engine):
    from deploy.client.llamaindex_postprocessor import SageMakerRerank

    rerank = SageMakerRerank(endpoint_name="reranker", endpoint_url=client_url, top_n=TOP_N)
    nodes = rerank.postprocess_nodes(llama_nodes(MOVIES), query_str=MOVIES_QUERY)
    check_ranking([n.node.get_content() for n in nodes], [n.score for n in nodes],
                  client_engine)
    assert rerank.postprocess_nodes([], query_str=MOVIES_QUERY) == []
    with pytest.raises(ValueError, match="query"):
        rerank.postprocess_nodes(llama_nodes(MOVIES))


# ---------------------------------------------------------------- Haystack

def test_haystack_pipeline_bm25_then_ranker(client_url, client_engine):
    from haystack import Document, Pipeline
    from haystack.components.retrievers.in_memory import InMemoryBM25Retriever
    from haystack.document_stores.in_memory import InMemoryDocumentStore

    from deploy.client.haystack_ranker import SageMakerRanker

    store = InMemoryDocumentStore()
    store.write_documents([Document(content=t, meta={"n": i})
                           for i, t in enumerate(CAPITAL_DOCS)])
    pipeline = Pipeline()
    pipeline.add_component("retriever", InMemoryBM25Retriever(store, top_k=10))
    pipeline.add_component("ranker", SageMakerRanker("reranker", endpoint_url=client_url))
    pipeline.connect("retriever.documents", "ranker.documents")
    # The pipeline, ranker included, survives its YAML form (what Haystack deploys from);
    # Haystack loads only modules it is told to trust.
    pipeline = Pipeline.loads(pipeline.dumps(), allowed_modules=[SageMakerRanker.__module__])
    out = pipeline.run({"retriever": {"query": CAPITAL_QUERY},
                        "ranker": {"query": CAPITAL_QUERY, "top_k": 2}},
                       include_outputs_from={"retriever"})
    candidates = [d.content for d in out["retriever"]["documents"]]
    assert sorted(candidates) == sorted(CAPITAL_DOCS)  # every document says "capital"
    docs = out["ranker"]["documents"]
    check_ranking([d.content for d in docs], [d.score for d in docs], client_engine,
                  query=CAPITAL_QUERY, corpus=CAPITAL_DOCS, top_n=2)
    assert all(isinstance(d.meta["n"], int) for d in docs)


def test_haystack_ranker_embeds_meta_and_cuts_by_threshold(client_url, client_engine):
    from haystack import Document

    from deploy.client.haystack_ranker import SageMakerRanker

    ranker = SageMakerRanker("reranker", endpoint_url=client_url, top_k=len(MOVIES),
                             meta_fields_to_embed=["year"], embedding_separator=" | ")
    docs = [Document(content=t, meta={"year": 2000 + i}) for i, t in enumerate(MOVIES)]
    sent = [f"{2000 + i} | {t}" for i, t in enumerate(MOVIES)]
    ranked = ranker.run(query=MOVIES_QUERY, documents=docs)["documents"]
    direct = client_engine.score(MOVIES_QUERY, sent)
    for d in ranked:
        assert d.score == pytest.approx(direct[d.meta["year"] - 2000], abs=1e-5)
    # A threshold in the widest gap between neighbouring scores keeps exactly those above it.
    scores = [d.score for d in ranked]
    gap = max(range(len(scores) - 1), key=lambda i: scores[i] - scores[i + 1])
    threshold = (scores[gap] + scores[gap + 1]) / 2
    kept = ranker.run(query=MOVIES_QUERY, documents=docs, score_threshold=threshold)
    assert [d.content for d in kept["documents"]] == [d.content for d in ranked[:gap + 1]]
    assert ranker.run(query=MOVIES_QUERY, documents=[]) == {"documents": []}
    with pytest.raises(ValueError, match="top_k"):
        ranker.run(query=MOVIES_QUERY, documents=docs, top_k=0)


def test_haystack_ranker_splits_to_the_endpoints_document_limit(client_url, client_engine):
    """An endpoint whose RERANK_MAX_DOCUMENTS is below the candidates: max_documents splits
    the list, the ranking is over all of them, and the setting serialises with the pipeline."""
    from haystack import Document

    from deploy.client.haystack_ranker import SageMakerRanker

    ranker = SageMakerRanker("reranker", endpoint_url=client_url, top_k=3, max_documents=2,
                             serverless=True)
    ranked = ranker.run(query=MOVIES_QUERY, documents=[Document(content=t) for t in MOVIES])
    direct = client_engine.score(MOVIES_QUERY, MOVIES)
    best = sorted(range(len(MOVIES)), key=lambda i: -direct[i])[:3]
    assert [d.content for d in ranked["documents"]] == [MOVIES[i] for i in best]
    assert ranker._client.max_documents == 2 and ranker._client.payload_limit == 4 << 20
    again = SageMakerRanker.from_dict(ranker.to_dict())
    assert (again.max_documents, again.serverless) == (2, True)


# ---------------------------------------------------------------- LangChain

def test_langchain_compression_retriever_with_scores(client, client_engine):
    from langchain_classic.retrievers import ContextualCompressionRetriever
    from langchain_core.documents import Document
    from langchain_core.retrievers import BaseRetriever

    from deploy.client.langchain_compressor import SageMakerRerank

    class Candidates(BaseRetriever):
        def _get_relevant_documents(self, query, *, run_manager=None):
            return [Document(page_content=t, metadata={"id": i}) for i, t in enumerate(MOVIES)]

    retriever = ContextualCompressionRetriever(
        base_compressor=SageMakerRerank(client=client, top_n=TOP_N),
        base_retriever=Candidates())
    docs = retriever.invoke(MOVIES_QUERY)
    check_ranking([d.page_content for d in docs],
                  [d.metadata["relevance_score"] for d in docs], client_engine)
    assert [MOVIES[d.metadata["id"]] for d in docs] == [d.page_content for d in docs]


def test_langchain_compressor_refuses_unknown_settings():
    from pydantic import ValidationError

    from deploy.client.langchain_compressor import SageMakerRerank

    with pytest.raises(ValidationError, match="top_k"):
        SageMakerRerank(endpoint_name="reranker", top_k=3)


def test_langchain_and_llamaindex_take_the_endpoints_limits_and_pickle(client_url):
    """A serverless endpoint's 4 MB and an endpoint's RERANK_MAX_DOCUMENTS reach the client,
    as Haystack's ranker takes them; a used compressor pickles (without its boto3 client)."""
    import pickle

    from deploy.client import langchain_compressor, llamaindex_postprocessor

    for module in (langchain_compressor, llamaindex_postprocessor):
        rerank = module.SageMakerRerank(endpoint_name="reranker", endpoint_url=client_url,
                                        serverless=True, max_documents=7)
        assert (rerank.client.payload_limit, rerank.client.max_documents) == (4 << 20, 7)
    compressor = langchain_compressor.SageMakerRerank(endpoint_name="reranker",
                                                      endpoint_url=client_url)
    assert compressor.client is not None  # made, as after a first call
    again = pickle.loads(pickle.dumps(compressor))
    assert again.endpoint_url == client_url and again.client is not compressor.client


# ---------------------------------------------------------------- instructions, all three

def test_each_framework_sends_its_instruction_to_an_llm_reranker(llm_suite):
    """An instruction-following reranker behind each framework's slot: the instruction
    set on the component (or, in Haystack, per run) reaches every request."""
    from haystack import Document as HaystackDocument
    from langchain_core.documents import Document as LangChainDocument

    from deploy.client.haystack_ranker import SageMakerRanker
    from deploy.client.langchain_compressor import SageMakerRerank as LangChainRerank
    from deploy.client.llamaindex_postprocessor import SageMakerRerank as LlamaIndexRerank
    from reranker.request import RerankRequest

    url, engine = llm_suite
    instruction = "Prefer passages that name a city."
    pairs = [(CAPITAL_QUERY, d) for d in CAPITAL_DOCS]
    want = engine.rerank(RerankRequest("cohere", pairs, CAPITAL_DOCS, instruction=instruction)
                         ).relevance
    plain = engine.rerank(RerankRequest("cohere", pairs, CAPITAL_DOCS)).relevance
    assert abs(want - plain).max() > 1e-4
    every = len(CAPITAL_DOCS)
    common = {"endpoint_name": "reranker", "endpoint_url": url, "instruction": instruction}

    nodes = LlamaIndexRerank(**common, top_n=every).postprocess_nodes(
        llama_nodes(CAPITAL_DOCS), query_str=CAPITAL_QUERY)
    scored = {"llamaindex": {n.node.get_content(): n.score for n in nodes}}
    kept = LangChainRerank(**common, top_n=every).compress_documents(
        [LangChainDocument(page_content=t) for t in CAPITAL_DOCS], CAPITAL_QUERY)
    scored["langchain"] = {d.page_content: d.metadata["relevance_score"] for d in kept}
    ranker = SageMakerRanker("reranker", endpoint_url=url, top_k=every)
    ranked = ranker.run(query=CAPITAL_QUERY, documents=[HaystackDocument(content=t)
                                                        for t in CAPITAL_DOCS],
                        instruction=instruction)["documents"]
    scored["haystack"] = {d.content: d.score for d in ranked}
    assert SageMakerRanker.from_dict(SageMakerRanker(
        "reranker", instruction=instruction).to_dict()).instruction == instruction
    for framework, scores in scored.items():
        assert [scores[t] for t in CAPITAL_DOCS] == pytest.approx(list(want), abs=1e-5), \
            framework
