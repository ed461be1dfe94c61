"""Relevance judgments in the BEIR layout, and first-stage runs in TREC format.

    corpus.jsonl     {"_id", "title"?, "text"} per line
    queries.jsonl    {"_id", "text"} per line
    qrels/<split>.tsv  query-id, corpus-id, score (a header line first; more columns are
                       ignored, a row with an empty score is not judged)

A document is scored as ``title + " " + text``, as BEIR's reranking evaluation sends it.
Every malformed line, and an id given twice, is a UserError naming the file and the line.
A query whose judgments are all 0 is left out, with a note: no ranking can score on it, and
counted as 0 it would only pull every row's average down alike.
"""

from __future__ import annotations

import json
import math
import sys
from dataclasses import dataclass
from pathlib import Path

from deploy.errors import UserError


@dataclass
class Dataset:
    name: str
    corpus: dict[str, str]              # document id -> the text the reranker reads
    queries: dict[str, str]             # judged query id -> text
    qrels: dict[str, dict[str, int]]    # query id -> {document id: relevance}


def check_folder(folder: Path) -> None:
    """A folder to read, before anything slower (the endpoints' clients, loading, BM25)."""
    if not Path(folder).is_dir():
        raise UserError(f"{folder}: not a folder (want corpus.jsonl, queries.jsonl, qrels/)")


def load(folder: Path, split: str = "test", max_queries: int | None = None) -> Dataset:
    folder = Path(folder)
    check_folder(folder)
    qrels = _with_relevant(_qrels(folder / "qrels" / f"{split}.tsv"), f"qrels/{split}.tsv")
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
    (exact ties still are: the table keeps the reranker's own order for them)."""
    with open(path, "w") as out:
        for qid, ranked in rankings.items():
            for rank, (doc, score) in enumerate(ranked, 1):
                out.write(f"{qid} Q0 {doc} {rank} {float(score)!r} {tag}\n")


def _qrels(path: Path) -> dict[str, dict[str, int]]:
    """Tab-separated rows split by hand, not by csv: capture-export's to_judge.tsv carries
    whole document texts (quotes included, longer than csv's field limit)."""
    qrels: dict[str, dict[str, int]] = {}
    lines: dict[tuple[str, str], int] = {}
    for index, (number, line) in enumerate(_lines(path, strip=False)):
        row = line.rstrip("\r\n").split("\t")
        if index == 0 and len(row) >= 3 and not _reads_as(float, row[2]):
            continue  # the header line ("score"; a first row scored 1.0 is no header)
        if len(row) >= 3 and not row[2].strip():
            continue  # not judged (yet): capture-export's to_judge.tsv
        if len(row) < 3 or not _reads_as(int, row[2]):
            raise UserError(f"{path}:{number}: want query-id<TAB>corpus-id<TAB>score")
        key = (row[0], row[1])
        if key in lines:
            raise UserError(f"{path}:{number}: query {row[0]!r} judges document {row[1]!r}"
                            f" twice (first on line {lines[key]})")
        lines[key] = number
        qrels.setdefault(row[0], {})[row[1]] = int(row[2])
    if not qrels:
        raise UserError(f"{path}: no judgments")
    return qrels


def _with_relevant(qrels: dict[str, dict[str, int]], name: str) -> dict[str, dict[str, int]]:
    kept = {q: judged for q, judged in qrels.items() if any(r > 0 for r in judged.values())}
    if not kept:
        raise UserError(f"{name}: no query has a document judged relevant (score > 0)")
    if len(kept) < len(qrels):
        left = sorted(set(qrels) - set(kept))
        print(f"note: {name}: {len(left)} of {len(qrels)} queries have no document judged"
              f" relevant (e.g. {left[0]}); they are left out", file=sys.stderr)
    return kept


def _jsonl(path: Path, text_field: str):
    seen: dict[str, int] = {}
    for number, line in _lines(path):
        try:
            row = json.loads(line)
        except (ValueError, RecursionError):
            raise UserError(f"{path}:{number}: not a JSON object") from None
        if not isinstance(row, dict) or not isinstance(row.get("_id"), (str, int)) \
                or not isinstance(row.get(text_field), str):
            raise UserError(f"{path}:{number}: want {{\"_id\", \"{text_field}\"}}")
        row["_id"] = str(row["_id"])
        if row["_id"] in seen:
            raise UserError(f"{path}:{number}: _id {row['_id']!r} again (first on line"
                            f" {seen[row['_id']]})")
        seen[row["_id"]] = number
        yield row


def _lines(path: Path, strip: bool = True):
    """Non-blank lines with their numbers; a byte-order mark (spreadsheet exports) is
    dropped.  ``strip=False`` keeps the spaces a tab-separated cell may start with."""
    try:
        with open(path, encoding="utf-8-sig", newline="" if not strip else None) as f:
            for number, line in enumerate(f, 1):
                if line.strip():
                    yield number, line.strip() if strip else line
    except OSError as exc:
        raise UserError(f"cannot read {path}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise UserError(f"{path}: not UTF-8 text") from None


def _reads_as(kind: type, value: str) -> bool:
    """Whether ``kind(value)`` reads (int: a judgment's grade; float: any number at all)."""
    try:
        kind(value)
    except ValueError:
        return False
    return True
