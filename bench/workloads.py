"""Deterministic rerank workloads, generated offline from a word list (no data sets).

Three request shapes, as users send them:

* ``mixed100``: one query and 100 candidates of mixed lengths, the case where padding
  hurts most: mostly short passages, some medium sections, and long pages that the model
  cuts at its limit (512 tokens).
* ``opensearch10``: OpenSearch's rerank processor, 10 hits per search request.
* ``rag25``: the RAG pattern of Together AI's rerankers guide, 25 candidates from a
  retriever, keep the top 5.

Text is English-like: words drawn with Zipf frequencies from a fixed list, grouped into
sentences.  Scores of a random-head model mean nothing, so the content only has to
tokenize like real text; the length distribution is what matters, and it is seeded.
"""

from __future__ import annotations

import dataclasses
import random

WORDS = """
the of and to in a is that for it as was with be by on not he this are or his from at which
but have an they you were her she there been one all we their has would when if so no will
what can more other its into than them only some could time these may then do first any my
now such like our over man me even most made after also did many before must through back
years where much your way well down should because each just those people how too little
state good very make world still own see men work long get here between both life being under
never day same another know while last might us great old year off come since against go came
right used take three states himself few house use during without again place american around
however home small found thought went say part once general high upon school every does got
united left number course war until always away something fact though water less public put
think almost hand enough far took head yet government system better set told nothing night end
why called didn find look going asked later knew point next program city business give group
toward young days let room president side social given present several order national possible
rather second face per among form important often things looking early white case john become
large big need four within felt along children saw best church ever least power development
light seemed family interest want members others mind country area done turned although open
god service problem certain kind different thus began door help means sense whole matter
perhaps itself york times law human line above name example action company hands local show
whether five history gave today either act feet across taken past quite anything having seen
death experience body word half really week car field information money words question service
market energy river panda bear species china capital washington nevada research model search
engine ranking query document relevance score retrieval index cluster server request latency
throughput memory storage network protocol analysis review report summary chapter section
""".split()

PUNCT = [".", ".", ".", ",", ",", ";", "?"]


@dataclasses.dataclass(frozen=True)
class Request:
    """One rerank call: a query, its candidates, and how many results the client keeps."""

    query: str
    documents: list[str]
    top_n: int | None = None


@dataclasses.dataclass(frozen=True)
class Workload:
    name: str
    description: str
    requests: list[Request]

    @property
    def pairs(self) -> int:
        return sum(len(r.documents) for r in self.requests)


class TextGenerator:
    """Zipf-distributed words from :data:`WORDS`, reproducible from one seed."""

    def __init__(self, seed: int):
        self.rng = random.Random(seed)
        weights = [1.0 / (rank + 1) ** 1.07 for rank in range(len(WORDS))]
        self._cumulative = []
        total = 0.0
        for w in weights:
            total += w
            self._cumulative.append(total)

    def words(self, n: int) -> list[str]:
        return self.rng.choices(WORDS, cum_weights=self._cumulative, k=n)

    def text(self, n_words: int) -> str:
        out: list[str] = []
        sentence = 0
        for word in self.words(n_words):
            if sentence == 0 and out:
                word = word.capitalize()
            out.append(word)
            sentence += 1
            if sentence >= self.rng.randint(8, 22):
                out[-1] += self.rng.choice(PUNCT)
                sentence = 0
        return " ".join(out) + "."

    def query(self) -> str:
        return " ".join(self.words(self.rng.randint(3, 9)))

    def document_words(self) -> int:
        """Word count of one candidate: 60% passages, 25% sections, 15% long pages.

        Long pages (400-3000 words) exceed a 512-token model limit and are truncated by
        every peer, the way search hits with a full page body are.
        """
        kind = self.rng.random()
        if kind < 0.60:
            return int(min(150, max(15, self.rng.lognormvariate(4.0, 0.5))))
        if kind < 0.85:
            return self.rng.randint(150, 350)
        return self.rng.randint(400, 3000)


def make_request(gen: TextGenerator, n_docs: int, top_n: int | None = None) -> Request:
    return Request(gen.query(), [gen.text(gen.document_words()) for _ in range(n_docs)], top_n)


def mixed100(rounds: int, seed: int = 7) -> Workload:
    gen = TextGenerator(seed)
    return Workload("mixed100", "1 query x 100 mixed-length documents",
                    [make_request(gen, 100) for _ in range(rounds)])


def opensearch10(rounds: int, seed: int = 11) -> Workload:
    gen = TextGenerator(seed)
    return Workload("opensearch10", "OpenSearch rerank processor: 10 hits per request",
                    [make_request(gen, 10) for _ in range(rounds)])


def rag25(rounds: int, seed: int = 13) -> Workload:
    gen = TextGenerator(seed)
    return Workload("rag25", "RAG (Together AI's rerankers guide): 25 candidates, keep the top 5",
                    [make_request(gen, 25, top_n=5) for _ in range(rounds)])


BUILDERS = {"mixed100": mixed100, "opensearch10": opensearch10, "rag25": rag25}
# Requests per workload in a full run and in --quick (scaled by --rounds).
DEFAULT_ROUNDS = {"mixed100": 4, "opensearch10": 16, "rag25": 8}
QUICK_ROUNDS = {"mixed100": 1, "opensearch10": 4, "rag25": 2}


def build(name: str, rounds: int, seed: int | None = None) -> Workload:
    if name not in BUILDERS:
        raise ValueError(f"unknown workload {name!r}; choose from {sorted(BUILDERS)}")
    return BUILDERS[name](rounds) if seed is None else BUILDERS[name](rounds, seed)
