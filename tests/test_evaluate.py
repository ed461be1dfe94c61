"""``python -m deploy evaluate`` against our server through the real ``sagemaker-runtime``
client: the reranked runs are the engine's orderings, and every measure it prints equals
trec_eval's definition recomputed here by hand from the saved runs."""

from __future__ import annotations

import json
import math

import pytest
from scipy.stats import ttest_rel

from deploy.cli import main
from example_texts import CAPITAL_DOCS, CAPITAL_QUERY, MOVIES, MOVIES_QUERY, PANDA_DOCS, PANDA_QUERY

pytestmark = pytest.mark.slow  # starts a server

CORPUS = {**{f"c{i}": t for i, t in enumerate(CAPITAL_DOCS)},
          **{f"p{i}": t for i, t in enumerate(PANDA_DOCS)},
          **{f"m{i}": t for i, t in enumerate(MOVIES)}}
QUERIES = {"capital": CAPITAL_QUERY, "panda": PANDA_QUERY, "movies": MOVIES_QUERY,
           "unjudged": "a query without judgments"}
QRELS = {"capital": {"c2": 2, "c0": 1}, "panda": {"p2": 1},
         "movies": {"m0": 1, "m5": 1, "m7": 1, "m8": 2, "m11": 1, "m12": 1}}


@pytest.fixture
def beir(tmp_path):
    folder = tmp_path / "tiny"
    (folder / "qrels").mkdir(parents=True)
    with open(folder / "corpus.jsonl", "w") as f:
        for i, (doc, text) in enumerate(CORPUS.items()):
            title = {"_id": doc, "title": "", "text": text}
            f.write(json.dumps(title if i % 2 else {"_id": doc, "text": text}) + "\n")
    with open(folder / "queries.jsonl", "w") as f:
        f.writelines(json.dumps({"_id": q, "text": t}) + "\n" for q, t in QUERIES.items())
    lines = ["query-id\tcorpus-id\tscore"] + [f"{q}\t{d}\t{r}" for q, judged in QRELS.items()
                                              for d, r in judged.items()]
    (folder / "qrels" / "test.tsv").write_text("\n".join(lines) + "\n")
    return folder


def read_run(path) -> dict[str, list[str]]:
    run: dict[str, list[tuple[int, str]]] = {}
    for line in path.read_text().splitlines():
        qid, _, doc, rank, _, _ = line.split()
        run.setdefault(qid, []).append((int(rank), doc))
    return {q: [d for _, d in sorted(rows)] for q, rows in run.items()}


def ndcg10(ranked, judged) -> float:
    """trec_eval's ndcg_cut.10: the grades as linear gains, log2(rank + 1) discounts."""
    dcg = sum(judged.get(d, 0) / math.log2(i + 2) for i, d in enumerate(ranked[:10]))
    ideal = sorted(judged.values(), reverse=True)[:10]
    return dcg / sum(g / math.log2(i + 2) for i, g in enumerate(ideal))


def mrr10(ranked, judged) -> float:
    return next((1 / (i + 1) for i, d in enumerate(ranked[:10]) if judged.get(d, 0) > 0), 0.0)


def recall10(ranked, judged) -> float:
    relevant = {d for d, g in judged.items() if g > 0}
    return len(relevant & set(ranked[:10])) / len(relevant)


def evaluate(url, *args) -> int:
    return main(["evaluate", "--endpoint", "reranker", "--endpoint-url", url, *args])


def check_measures(row, runs_by_query):
    for name, measure in (("nDCG@10", ndcg10), ("MRR@10", mrr10), ("Recall@10", recall10)):
        expected = sum(measure(runs_by_query.get(q, []), QRELS[q]) for q in QRELS) / len(QRELS)
        assert row[name] == pytest.approx(expected, abs=1e-9), name


def test_bm25_then_rerank_measures_and_runs(client_url, client_engine, beir, tmp_path, capsys):
    out, runs = tmp_path / "measures.json", tmp_path / "runs"
    assert evaluate(client_url, "--data", str(beir), "--json", str(out),
                    "--save-runs", str(runs)) == 0
    printed = capsys.readouterr().out
    assert "nDCG@10" in printed and "first stage (BM25)" in printed
    report = json.loads(out.read_text())
    assert report["queries"] == 3 and report["depth"] == 100  # judged queries only
    stage = read_run(runs / "first_stage__BM25_.trec")
    reranked = read_run(next(p for p in runs.iterdir() if p.name.startswith("http")))
    # BM25 keeps what shares a term with the query; the reranker reorders exactly that.
    assert "c3" in stage["capital"] and "m2" not in stage.get("movies", [])
    for qid, candidates in stage.items():
        assert sorted(reranked[qid]) == sorted(candidates)
        scores = client_engine.score(QUERIES[qid], [CORPUS[d] for d in reranked[qid]])
        assert all(a >= b - 1e-5 for a, b in zip(scores, scores[1:])), qid
    rows = report["results"]
    check_measures(rows["first stage (BM25)"], stage)
    check_measures(rows[client_url], reranked)
    before = [ndcg10(stage.get(q, []), QRELS[q]) for q in sorted(QRELS)]
    after = [ndcg10(reranked.get(q, []), QRELS[q]) for q in sorted(QRELS)]
    expected_p = (None if before == pytest.approx(after, abs=1e-12)
                  else ttest_rel(after, before).pvalue)
    assert rows[client_url]["p_vs_first_stage"] == pytest.approx(expected_p)
    assert rows[client_url]["queries_up"] + rows[client_url]["queries_down"] <= 3


def test_a_run_file_cut_to_depth_and_a_second_reranker(client_url, beir, tmp_path):
    run = tmp_path / "first.trec"
    # m1 scores highest though listed second; unjudged queries are ignored.
    run.write_text("movies Q0 m3 1 9.0 x\nmovies Q0 m1 2 9.5 x\nmovies Q0 m8 3 1.0 x\n"
                   "capital Q0 c2 1 3.0 x\nunjudged Q0 c1 1 1.0 x\n")
    out, chart = tmp_path / "m.json", tmp_path / "m.png"
    assert evaluate(client_url, "--data", str(beir), "--run", str(run), "--depth", "2",
                    "--compare", client_url + "/", "--json", str(out),
                    "--chart", str(chart)) == 0
    assert chart.read_bytes().startswith(b"\x89PNG")
    rows = json.loads(out.read_text())["results"]
    stage = {"movies": ["m1", "m3"], "capital": ["c2"]}
    check_measures(rows["first stage (first.trec)"], stage)
    # The same server under two names ranks the same candidates the same way.
    again = dict(rows[client_url + "/"])
    assert again.pop(f"p_vs_{client_url}") is None  # nothing differs to test
    assert rows[client_url] == again
    assert rows[client_url]["Recall@10"] == rows["first stage (first.trec)"]["Recall@10"]


@pytest.mark.parametrize("change, message", [
    (lambda d, t: (d / "qrels" / "test.tsv").write_text("capital\tc0\n"), "test.tsv:1"),
    (lambda d, t: (d / "queries.jsonl").write_text('{"_id": "capital"}\n'), "queries.jsonl:1"),
    (lambda d, t: (d / "corpus.jsonl").write_text("not json\n"), "corpus.jsonl:1"),
    (lambda d, t: (d / "queries.jsonl").write_text('{"_id": "x", "text": "y"}\n'),
     "judges queries not in queries.jsonl"),
    (lambda d, t: (d / "corpus.jsonl").unlink(), "cannot read"),
    (lambda d, t: (d / "qrels" / "test.tsv").write_bytes(b"capital\tc\xff\t1\n"),
     "test.tsv: not UTF-8 text"),
    (lambda d, t: (d / "corpus.jsonl").write_text(""), "corpus.jsonl: no documents"),
    (lambda d, t: (d / "corpus.jsonl").write_text('{"_id": "c0", "text": "the a of"}\n'),
     "no document has a word BM25 can index"),
    (lambda d, t: (d / "corpus.jsonl").write_text('{"_id": "c0", "text": ' + "[" * 100000
                                                  + "]" * 100000 + "}\n"), "corpus.jsonl:1"),
])
def test_bad_data_is_one_line_naming_the_file(beir, tmp_path, capsys, change, message):
    change(beir, tmp_path)
    assert evaluate("http://127.0.0.1:9", "--data", str(beir)) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


def test_bad_arguments_and_an_unreachable_endpoint(beir, tmp_path, capsys):
    run = tmp_path / "r.trec"
    run.write_text("capital Q0 nope 1 1.0 x\n")
    assert evaluate("http://127.0.0.1:9", "--data", str(beir), "--run", str(run)) == 2
    assert "'nope' is not in corpus.jsonl" in capsys.readouterr().err
    assert evaluate("http://127.0.0.1:9", "--data", str(beir), "--depth", "0") == 2
    assert "--depth must be at least 1" in capsys.readouterr().err
    assert evaluate("http://127.0.0.1:9", "--data", str(beir),
                    "--compare", "http://127.0.0.1:9") == 2
    assert "the same reranker twice" in capsys.readouterr().err
    assert evaluate("http://127.0.0.1:9", "--data", str(tmp_path / "absent")) == 2
    assert "not a folder" in capsys.readouterr().err
    # Nothing listens on port 9: the first query's failure ends the command in one line.
    assert evaluate("http://127.0.0.1:9", "--data", str(beir)) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1


def test_a_local_model_beside_the_endpoint(client_url, client_engine, bert_dir, beir,
                                           tmp_path):
    out, runs = tmp_path / "m.json", tmp_path / "runs"
    assert main(["evaluate", "--model", str(bert_dir), "--compare", client_url,
                 "--data", str(beir), "--json", str(out), "--save-runs", str(runs)]) == 0
    rows = json.loads(out.read_text())["results"]
    assert list(rows) == ["first stage (BM25)", f"model:{bert_dir}", client_url]
    # The same model on both sides ranks alike: no difference to test.
    assert rows[client_url][f"p_vs_model:{bert_dir}"] is None
    local = read_run(next(p for p in runs.iterdir() if p.name.startswith("model")))
    for qid, ranked in local.items():
        scores = client_engine.score(QUERIES[qid], [CORPUS[d] for d in ranked])
        assert all(a >= b - 1e-5 for a, b in zip(scores, scores[1:])), qid
    check_measures(rows[f"model:{bert_dir}"], local)


def test_a_local_model_that_cannot_load_is_one_line(beir, tmp_path, capsys):
    assert main(["evaluate", "--model", str(tmp_path), "--data", str(beir)]) == 2
    assert "has no config.json" in capsys.readouterr().err
    assert evaluate("http://127.0.0.1:9", "--data", str(beir), "--compare", "model:") == 2
    assert "want ENDPOINT, ENDPOINT/COMPONENT, a URL or model:PATH" in capsys.readouterr().err


def test_an_instruction_against_the_same_reranker_without_it(llm_suite, llm_dirs, beir,
                                                             tmp_path):
    """`--instruction` goes to the first reranker only, named in its label, so comparing
    the same LLM reranker without it measures what the instruction changes; a local model
    takes it too."""
    from reranker.request import RerankRequest

    url, engine = llm_suite
    instruction = "Prefer passages that name a city."
    out, runs = tmp_path / "i.json", tmp_path / "runs"
    assert evaluate(url, "--data", str(beir), "--instruction", instruction, "--compare", url,
                    "--compare", f"model:{llm_dirs('qwen3')}", "--json", str(out),
                    "--save-runs", str(runs)) == 0
    rows = json.loads(out.read_text())["results"]
    assert list(rows)[1:] == [f"{url} + instruction", url, f"model:{llm_dirs('qwen3')}"]
    saved = {p.name: read_run(p) for p in runs.iterdir()}
    scores = {"instruction" in p.name: [line.split()[4] for line in p.read_text().splitlines()]
              for p in runs.iterdir() if p.name.startswith("http")}
    assert scores[True] != scores[False]  # it reached the model
    instructed = next(run for name, run in saved.items() if "instruction" in name)
    for qid, ranked in instructed.items():
        docs = [CORPUS[d] for d in ranked]
        request = RerankRequest("python", [(QUERIES[qid], d) for d in docs], docs,
                                instruction=instruction)
        scores = engine.rerank(request).relevance
        assert all(a >= b - 1e-5 for a, b in zip(scores, scores[1:])), qid
    assert main(["evaluate", "--model", str(llm_dirs("qwen3")), "--instruction", instruction,
                 "--data", str(beir), "--max-queries", "1"]) == 0
    assert evaluate(url, "--data", str(beir), "--instruction", " ") == 2


@pytest.mark.parametrize("lines, message", [
    ("capital Q0 c0 1 nan x\n", ":1: the score must be a finite number"),
    ("capital Q0 c0 1 2.0 x\ncapital Q0 c0 2 1.0 x\n", ":2: document 'c0' is listed twice"),
    ("other Q0 c0 1 2.0 x\n", "no candidates for any judged query"),
])
def test_a_run_trec_eval_would_refuse_is_one_line(beir, tmp_path, capsys, lines, message):
    run = tmp_path / "r.trec"
    run.write_text(lines)
    assert evaluate("http://127.0.0.1:9", "--data", str(beir), "--run", str(run)) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


def test_a_run_is_ordered_as_trec_eval_orders_it(beir, tmp_path):
    """By score, ties by document id descending; the rank column is not read."""
    from deploy.evaluation import dataset as ds

    run = tmp_path / "r.trec"
    run.write_text("capital Q0 c0 1 5.0 x\ncapital Q0 c3 - 5.0 x\ncapital Q0 c1 3 7.0 x\n"
                   "capital Q0 nowhere 4 1.0 x\n")  # beyond the depth: never read
    data = ds.load(beir)
    assert ds.read_run(run, data, 3)["capital"] == ["c1", "c3", "c0"]


def test_judgments_with_quotes_in_their_text_columns_are_all_read(beir):
    """capture-export's to_judge.tsv, judged and saved as the qrels: its query and document
    columns may open a quote that is never closed."""
    from deploy.evaluation import dataset as ds

    (beir / "qrels" / "test.tsv").write_text(
        'query-id\tcorpus-id\tscore\tquery\tdocument\n'
        'capital\tc0\t1\twhat "capital\t"To be, or not\n'
        'capital\tc2\t2\tq\td\npanda\tp2\t1\tq\t"d\n')
    assert ds.load(beir).qrels == {"capital": {"c0": 1, "c2": 2}, "panda": {"p2": 1}}


def test_saved_runs_reproduce_the_measured_order_and_never_overwrite(tmp_path):
    """Every digit of the scores (these would be one tie at six decimals, which trec_eval
    breaks by document id), and labels alike once cleaned get two files."""
    from deploy.evaluation import command

    ranking = {"q": [("b", 0.99999992), ("a", 0.99999991)]}
    command._save_runs(tmp_path, {"search/minilm": ranking, "search_minilm": ranking})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["search_minilm-2.trec",
                                                           "search_minilm.trec"]
    lines = [line.split() for line in (tmp_path / "search_minilm.trec").read_text()
             .splitlines()]
    assert [(doc, float(score)) for _, _, doc, _, score, _ in lines] == ranking["q"]


def test_one_failing_reranker_leaves_the_others_measured(client_url, beir, tmp_path, capsys):
    """The endpoint's ranking (billed already) is printed and saved though the compared
    one cannot be reached; the exit code says something failed."""
    out, runs = tmp_path / "m.json", tmp_path / "runs"
    assert evaluate(client_url, "--data", str(beir), "--compare", "http://127.0.0.1:9",
                    "--json", str(out), "--save-runs", str(runs)) == 1
    captured = capsys.readouterr()
    [line] = captured.err.strip().splitlines()
    assert line.startswith("error: http://127.0.0.1:9: query ")
    report = json.loads(out.read_text())
    assert list(report["results"]) == ["first stage (BM25)", client_url]
    assert list(report["failed"]) == ["http://127.0.0.1:9"]
    assert len(list(runs.iterdir())) == 2 and "nDCG@10" in captured.out


@pytest.mark.parametrize("command", [["evaluate", "--data", "."], ["loadtest"],
                                     ["invoke", "-q", "q", "--documents", "d"]])
def test_no_region_or_no_credentials_is_one_line_before_any_work(tmp_path, capsys,
                                                                  monkeypatch, command):
    """Said with the setting to set, before the data is read or a request is sent (no
    loadtest on us-east-1 by default, no credentials error per query)."""
    for name in ("AWS_REGION", "AWS_DEFAULT_REGION", "AWS_PROFILE", "DEPLOY_REGION",
                 "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    for name in ("AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE"):
        monkeypatch.setenv(name, str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    assert main([*command, "--endpoint", "reranker"]) == 2
    [line] = capsys.readouterr().err.strip().splitlines()
    assert line == "error: no AWS region: set --region=... (or AWS_REGION, or a profile's region)"
    assert main([*command, "--endpoint", "reranker", "--region", "eu-west-1"]) == 2
    [line] = capsys.readouterr().err.strip().splitlines()
    assert line.startswith("error: no AWS credentials found")


@pytest.mark.parametrize("qrels, message", [
    ("capital\tc0\t1\ncapital\tc0\t2\n", "test.tsv:2: query 'capital' judges document 'c0'"
                                         " twice (first on line 1)"),
    ("capital\tc0\t1.0\n", "test.tsv:1: want query-id<TAB>corpus-id<TAB>score"),
    ("capital\tc0\t0\n", "no query has a document judged relevant"),
])
def test_judgments_that_cannot_be_right_are_one_line(beir, capsys, qrels, message):
    (beir / "qrels" / "test.tsv").write_text(qrels)
    assert evaluate("http://127.0.0.1:9", "--data", str(beir)) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


def test_an_id_given_twice_is_refused(beir, capsys):
    with open(beir / "corpus.jsonl", "a") as f:
        f.write(json.dumps({"_id": "c0", "text": "another text"}) + "\n")
    assert evaluate("http://127.0.0.1:9", "--data", str(beir)) == 2
    assert "_id 'c0' again (first on line 1)" in capsys.readouterr().err


def test_long_documents_a_bom_and_unjudgeable_queries(beir, capsys):
    """capture-export's to_judge.tsv holds whole documents (past csv's 131072-character
    field limit); a spreadsheet may save a byte-order mark; a query judged all 0 is left
    out with a note rather than counted as 0 in every row."""
    from deploy.evaluation import dataset as ds

    long_text = "word " * 40000
    (beir / "qrels" / "test.tsv").write_text(
        "\ufeffcapital\tc0\t1\tq\t" + long_text + "\n"
        "panda\tp2\t0\tq\td\n", encoding="utf-8")
    data = ds.load(beir)
    assert data.qrels == {"capital": {"c0": 1}}
    assert "1 of 2 queries have no document judged relevant (e.g. panda)" in \
        capsys.readouterr().err
