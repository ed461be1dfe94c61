"""Two-stage retrieval: a cheap first stage proposes candidates, the reranker keeps the top 5.

This is the pipeline of Together AI's cookbook guide "How to Improve Search with Rerankers":
the first stage (there, embeddings; here, BM25 over a corpus file, or the guide's own 25
candidates for "super hero mystery action movie about bats") returns ~25 candidates, and a
cross-encoder behind a SageMaker endpoint re-scores them with the query and keeps the best.

    python -m deploy.client.examples.two_stage --endpoint reranker --region eu-west-1
    python -m deploy.client.examples.two_stage --endpoint-url http://127.0.0.1:8080   # make serve
    python -m deploy.client.examples.two_stage --endpoint reranker --corpus my_docs.txt -q "..."
"""

from __future__ import annotations

import argparse
import math
import re
import sys
from collections import Counter

import boto3
from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

from deploy.client import RerankClient, RerankClientError
from deploy.sagemaker.aws import NO_CREDENTIALS, error_code, error_message

QUERY = "super hero mystery action movie about bats"
# The 25 titles the guide's first stage returned for QUERY, in its order.
CANDIDATES = [
    "The Dark Knight", "Watchmen", "Predator", "Despicable Me 2",
    "Night at the Museum: Secret of the Tomb", "Batman v Superman: Dawn of Justice",
    "Penguins of Madagascar", "Batman & Robin", "Batman Begins", "Super 8", "Megamind",
    "The Dark Knight Rises", "Batman Returns", "The Incredibles", "The Raid",
    "Die Hard: With a Vengeance", "Kick-Ass", "Fantastic Mr. Fox", "Commando", "Tremors",
    "The Peanuts Movie", "Kung Fu Panda 2", "Crank: High Voltage", "Men in Black 3",
    "ParaNorman",
]


def tokens(text: str) -> list[str]:
    return re.findall(r"\w+", text.lower())


def bm25(query: str, corpus: list[str], k: int = 25, k1: float = 1.2, b: float = 0.75
         ) -> list[int]:
    """First stage: indices of the ``k`` best BM25 matches (Okapi BM25, no stemming)."""
    docs = [Counter(tokens(d)) for d in corpus]
    avg = sum(sum(d.values()) for d in docs) / max(len(docs), 1)
    df = Counter(term for d in docs for term in d)
    n = len(docs)

    def score(doc: Counter) -> float:
        length = sum(doc.values())
        total = 0.0
        for term in set(tokens(query)):
            if term in doc:
                idf = math.log(1 + (n - df[term] + 0.5) / (df[term] + 0.5))
                tf = doc[term]
                total += idf * tf * (k1 + 1) / (tf + k1 * (1 - b + b * length / avg))
        return total

    ranked = sorted(range(n), key=lambda i: (-score(docs[i]), i))
    return ranked[:k]


def two_stage(client: RerankClient, query: str, corpus: list[str], candidates: int = 25,
              keep: int = 5, first_stage: bool = True) -> list[dict]:
    """Candidates from BM25 (or the corpus as given), reranked; the ``keep`` best."""
    pool = bm25(query, corpus, candidates) if first_stage else list(range(len(corpus)))
    texts = [corpus[i] for i in pool]
    reranked = client.rerank(query, texts, top_n=keep)
    return [{"rank": r + 1, "corpus_index": pool[item["index"]], "first_stage_rank":
             item["index"] + 1, "relevance_score": item["relevance_score"],
             "text": texts[item["index"]]} for r, item in enumerate(reranked)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--endpoint", help="SageMaker endpoint name (not needed with"
                        " --endpoint-url)")
    parser.add_argument("--region")
    parser.add_argument("--endpoint-url", help="e.g. http://127.0.0.1:8080 for a local server")
    parser.add_argument("--query", "-q", default=QUERY)
    parser.add_argument("--corpus", help="a text file, one document per line (default: the"
                        " guide's 25 candidates, used as the first stage's output)")
    parser.add_argument("--candidates", type=int, default=25)
    parser.add_argument("--keep", type=int, default=5)
    args = parser.parse_args(argv)
    if not (args.endpoint or args.endpoint_url):
        parser.error("pass --endpoint NAME (a SageMaker endpoint) or --endpoint-url URL"
                     " (a local server, e.g. http://127.0.0.1:8080 from `make serve`)")
    if not args.endpoint_url and not boto3.Session(region_name=args.region).region_name:
        parser.error("no AWS region: pass --region (or set AWS_REGION)")
    try:
        if args.corpus:
            with open(args.corpus, encoding="utf-8") as fh:
                corpus = [line.strip() for line in fh if line.strip()]
        else:
            corpus = CANDIDATES
        client = RerankClient(args.endpoint or "local", region=args.region,
                              endpoint_url=args.endpoint_url)
        top = two_stage(client, args.query, corpus, args.candidates, args.keep,
                        first_stage=bool(args.corpus))
    except (ValueError, RerankClientError, TimeoutError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # the corpus file
        print(f"error: {args.corpus}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    except NoCredentialsError:
        print(f"error: {NO_CREDENTIALS}", file=sys.stderr)
        return 2
    except (BotoCoreError, ClientError) as exc:  # no server there, an AWS refusal, ...
        print(f"error: {error_code(exc)}: {error_message(exc)}", file=sys.stderr)
        return 2
    print(f"query: {args.query}")
    for row in top:
        print(f"{row['rank']}. {row['text']}  (score {row['relevance_score']:.4f},"
              f" first stage #{row['first_stage_rank']})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
