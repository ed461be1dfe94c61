"""Relevance judgments in the BEIR layout, and first-stage runs in TREC format.

    corpus.jsonl     {"_id", "title"?, "text"} per line
    queries.jsonl    {"_id", "text"} per line
    qrels/<split>.tsv  query-id, corpus-id, score (a header line first; more columns are
                       ignored, a row with an empty score is not judged)

A document is scored as ``title + " " + text``, as BEIR's reranking evaluation sends it.
Every malformed line is a UserError naming the file and the line.
"""

from __future__ import annotations

import csv
import json
import math
from dataclasses import dataclass
from pathlib import Path

from deploy.errors import UserError


@dataclass
class Dataset:
    name: str
    corpus: dict[str, str]              # document id -> the text the reranker reads
    queries: dict[str, str]             # judged query id -> text
    qrels: dict[str, dict[str, int]]    # query id -> {document id: relevance}


def load(folder: Path, split: str = "test", max_queries: int | None = None) -> Dataset:
    folder = Path(folder)
    if not folder.is_dir():
        raise UserError(f"{folder}: not a folder (want corpus.jsonl, queries.jsonl, qrels/)")
    qrels = _qrels(folder / "qrels" / f"{split}.tsv")
    texts = {row["_id"]: row["text"] for row in _jsonl(folder / "queries.jsonl", "text")}
    missing = sorted(set(qrels) - set(texts))
    if missing:
        raise UserError(f"{folder}/qrels/{split}.tsv judges queries not in queries.jsonl:"
                        f" {', '.join(missing[:5])}")
    judged = sorted(qrels)[:max_queries] if max_queries else sorted(qrels)
    corpus = {row["_id"]: f"{row.get('title') or ''} {row['text']}".strip()
              for row in _jsonl(folder / "corpus.jsonl", "text")}
    if not corpus:
        raise UserError(f"{folder}/corpus.jsonl: no documents")
    return Dataset(name=folder.name, corpus=corpus, queries={q: texts[q] for q in judged},
                   qrels={q: qrels[q] for q in judged})


def read_run(path: Path, dataset: Dataset, depth: int) -> dict[str, list[str]]:
    """A TREC run (``qid Q0 docid rank score tag``) -> the top ``depth`` document ids per
    judged query, ordered as trec_eval orders them: by score, ties by document id
    descending (the rank column is not read, as trec_eval does not read it)."""
    rows: dict[str, dict[str, tuple[float, int]]] = {}
    for number, line in _lines(Path(path)):
        parts = line.split()
        if len(parts) != 6:
            raise UserError(f"{path}:{number}: want 'qid Q0 docid rank score tag'")
        qid, _, doc, _, score, _ = parts
        try:
            value = float(score)
        except ValueError:
            raise UserError(f"{path}:{number}: the score must be a number") from None
        if not math.isfinite(value):
            raise UserError(f"{path}:{number}: the score must be a finite number")
        if qid not in dataset.queries:
            continue
        if doc in rows.setdefault(qid, {}):
            raise UserError(f"{path}:{number}: document {doc!r} is listed twice for query"
                            f" {qid!r} (first on line {rows[qid][doc][1]})")
        rows[qid][doc] = (value, number)
    return {q: _top(path, rows.get(q, {}), dataset, depth) for q in dataset.queries}


def _top(path: Path, scored: dict[str, tuple[float, int]], dataset: Dataset, depth: int
         ) -> list[str]:
    """The best ``depth`` documents; each must be in the corpus (the reranker reads it)."""
    top = sorted(scored, key=lambda doc: (scored[doc][0], doc), reverse=True)[:depth]
    for doc in top:
        if doc not in dataset.corpus:
            raise UserError(f"{path}:{scored[doc][1]}: document {doc!r} is not in"
                            " corpus.jsonl")
    return top


def write_run(path: Path, rankings: dict[str, list[tuple[str, float]]], tag: str) -> None:
    """Scores as the reranker gave them, every digit kept: rounded, scores a few 1e-7
    apart would tie, and trec_eval orders ties by document id, not as they were measured
    (exact ties still are: the table keeps the first stage's order for them)."""
    with open(path, "w") as out:
        for qid, ranked in rankings.items():
            for rank, (doc, score) in enumerate(ranked, 1):
                out.write(f"{qid} Q0 {doc} {rank} {float(score)!r} {tag}\n")


def _qrels(path: Path) -> dict[str, dict[str, int]]:
    qrels: dict[str, dict[str, int]] = {}
    try:
        with open(path, newline="", encoding="utf-8") as f:
            # No quoting: capture-export's to_judge.tsv carries texts with quotes.
            reader = csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE)
            for number, row in enumerate(reader, 1):
                if number == 1 and len(row) >= 3 and not _is_int(row[2]):
                    continue  # the header line
                if len(row) >= 3 and not row[2].strip():
                    continue  # not judged (yet): capture-export's to_judge.tsv
                if len(row) < 3 or not _is_int(row[2]):
                    raise UserError(f"{path}:{number}: want query-id<TAB>corpus-id<TAB>score")
                qrels.setdefault(row[0], {})[row[1]] = int(row[2])
    except OSError as exc:
        raise UserError(f"cannot read {path}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise UserError(f"{path}: not UTF-8 text") from None
    if not qrels:
        raise UserError(f"{path}: no judgments")
    return qrels


def _jsonl(path: Path, text_field: str):
    for number, line in _lines(path):
        try:
            row = json.loads(line)
        except (ValueError, RecursionError):
            raise UserError(f"{path}:{number}: not a JSON object") from None
        if not isinstance(row, dict) or not isinstance(row.get("_id"), (str, int)) \
                or not isinstance(row.get(text_field), str):
            raise UserError(f"{path}:{number}: want {{\"_id\", \"{text_field}\"}}")
        row["_id"] = str(row["_id"])
        yield row


def _lines(path: Path):
    try:
        with open(path, encoding="utf-8") as f:
            for number, line in enumerate(f, 1):
                if line.strip():
                    yield number, line.strip()
    except OSError as exc:
        raise UserError(f"cannot read {path}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise UserError(f"{path}: not UTF-8 text") from None


def _is_int(value: str) -> bool:
    try:
        int(value)
    except ValueError:
        return False
    return True
