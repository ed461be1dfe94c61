"""``capture-export``: the queries and candidates real users sent, from the endpoint's data
capture, as an evaluation set to judge.

    python -m deploy capture-export --endpoint reranker --capture s3://bucket/capture/ \\
        --out build/judgments/reranker

reads SageMaker's capture files under ``<capture>/<endpoint>/`` (newest first, up to
``--max-records`` requests), parses each request body in whatever format it came (the
server's own dialect parser), and writes the BEIR layout ``evaluate`` reads:

    queries.jsonl   one line per distinct query
    corpus.jsonl    one line per distinct document text
                    (query and document ids are content hashes: an export into the same
                    folder later, with more traffic, keeps the ids judged already)
    captured.trec   each query's candidates in the order they were sent: the first stage
    to_judge.tsv    query-id, corpus-id, an empty score column, the query and the document

Fill in the score column (0 = not relevant, 1, 2 = relevant; rows left empty are not
judged), save the file as ``qrels/test.tsv``, and ``make evaluate DATA=<out>
RUN=<out>/captured.trec`` measures any reranker on real traffic.
"""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path

from deploy import config as cfg
from deploy import outputs
from deploy.errors import UserError
from deploy.evaluation import dataset as ds
from deploy.sagemaker.aws import Aws, translate_errors


@translate_errors
def run(args) -> int:
    config = cfg.load(args)
    if not (config.capture or "").startswith("s3://"):
        raise UserError(f"set {config.name('capture')} to the endpoint's capture prefix"
                        " (s3://...)")
    if args.max_records < 1:
        raise UserError("--max-records must be at least 1")
    outputs.check_folder(args.out, "--out")
    s3 = Aws(config).client("s3")
    bodies, skipped = [], 0
    for line in _records(s3, config.capture, config.endpoint, args.max_records):
        body = _request_body(line)
        if body is None:
            skipped += 1
        else:
            bodies.append(body)
    queries, corpus, candidates = _collect(bodies)
    if not queries:
        raise UserError(f"no rerank request found under {_prefix(config)} ({skipped} records"
                        " could not be read)")
    try:
        _write(outputs.make_folder(Path(args.out), "--out"), queries, corpus, candidates)
    except OSError as exc:
        raise UserError(f"cannot write in --out {args.out}: {exc.strerror or exc}") from None
    print(f"{len(queries)} queries, {len(corpus)} documents from {len(bodies)} requests"
          f" ({skipped} records skipped) in {args.out}; judge {args.out}/to_judge.tsv and"
          " save it as qrels/test.tsv")
    return 0


def _prefix(config) -> str:
    return f"{config.capture.rstrip('/')}/{config.endpoint}/"


def _records(s3, capture: str, endpoint: str, limit: int):
    """Capture lines, newest file first, until ``limit`` lines."""
    bucket, _, prefix = capture[len("s3://"):].partition("/")
    prefix = f"{prefix.strip('/')}/{endpoint}/".lstrip("/")
    keys = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        keys += [o["Key"] for o in page.get("Contents", []) if o["Key"].endswith(".jsonl")]
    count = 0
    for key in sorted(keys, reverse=True):  # the keys hold yyyy/mm/dd/hh and the time
        text = s3.get_object(Bucket=bucket, Key=key)["Body"].read().decode("utf-8", "replace")
        for line in text.splitlines():
            if line.strip():
                yield line
                count += 1
                if count >= limit:
                    return


def _request_body(line: str) -> bytes | None:
    """The captured request body (JSON text or base64), or None for what is no request."""
    try:
        record = json.loads(line)
        captured = record["captureData"]["endpointInput"]
        data, encoding = captured["data"], captured.get("encoding", "JSON")
        return base64.b64decode(data) if encoding == "BASE64" else data.encode("utf-8")
    except (ValueError, KeyError, TypeError):
        return None


def _collect(bodies: list[bytes]):
    """(query id -> text, document id -> text, query id -> candidate ids in sent order)."""
    from reranker import dialects
    from reranker.errors import RerankError

    queries: dict[str, str] = {}
    corpus: dict[str, str] = {}
    candidates: dict[str, list[str]] = {}
    for body in bodies:
        try:
            request = dialects.parse(body, "application/json")
        except RerankError:
            continue
        for query, text in getattr(request, "pairs", []):
            qid = "q" + _digest(query)
            queries[qid] = query
            doc = "d" + _digest(text)
            corpus[doc] = text
            listed = candidates.setdefault(qid, [])
            if doc not in listed:
                listed.append(doc)
    return queries, corpus, candidates


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def _write(out: Path, queries: dict, corpus: dict, candidates: dict) -> None:
    out.mkdir(parents=True, exist_ok=True)
    with open(out / "queries.jsonl", "w", encoding="utf-8") as f:
        f.writelines(json.dumps({"_id": q, "text": t}, ensure_ascii=False) + "\n"
                     for q, t in queries.items())
    with open(out / "corpus.jsonl", "w", encoding="utf-8") as f:
        f.writelines(json.dumps({"_id": d, "text": t}, ensure_ascii=False) + "\n"
                     for d, t in corpus.items())
    ds.write_run(out / "captured.trec",
                 {q: [(d, float(len(docs) - i)) for i, d in enumerate(docs)]
                  for q, docs in candidates.items()}, tag="captured")
    with open(out / "to_judge.tsv", "w", encoding="utf-8") as f:
        f.write("query-id\tcorpus-id\tscore\tquery\tdocument\n")
        for q, docs in candidates.items():
            for d in docs:
                f.write(f"{q}\t{d}\t\t{_cell(queries[q])}\t{_cell(corpus[d])}\n")


def _cell(text: str) -> str:
    return " ".join(text.split())  # one line, no tabs
