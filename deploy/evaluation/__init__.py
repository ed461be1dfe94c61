"""``evaluate``: measure a reranker on relevance judgments, against the first stage it reranks.

dataset.py reads a BEIR-format folder (and a first-stage run in TREC format), first_stage.py
proposes candidates with BM25 when no run is given, command.py reranks every judged query
through each endpoint and prints nDCG@10, MRR@10 and Recall@10 side by side.
"""
