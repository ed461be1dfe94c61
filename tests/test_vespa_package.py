"""`python -m deploy vespa` writes a complete application package, and the model input that
a real Vespa assembles from it is the model's own pair encoding, and scores like it.

No Vespa runs here: tests/vespa_engine.py emulates what Vespa computes (the tokenizer
settings its config model forces, Embed.asTensor, TokenTransformer's token functions) from
the package's own files, and the package's ONNX file runs on the result.
"""

import json
import re
import shutil
import xml.etree.ElementTree as ET

import numpy as np
import onnxruntime as ort
import pytest
import torch
import transformers
from tokenizers import Tokenizer

from deploy.__main__ import main
from deploy.integrations.vespa.application import _score
from vespa_engine import Schema

LENGTH, QUERY_TOKENS = 64, 12
QUERIES = ["what is the capital of the united states", "pandas",
           "capital city " * 12]  # longer than the query budget
DOCS = [
    "Washington, D.C. is the capital of the United States.",
    "The giant panda is a bear species endemic to China.",
    "x",
    "the giant panda is a bear species endemic to china " * 20,  # longer than its budget
]
SPECIAL = {"bert": 3, "xlmr": 4, "deberta": 3}


def run_vespa(model_dir, out, *flags) -> int:
    return main(["vespa", "--model-dir", str(model_dir), "--out", str(out), *flags])


@pytest.fixture(scope="module", params=["bert", "xlmr", "deberta"])
def package(request, model_dirs, tmp_path_factory):
    """The package for a tiny model without onnx/: the command exports the model itself."""
    kind = request.param
    tmp = tmp_path_factory.mktemp(f"vespa-{kind}")
    model_dir = tmp / "model"
    shutil.copytree(model_dirs(kind), model_dir, ignore=shutil.ignore_patterns("onnx"))
    out = tmp / "app"
    assert run_vespa(model_dir, out, "--max-length", str(LENGTH), "--query-tokens",
                     str(QUERY_TOKENS), "--rerank-count", "50") == 0
    return kind, model_dir, out


def test_files_exist_and_parse(package):
    kind, _, app = package
    services = ET.parse(app / "services.xml").getroot()
    components = {c.get("id"): c for c in services.iter("component")}
    assert {c.get("type") for c in components.values()} == {"hugging-face-tokenizer"}
    path = components["tokenizer"].find("model").get("path")
    assert not path.startswith("http") and (app / path).is_file()
    Tokenizer.from_file(str(app / path))
    assert services.find("content/documents/document").get("type") == "doc"

    schema = Schema(app)
    assert schema.onnx_file.is_file()
    ort.InferenceSession(str(schema.onnx_file))
    assert "embed tokenizer" in schema.text and "index: enable-bm25" in schema.text
    assert re.search(r"first-phase \{\s*expression \{\s*bm25\(text\)", schema.text)
    assert re.search(r"global-phase \{\s*expression \{\s*onnx\(crossencoder\)\{d0:0,d1:0\}",
                     schema.text)
    assert "rerank-count: 50" in schema.text
    assert schema.query_size == QUERY_TOKENS
    assert schema.doc_size == LENGTH - QUERY_TOKENS - SPECIAL[kind]
    if kind == "bert":
        assert f"tokenInputIds({LENGTH}, query(q_tokens), attribute(text_tokens))" in schema.text
        assert "input token_type_ids: ce_token_type_ids" in schema.text
        assert f"tokenTypeIds({LENGTH}," in schema.text
    elif kind == "xlmr":  # <s>=0, </s>=2, the empty middle argument, no token_type_ids
        assert (f"customTokenInputIds(0, 2, {LENGTH}, query(q_tokens), no_tokens,"
                " attribute(text_tokens))") in schema.text
        assert "token_type_ids" not in schema.text and "tokenTypeIds" not in schema.text
    else:  # DeBERTa-v2: [CLS]=1, [SEP]=2
        assert f"customTokenInputIds(1, 2, {LENGTH}, query(q_tokens), attribute(" in schema.text

    feed = json.loads((app / "ext" / "feed.json").read_text())
    assert feed and all(d["put"].startswith("id:doc:doc::") and d["fields"]["text"]
                        for d in feed)
    for body in json.loads((app / "ext" / "queries.json").read_text()):
        assert body["yql"].startswith("select") and body["ranking.profile"] == "rerank"
        assert body["input.query(q_tokens)"] == "embed(tokenizer, @query)"
    assert "vespa deploy" in (app / "README.md").read_text()


def hf_pair(hf, query: str, doc: str, query_budget: int, doc_budget: int) -> dict:
    """The Hugging Face pair encoding with the query cut to its budget and the document to
    its own: truncation only_first / only_second, one side cut at a time."""
    q, d = _length(hf, query), _length(hf, doc)
    special = hf.num_special_tokens_to_add(pair=True)
    if q > query_budget:
        return hf(query, doc, truncation="only_first", max_length=query_budget + d + special)
    return hf(query, doc, truncation="only_second", max_length=q + min(d, doc_budget) + special)


def _length(hf, text: str) -> int:
    return len(hf(text, add_special_tokens=False)["input_ids"])


def _pairs(hf, schema: Schema) -> list[tuple[str, str]]:
    """Every (query, document) where at most one side is over its budget; both kinds of cut
    are among them."""
    fits = lambda text, budget: _length(hf, text) <= budget  # noqa: E731
    pairs = [(q, d) for q in QUERIES for d in DOCS
             if fits(q, schema.query_size) or fits(d, schema.doc_size)]
    assert any(not fits(q, schema.query_size) for q, _ in pairs)
    assert any(not fits(d, schema.doc_size) for _, d in pairs)
    return pairs


def test_vespa_builds_the_hugging_face_pair_encoding(package):
    kind, model_dir, app = package
    hf = transformers.AutoTokenizer.from_pretrained(model_dir)
    schema = Schema(app)
    for query, doc in _pairs(hf, schema):
        expected = hf_pair(hf, query, doc, schema.query_size, schema.doc_size)
        vespa = schema.model_inputs(query, doc)
        n = len(expected["input_ids"])
        assert n <= LENGTH
        assert vespa["input_ids"] == expected["input_ids"] + [0] * (LENGTH - n), (query, doc)
        assert vespa["attention_mask"] == [1] * n + [0] * (LENGTH - n)
        if "token_type_ids" in vespa:
            assert vespa["token_type_ids"][:n] == expected["token_type_ids"]


def test_vespa_inputs_score_like_torch_on_the_pair_encoding(package):
    kind, model_dir, app = package
    hf = transformers.AutoTokenizer.from_pretrained(model_dir)
    model = transformers.AutoModelForSequenceClassification.from_pretrained(model_dir).eval()
    schema = Schema(app)
    session = ort.InferenceSession(str(schema.onnx_file))
    for query, doc in _pairs(hf, schema):
        encoded = hf_pair(hf, query, doc, schema.query_size, schema.doc_size)
        with torch.inference_mode():
            expected = model(**{k: torch.tensor([v]) for k, v in encoded.items()}).logits[0]
        feed = {k: np.array([v], dtype=np.int64) for k, v in
                schema.model_inputs(query, doc).items()}
        np.testing.assert_allclose(session.run(None, feed)[0][0], expected.numpy(), atol=1e-4,
                                   rtol=0, err_msg=f"{kind}: {query!r} / {doc!r}")


def test_document_budget_sets_the_sequence(model_dirs, tmp_path):
    model_dir = tmp_path / "model"
    shutil.copytree(model_dirs("xlmr"), model_dir)
    out = tmp_path / "app"
    assert run_vespa(model_dir, out, "--query-tokens", "8", "--document-tokens", "100") == 0
    schema = Schema(out)
    assert (schema.query_size, schema.doc_size) == (8, 100)
    assert "customTokenInputIds(0, 2, 112, " in schema.text  # 8 + 100 + 4 special tokens
    assert "112 tokens" in (out / "README.md").read_text()


def test_budgets_over_the_model_limit_are_one_line_errors(model_dirs, tmp_path, capsys):
    model_dir = tmp_path / "model"
    shutil.copytree(model_dirs("bert"), model_dir, ignore=shutil.ignore_patterns("onnx"))
    capsys.readouterr()  # building the tiny model writes progress bars
    assert run_vespa(model_dir, tmp_path / "a", "--query-tokens", "64",
                     "--document-tokens", "500") == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "512" in err and "\n" not in err
    assert not (tmp_path / "a").exists() and not (model_dir / "onnx").exists()
    assert run_vespa(model_dir, tmp_path / "b", "--document-tokens", "3") == 2
    assert capsys.readouterr().err.startswith("error: --document-tokens")


def test_two_label_models_rank_by_the_positive_logit():
    assert _score(1) == "onnx(crossencoder){d0:0,d1:0}"
    assert _score(2) == "onnx(crossencoder){d0:0,d1:1} - onnx(crossencoder){d0:0,d1:0}"


def test_bad_model_directory_is_one_line_error(tmp_path, capsys):
    assert main(["vespa", "--model-dir", str(tmp_path), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "config.json" in err and "\n" not in err


def test_fp32_graph_with_side_weights_file_is_refused(model_dirs, tmp_path, monkeypatch, capsys):
    from deploy.package import onnx_export

    monkeypatch.setattr(onnx_export, "PROTOBUF_LIMIT", 1000)
    model_dir = tmp_path / "model"
    shutil.copytree(model_dirs("bert"), model_dir)
    onnx_export.export_onnx(model_dir, model_dir, quantize=False, tolerance=1e-4)
    assert main(["vespa", "--model-dir", str(model_dir), "--out", str(tmp_path / "app")]) == 2
    assert "--onnx int8" in capsys.readouterr().err


def test_a_model_past_two_gigabytes_in_fp32_is_exported_in_int8(model_dirs, tmp_path,
                                                                 monkeypatch, capsys):
    """bge-reranker-large's fp32 graph would keep its weights in a side file Vespa cannot
    load: auto exports int8, and an explicit fp32 is refused before minutes of export."""
    from deploy.integrations.vespa import fp32_weight_bytes
    from deploy.package import onnx_export

    model_dir = tmp_path / "model"
    shutil.copytree(model_dirs("bert"), model_dir, ignore=shutil.ignore_patterns("onnx"))
    model = transformers.AutoModelForSequenceClassification.from_pretrained(model_dir)
    assert fp32_weight_bytes(model_dir) == 4 * sum(p.numel() for p in model.parameters())
    monkeypatch.setattr(onnx_export, "PROTOBUF_LIMIT", 1000)
    assert run_vespa(model_dir, tmp_path / "fp32", "--onnx", "fp32") == 2
    assert "ship int8 (ONNX=int8, --onnx int8)" in capsys.readouterr().err
    assert not (tmp_path / "fp32").exists()
    assert run_vespa(model_dir, tmp_path / "auto") == 0
    assert "exporting int8" in capsys.readouterr().err


@pytest.fixture(scope="module")
def own_onnx(model_dirs, tmp_path_factory):
    """A model directory that ships its own quantized file, as the mixedbread model of
    Vespa's notebook does."""
    from deploy.package.onnx_export import export_onnx

    tmp = tmp_path_factory.mktemp("own-onnx")
    model_dir = tmp / "model"
    shutil.copytree(model_dirs("bert"), model_dir, ignore=shutil.ignore_patterns("onnx"))
    export_onnx(model_dir, tmp / "export", quantize=True, tolerance=0.05)
    (model_dir / "onnx").mkdir()
    own = model_dir / "onnx" / "model_quantized.onnx"
    shutil.copy(tmp / "export" / "onnx" / "model_int8.onnx", own)
    return model_dir, own


def test_own_onnx_file_is_checked_against_torch_and_shipped(own_onnx, tmp_path, capsys):
    model_dir, own = own_onnx
    capsys.readouterr()
    assert run_vespa(model_dir, tmp_path / "app", "--onnx-file", str(own)) == 0
    summary = json.loads(capsys.readouterr().out)
    check = summary["onnx_check"]
    assert summary["onnx"] == "model_quantized.onnx" and check["probe_pairs"] > 0
    assert 0 < check["max_abs_score_diff"] <= check["tolerance"] == 0.05
    assert {"min_spearman", "min_top10_overlap"} <= set(check)
    assert Schema(tmp_path / "app").onnx_file.read_bytes() == own.read_bytes()


def test_own_onnx_file_beyond_the_tolerance_is_refused(own_onnx, tmp_path, capsys):
    model_dir, own = own_onnx
    capsys.readouterr()
    assert run_vespa(model_dir, tmp_path / "app", "--onnx-file", str(own),
                     "--onnx-tolerance", "1e-9") == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]  # after transformers' progress
    assert err.startswith("error: ") and "differ from the torch model by up to" in err
    assert not (tmp_path / "app").exists()
    (tmp_path / "junk.onnx").write_text("not a model")
    assert run_vespa(model_dir, tmp_path / "b", "--onnx-file", str(tmp_path / "junk.onnx")) == 2
    assert "is not an ONNX model" in capsys.readouterr().err


def test_templates_vespa_cannot_build_are_refused(model_dirs):
    from tokenizers.processors import TemplateProcessing

    from deploy.errors import UserError
    from deploy.integrations.vespa.tokens import load_tokenizer, pair_layout

    tokenizer = load_tokenizer(model_dirs("bert") / "tokenizer.json")
    assert pair_layout(tokenizer).special_tokens == 3
    tokenizer.post_processor = TemplateProcessing(  # no separator between the segments
        single="[CLS] $A [SEP]", pair="[CLS] $A $B:1 [SEP]:1",
        special_tokens=[("[CLS]", 101), ("[SEP]", 102)])
    with pytest.raises(UserError, match="not `s A e B e` or `s A e e B e`"):
        pair_layout(tokenizer)


def test_the_token_function_model_follows_token_transformer():
    """The emulation on hand-made tensors, as TokenTransformer's javadoc spells them out."""
    schema = Schema.__new__(Schema)
    schema.functions = {"no_tokens": "tensor<float>(d0[1])(0)"}
    refs = {"query(q)": [5.0, 6.0, 0.0], "attribute(d)": [7.0, 0.0]}
    run = lambda expression: [int(v) for v in schema.evaluate(expression, refs)]  # noqa: E731
    assert run("tokenInputIds(8, query(q), attribute(d))") == [101, 5, 6, 102, 7, 102, 0, 0]
    assert run("tokenTypeIds(8, query(q), attribute(d))") == [0, 0, 0, 0, 1, 1, 0, 0]
    assert run("tokenAttentionMask(8, query(q), attribute(d))") == [1] * 6 + [0, 0]
    assert run("customTokenInputIds(0, 2, 8, query(q), no_tokens, attribute(d))") == \
        [0, 5, 6, 2, 2, 7, 2, 0]
    assert run("tokenAttentionMask(8, query(q), no_tokens, attribute(d))") == [1] * 7 + [0]
    assert run("tokenInputIds(5, query(q), attribute(d))") == [101, 5, 6, 102, 7]  # cut to L
    # Lengths count ids > 0: a 0 inside an argument shortens it (Vespa's own behaviour).
    refs["query(q)"] = [5.0, 0.0, 6.0]
    assert run("tokenInputIds(6, query(q), attribute(d))") == [101, 5, 0, 102, 7, 102]
    with pytest.raises(AssertionError, match="not a reference"):
        run("tokenInputIds(6, query(q), 3)")


def test_own_onnx_file_without_a_logits_output_is_refused(own_onnx, tmp_path, capsys):
    """The schema names the output logits, and Vespa refuses a name the model lacks: the
    check says so before anything is written, however well the scores agree."""
    import onnx

    model_dir, own = own_onnx
    model = onnx.load(str(own))
    for node in model.graph.node:
        node.output[:] = ["scores" if name == "logits" else name for name in node.output]
    model.graph.output[0].name = "scores"
    renamed = tmp_path / "renamed.onnx"
    onnx.save(model, str(renamed))
    capsys.readouterr()
    assert run_vespa(model_dir, tmp_path / "app", "--onnx-file", str(renamed)) == 2
    assert "outputs ['scores']; the package reads one named logits" in capsys.readouterr().err
    assert not (tmp_path / "app").exists()
