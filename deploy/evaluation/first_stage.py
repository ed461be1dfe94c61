"""Candidates when no first-stage run is given: BM25 over the corpus (bm25s, English
stopwords), the lexical first stage OpenSearch, Elasticsearch and Vespa use by default."""

from __future__ import annotations

import warnings

from deploy.errors import UserError
from deploy.evaluation.dataset import Dataset


def bm25(dataset: Dataset, depth: int) -> dict[str, list[str]]:
    import bm25s

    ids = list(dataset.corpus)
    index = bm25s.BM25()
    try:
        with warnings.catch_warnings():  # its numpy warning on an empty vocabulary
            warnings.simplefilter("ignore", RuntimeWarning)
            index.index(bm25s.tokenize([dataset.corpus[i] for i in ids],
                                       show_progress=False), show_progress=False)
    except ValueError:  # bm25s on a vocabulary of nothing
        raise UserError("corpus.jsonl: no document has a word BM25 can index (all empty or"
                        " stopwords); give a first-stage run instead (RUN=)") from None
    qids = list(dataset.queries)
    tokens = bm25s.tokenize([dataset.queries[q] for q in qids], show_progress=False)
    found, scores = index.retrieve(tokens, k=min(depth, len(ids)), show_progress=False)
    # bm25s returns k documents even when fewer match: keep those that share a term.
    return {q: [ids[d] for d, s in zip(found[row], scores[row]) if s > 0]
            for row, q in enumerate(qids)}
