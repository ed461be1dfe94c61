"""``evaluate``: rerank each judged query's first-stage candidates with one or more endpoints
and print nDCG@10, MRR@10 and Recall@10 next to the first stage's own.

    python -m deploy evaluate --endpoint reranker --data scifact/            # BM25 first stage
    python -m deploy evaluate --endpoint bge --compare qwen3 --data d/ --run bm25.trec
    python -m deploy evaluate --endpoint-url http://127.0.0.1:8080 --data d/  # make serve
    python -m deploy evaluate --model ./bge --compare model:./minilm --data d/  # no endpoint
    python -m deploy evaluate --endpoint qwen3 --instruction "..." --compare qwen3 --data d/

A local model (``--model``, or ``model:PATH`` in ``--compare``: a directory, a model.tar.gz
or a hub id, as ``make serve`` takes) is scored in this process by the engine the endpoint
runs, so models can be compared on your judgments before any endpoint exists.
``--instruction`` goes with every request to the first reranker (an LLM reranker that
follows one), whose label then says so: compared with the same reranker without it, the
table shows what the instruction changes.

A reranker that fails (an endpoint that stops answering, a model that cannot load) is left
out with its error on stderr: the others' rankings, billed already, are still measured,
printed and saved, and the exit code is 1 (2 when none was measured).

The measures are trec_eval's (ir_measures over pytrec_eval; nDCG with the judgments' grades
as linear gains).  Rankings are measured by position: a reranker's order is its own (by raw
score, ties in the first stage's order), whatever its relevances round to.
"""

from __future__ import annotations

import json
import sys
from concurrent.futures import ThreadPoolExecutor, as_completed
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path

from deploy import config as cfg
from deploy import outputs
from deploy.errors import UserError
from deploy.evaluation import dataset as ds
from deploy.evaluation import first_stage
from deploy.sagemaker.aws import error_code, error_message, runtime_session, translate_errors

Ranking = dict[str, list[tuple[str, float]]]  # query id -> [(document id, score)], best first


@dataclass(frozen=True)
class Target:
    label: str
    endpoint: str
    endpoint_url: str | None
    component: str | None
    model: str | None = None  # a local model, scored in this process
    instruction: str | None = None  # sent with every request (LLM rerankers)


@translate_errors
def run(args) -> int:
    _check_numbers(args)
    _check_outputs(args)  # before any (billed) request
    config = cfg.load(args)
    targets = _targets(config, args.compare, args.model, args.instruction)
    ds.check_folder(args.data)
    clients = {t.label: _client(config, t, args) for t in targets if t.model is None}
    data = ds.load(args.data, args.split, args.max_queries)
    candidates = (ds.read_run(args.run, data, args.depth) if args.run
                  else first_stage.bm25(data, args.depth))
    _check_candidates(candidates, args.run)
    stage = f"first stage ({Path(args.run).name if args.run else 'BM25'})"
    runs: dict[str, Ranking] = {stage: {q: [(d, float(len(docs) - i)) for i, d in enumerate(docs)]
                                        for q, docs in candidates.items()}}
    failed: dict[str, str] = {}
    for target in targets:
        try:
            with _scorer(target, clients.get(target.label)) as scorer:
                runs[target.label] = _rerank_all(scorer, target, data, candidates,
                                                 args.concurrency)
        except UserError as exc:  # the others' rankings (billed already) are still reported
            failed[target.label] = str(exc)
            print(f"error: {exc}", file=sys.stderr)
    if len(failed) == len(targets):
        return 2
    _write_report(args, _report(data, runs, stage, args.depth), runs, failed)
    return 1 if failed else 0


def _write_report(args, report: dict, runs: dict[str, Ranking], failed: dict[str, str]) -> None:
    if failed:
        report["failed"] = failed
    _table(report)
    if args.json:
        outputs.write_text(args.json, json.dumps(report, indent=2) + "\n", "--json")
    if args.save_runs:
        _save_runs(args.save_runs, runs)
    if args.chart:
        from deploy.evaluation import chart

        print(f"chart: {chart.draw(report, args.chart)}")


def _check_candidates(candidates: dict[str, list[str]], run: str | None) -> None:
    """A first stage that found nothing for any judged query measures nothing: refused (a
    run's query ids that do not match the judgments', or the wrong split).  Queries
    without candidates count as 0, as ``trec_eval -c`` counts them: said on stderr."""
    empty = [q for q, docs in candidates.items() if not docs]
    source = run or "BM25"
    if len(empty) == len(candidates):
        raise UserError(f"{source} has no candidates for any judged query (do its query ids"
                        " match qrels/<split>.tsv's?)")
    if empty:
        print(f"note: {source} has no candidates for {len(empty)} of {len(candidates)} judged"
              f" queries (e.g. {empty[0]}); they count as 0 for every row",
              file=sys.stderr)


def _check_outputs(args) -> None:
    """--json, --save-runs and --chart can be written (the chart's path as matplotlib
    names it: with .png added when it has no suffix)."""
    if args.json:
        outputs.check_file(args.json, "--json")
    if args.save_runs:
        outputs.check_folder(args.save_runs, "--save-runs")
    if args.chart:
        args.chart = outputs.chart_path(args.chart, "--chart")


def _check_numbers(args) -> None:
    for name in ("depth", "concurrency", "max_queries", "max_documents"):
        value = getattr(args, name)
        if value is not None and value < 1:
            raise UserError(f"--{name.replace('_', '-')} must be at least 1, got {value}")


def _targets(config: cfg.DeployConfig, compare: list[str], model: str | None,
             instruction: str | None = None) -> list[Target]:
    if instruction is not None and not instruction.strip():
        raise UserError("--instruction must not be empty")
    if model:
        first = Target(f"model:{model}", config.endpoint, None, None, model)
    else:
        first = Target(config.endpoint_url or _name(config.endpoint, config.component),
                       config.endpoint, config.endpoint_url, config.component)
    if instruction:
        first = replace(first, label=f"{first.label} + instruction", instruction=instruction)
    targets = [first] + [_compared(config, spec) for spec in compare]
    labels = [t.label for t in targets]
    if len(set(labels)) != len(labels):
        raise UserError(f"the same reranker twice: {', '.join(labels)}")
    return targets


def _compared(config: cfg.DeployConfig, spec: str) -> Target:
    if spec.startswith("model:") and len(spec) > len("model:"):
        return Target(spec, config.endpoint, None, None, spec[len("model:"):])
    if spec.startswith(("http://", "https://")):
        from deploy.sagemaker import locations

        return Target(spec, config.endpoint, locations.endpoint_url(spec, "--compare"), None)
    endpoint, _, component = spec.partition("/")
    if not endpoint or spec.startswith("model:"):
        raise UserError(f"--compare {spec!r}: want ENDPOINT, ENDPOINT/COMPONENT, a URL or"
                        " model:PATH")
    return Target(spec, endpoint, config.endpoint_url, component or None)


def _name(endpoint: str, component: str | None) -> str:
    return f"{endpoint}/{component}" if component else endpoint


def _client(config: cfg.DeployConfig, target: Target, args):
    """An endpoint's client, made before the data is read: a missing region or a bad
    setting is one line before minutes of loading and BM25."""
    from deploy.client import RerankClient

    try:
        return RerankClient(target.endpoint, region=config.region,
                            session=runtime_session(config, target.endpoint_url),
                            endpoint_url=target.endpoint_url,
                            max_documents=args.max_documents,
                            inference_component=target.component)
    except ValueError as exc:
        raise UserError(f"{target.label}: {exc}") from None


@contextmanager
def _scorer(target: Target, client):
    """Something with ``scores(query, documents)``: the endpoint's client, or the engine on
    a local model (closed after its ranking)."""
    if target.model is None:
        yield client
        return
    from deploy.package.local_model import resolve
    from reranker.backends.base import ModelLoadError
    from reranker.engine import Reranker
    from reranker.settings import SettingsError

    try:  # a model the engine refuses (no trained head, ...) says why, in one line
        engine = Reranker.from_dir(str(resolve(target.model)))
    except (ModelLoadError, SettingsError, OSError) as exc:
        raise UserError(f"{target.label}: {exc}") from None
    try:
        yield _LocalScorer(engine)
    finally:
        engine.close()


class _LocalScorer:
    """The engine behind the client's ``rerank``: every document, best first, with its 0..1
    relevance, ranked by raw score as the server ranks."""

    def __init__(self, engine):
        self.engine = engine

    def rerank(self, query: str, documents: list[str], *,
               instruction: str | None = None) -> list[dict]:
        from reranker.dialects.ordering import ranked
        from reranker.request import RerankRequest

        request = RerankRequest("python", [(query, d) for d in documents], documents,
                                instruction=instruction)
        result = self.engine.rerank(request)
        return [{"index": i, "relevance_score": float(result.relevance[i])}
                for i in ranked(result.raw)]


def _rerank_all(client, target: Target, data: ds.Dataset, candidates: dict[str, list[str]],
                concurrency: int) -> Ranking:
    """Every judged query's candidates, reranked; the first failure cancels the queries
    not yet sent (each one billed) and ends this reranker's ranking."""
    from rich.console import Console
    from rich.progress import Progress

    ranking: Ranking = {}
    console = Console(stderr=True)  # stdout is the table's; no bar where no one watches
    progress = Progress(console=console, transient=True, disable=not console.is_terminal)
    with progress, ThreadPoolExecutor(concurrency) as pool:
        task = progress.add_task(f"reranking with {target.label}", total=len(data.queries))
        futures = [pool.submit(_rerank_one, client, target, data, candidates, qid)
                   for qid in data.queries]
        try:
            for future in as_completed(futures):
                qid, ranked = future.result()
                ranking[qid] = ranked
                progress.advance(task)
        except BaseException:
            for future in futures:
                future.cancel()
            raise
    return {qid: ranking[qid] for qid in data.queries}


def _rerank_one(client, target: Target, data: ds.Dataset, candidates: dict[str, list[str]],
                qid: str) -> tuple[str, list[tuple[str, float]]]:
    from botocore.exceptions import BotoCoreError, ClientError

    from deploy.client import RerankClientError
    from reranker.errors import RerankError

    docs = candidates[qid]
    if not docs:
        return qid, []
    try:
        # The reranker's own order: by raw score, which still tells apart documents whose
        # relevance has reached 1.0 (an LLM reranker's confident answers).
        ranked = client.rerank(data.queries[qid], [data.corpus[d] for d in docs],
                               instruction=target.instruction)
    except (BotoCoreError, ClientError) as exc:
        raise UserError(f"{target.label}: query {qid}: {error_code(exc)}:"
                        f" {error_message(exc)}") from None
    except (ValueError, RerankClientError, RerankError) as exc:
        raise UserError(f"{target.label}: query {qid}: {exc}") from None
    return qid, [(docs[r["index"]], r["relevance_score"]) for r in ranked]


def _report(data: ds.Dataset, runs: dict[str, Ranking], stage: str, depth: int) -> dict:
    import ir_measures
    from ir_measures import RR, R, nDCG

    measures = [nDCG @ 10, RR @ 10, R @ 10]
    qrels = [ir_measures.Qrel(q, d, rel) for q, judged in data.qrels.items()
             for d, rel in judged.items()]
    per_query = {label: _per_query(measures[0], qrels, ranking)
                 for label, ranking in runs.items()}
    rows = {}
    main = next((label for label in runs if label != stage), None)
    for label, ranking in runs.items():
        values = ir_measures.calc_aggregate(measures, qrels, _scored(ranking))
        rows[label] = {"nDCG@10": values[measures[0]], "MRR@10": values[measures[1]],
                       "Recall@10": values[measures[2]]}
        if label != stage:
            rows[label]["queries_up"], rows[label]["queries_down"] = _moves(
                per_query[stage], per_query[label])
            rows[label]["p_vs_first_stage"] = _p_value(per_query[stage], per_query[label])
        if label not in (stage, main):
            rows[label]["p_vs_" + main] = _p_value(per_query[main], per_query[label])
    ceiling = ir_measures.calc_aggregate([R @ depth], qrels, _scored(runs[stage]))[R @ depth]
    return {"dataset": data.name, "queries": len(data.queries), "depth": depth,
            "first_stage": stage, f"first_stage_recall@{depth}": ceiling, "results": rows}


def _scored(ranking: Ranking):
    """Scores by position: trec_eval breaks score ties by document id, we keep our order."""
    import ir_measures

    return [ir_measures.ScoredDoc(q, d, float(len(ranked) - i))
            for q, ranked in ranking.items() for i, (d, _) in enumerate(ranked)]


def _per_query(measure, qrels, ranking: Ranking) -> dict[str, float]:
    import ir_measures

    values = {m.query_id: m.value for m in ir_measures.iter_calc([measure], qrels,
                                                                 _scored(ranking))}
    return {q: values.get(q, 0.0) for q in ranking}


def _p_value(before: dict[str, float], after: dict[str, float]) -> float | None:
    """Two-sided paired t-test of per-query nDCG@10 (None when no query differs): below
    0.05, the difference is unlikely to be the luck of these queries."""
    from scipy.stats import ttest_rel

    a = [before[q] for q in before]
    b = [after[q] for q in before]
    if len(a) < 2 or all(abs(x - y) < 1e-12 for x, y in zip(a, b)):
        return None
    return float(ttest_rel(b, a).pvalue)


def _moves(before: dict[str, float], after: dict[str, float]) -> tuple[int, int]:
    up = sum(after[q] > before[q] + 1e-9 for q in before)
    down = sum(after[q] < before[q] - 1e-9 for q in before)
    return up, down


def _table(report: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"{report['dataset']}: {report['queries']} judged queries,"
                        f" top {report['depth']} candidates reranked")
    table.add_column("ranking", overflow="fold")
    for name in ("nDCG@10", "MRR@10", "Recall@10", "up/down", "p"):
        table.add_column(name, justify="right")
    for label, row in report["results"].items():
        moves = (f"{row['queries_up']} / {row['queries_down']}" if "queries_up" in row
                 else "")
        table.add_row(label, f"{row['nDCG@10']:.4f}", f"{row['MRR@10']:.4f}",
                      f"{row['Recall@10']:.4f}", moves, _p_cell(row))
    console = Console()
    console.print(table)
    ceiling = report[f"first_stage_recall@{report['depth']}"]
    console.print(f"up/down: queries whose nDCG@10 beats/trails the first stage's; p: paired"
                  f" t-test of per-query nDCG@10 against the first stage (and the first"
                  f" reranker), below 0.05 unlikely to be luck. The candidates hold"
                  f" {ceiling:.1%} of the judged-relevant documents"
                  f" (Recall@{report['depth']}): no reranker can place the rest.")


def _p_cell(row: dict) -> str:
    cells = []
    for key, value in row.items():
        if key.startswith("p_vs_"):
            cells.append("—" if value is None else f"{value:.3g}")
    return " / ".join(cells)


def _save_runs(folder: Path, runs: dict[str, Ranking]) -> None:
    outputs.make_folder(folder, "--save-runs")
    taken: set[str] = set()
    for label, ranking in runs.items():
        base = name = "".join(c if c.isalnum() or c in "-_." else "_" for c in label)
        copy = 1
        while name in taken:  # two labels alike once cleaned: two files
            copy += 1
            name = f"{base}-{copy}"
        taken.add(name)
        try:
            ds.write_run(folder / f"{name}.trec", ranking, tag=name)
        except OSError as exc:
            raise UserError(f"cannot write in --save-runs {folder}:"
                            f" {exc.strerror or exc}") from None
