"""`python -m deploy vespa` writes a complete application package, and the model input that
Vespa's token functions assemble from it scores exactly like the model's own pair encoding.

No Vespa runs here: the token functions are emulated as config-model's TokenTransformer
defines them (tokenInputIds: 101 q 102 d 102; customTokenInputIds(s, e, ...): s q e d e;
tokenTypeIds: 0 up to and including the first e, 1 after; tokenAttentionMask: 1 over the
sequence; lengths count non-zero ids; 0-padded to the fixed length), fed with tokens from the
two tokenizer files the package ships, and run on the package's ONNX file.
"""

import functools
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
from deploy.vespa.application import _score

LENGTH, QUERY_TOKENS = 64, 12
QUERIES = ["what is the capital of the united states", "pandas"]
DOCS = [
    "Washington, D.C. is the capital of the United States.",
    "The giant panda is a bear species endemic to China.",
    "x",
]


@pytest.fixture(scope="module", params=["bert", "xlmr"])
def package(request, model_dirs, tmp_path_factory):
    """The package for a tiny model without onnx/: the command exports the model itself."""
    kind = request.param
    tmp = tmp_path_factory.mktemp(f"vespa-{kind}")
    model_dir = tmp / "model"
    shutil.copytree(model_dirs(kind), model_dir, ignore=shutil.ignore_patterns("onnx"))
    out = tmp / "app"
    code = main(["vespa", "--model-dir", str(model_dir), "--out", str(out), "--max-length",
                 str(LENGTH), "--query-tokens", str(QUERY_TOKENS), "--rerank-count", "50"])
    assert code == 0
    return kind, model_dir, out


def test_files_exist_and_parse(package):
    kind, _, app = package
    services = ET.parse(app / "services.xml").getroot()
    components = {c.get("id"): c for c in services.iter("component")}
    assert {c.get("type") for c in components.values()} == {"hugging-face-tokenizer"}
    for name in ("tokenizer", "query_tokenizer"):
        path = components[name].find("model").get("path")
        assert not path.startswith("http") and (app / path).is_file()
        Tokenizer.from_file(str(app / path))
    assert services.find("content/documents/document").get("type") == "doc"

    schema = (app / "schemas" / "doc.sd").read_text()
    onnx_file = re.search(r"onnx-model crossencoder \{\s*file: (\S+)", schema).group(1)
    assert (app / onnx_file).is_file()
    ort.InferenceSession(str(app / onnx_file))
    assert "embed tokenizer" in schema and "index: enable-bm25" in schema
    assert re.search(r"first-phase \{\s*expression \{\s*bm25\(text\)", schema)
    assert re.search(r"global-phase \{\s*expression \{\s*onnx\(crossencoder\)\{d0:0,d1:0\}",
                     schema)
    assert "rerank-count: 50" in schema
    if kind == "bert":
        assert f"tokenInputIds({LENGTH}, query(q_tokens), attribute(text_tokens))" in schema
        assert "input token_type_ids: ce_token_type_ids" in schema
        assert f"tokenTypeIds({LENGTH}," in schema
    else:  # XLM-R: <s>=0, </s>=2, and no token_type_ids input in the graph
        assert f"customTokenInputIds(0, 2, {LENGTH}, query(q_tokens)" in schema
        assert "token_type_ids" not in schema and "tokenTypeIds" not in schema

    feed = json.loads((app / "ext" / "feed.json").read_text())
    assert feed and all(d["put"].startswith("id:doc:doc::") and d["fields"]["text"]
                        for d in feed)
    for body in json.loads((app / "ext" / "queries.json").read_text()):
        assert body["yql"].startswith("select") and body["ranking.profile"] == "rerank"
        assert body["input.query(q_tokens)"] == "embed(query_tokenizer, @query)"
    assert "vespa deploy" in (app / "README.md").read_text()


def _schema_facts(app):
    schema = (app / "schemas" / "doc.sd").read_text()
    functions = dict(re.findall(r"function (\w+)\(\) \{\s*expression \{\s*(.+?)\s*\}", schema))
    inputs = dict(re.findall(r"input (\w+): (\w+)", schema))
    query_size = int(re.search(r"query\(q_tokens\) tensor<float>\(d0\[(\d+)\]\)", schema)[1])
    doc_size = int(re.search(r"field text_tokens type tensor<float>\(d0\[(\d+)\]\)", schema)[1])
    return {name: functions[fn] for name, fn in inputs.items()}, query_size, doc_size


def _embed(tokenizer_file, text: str, size: int) -> list[int]:
    """embed(tokenizer, text) into tensor(d0[size]): the component's ids (special tokens
    on, as Vespa's default), then the first `size` of them."""
    return _tokenizer(str(tokenizer_file)).encode(text).ids[:size]


@functools.cache
def _tokenizer(path: str) -> Tokenizer:
    return Tokenizer.from_file(path)


@functools.cache
def _session(path: str) -> ort.InferenceSession:
    return ort.InferenceSession(path)


def _token_function(expression: str, q: list[int], d: list[int]) -> list[int]:
    """One of Vespa's token functions over (query tokens, document tokens)."""
    name, args = re.fullmatch(r"(\w+)\((.*)\)", expression).groups()
    if name == "tensor<float>":  # tensor<float>(d0[1],d1[L])(0): all zeros
        return [0] * int(re.search(r"d1\[(\d+)\]", expression)[1])
    numbers = [int(a) for a in args.split(",") if a.strip().isdigit()]
    q, d = [t for t in q if t > 0], [t for t in d if t > 0]
    if name == "customTokenInputIds":
        start, sep, length = numbers
        values = [start, *q, sep, *d, sep]
    else:
        (length,) = numbers
        values = {"tokenInputIds": [101, *q, 102, *d, 102],
                  "tokenAttentionMask": [1] * (len(q) + len(d) + 3),
                  "tokenTypeIds": [0] * (len(q) + 2) + [1] * (len(d) + 1)}[name]
    return (values + [0] * length)[:length]


def _vespa_inputs(app, query: str, doc: str) -> dict[str, np.ndarray]:
    inputs, query_size, doc_size = _schema_facts(app)
    q = _embed(app / "models" / "query_tokenizer.json", query, query_size)
    d = _embed(app / "models" / "tokenizer.json", doc, doc_size)
    return {name: np.array([_token_function(expr, q, d)], dtype=np.int64)
            for name, expr in inputs.items()}


def _run_package_model(app, feed: dict) -> np.ndarray:
    onnx_file = re.search(r"file: (\S+)", (app / "schemas" / "doc.sd").read_text())[1]
    return _session(str(app / onnx_file)).run(None, feed)[0][0]


def test_vespa_inputs_score_like_the_models_own_pair_encoding(package):
    kind, model_dir, app = package
    tokenizer = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
    tokenizer.no_padding()  # as transformers calls it: tokenizer.json may carry padding
    tokenizer.no_truncation()
    names = transformers.AutoConfig.from_pretrained(model_dir).model_type
    model = transformers.AutoModelForSequenceClassification.from_pretrained(model_dir).eval()
    for query in QUERIES:
        for doc in DOCS:
            pair = tokenizer.encode(query, doc)
            feed = {"input_ids": [pair.ids], "attention_mask": [pair.attention_mask]}
            if names == "bert":
                feed["token_type_ids"] = [pair.type_ids]
            with torch.inference_mode():
                expected = model(**{k: torch.tensor(v) for k, v in feed.items()}).logits[0]
            vespa = _vespa_inputs(app, query, doc)
            # The sequence itself: the model's own ids, then Vespa's 0-padding, masked out.
            n = len(pair.ids)
            assert vespa["input_ids"][0, :n].tolist() == pair.ids, (query, doc)
            assert vespa["attention_mask"][0].tolist() == [1] * n + [0] * (LENGTH - n)
            if "token_type_ids" in vespa:
                assert vespa["token_type_ids"][0, :n].tolist() == pair.type_ids
            got = _run_package_model(app, vespa)
            np.testing.assert_allclose(got, expected.numpy(), atol=1e-4, rtol=0,
                                       err_msg=f"{kind}: {query!r} / {doc!r}")


def test_long_inputs_keep_the_templates_separators(package):
    kind, _, app = package
    inputs, query_size, doc_size = _schema_facts(app)
    q = _embed(app / "models" / "query_tokenizer.json", "capital " * 100, query_size)
    d = _embed(app / "models" / "tokenizer.json", "panda " * 1000, doc_size)
    ids = _token_function(inputs["input_ids"], q, d)
    assert len(ids) == LENGTH and ids[-1] != 0, "query and document fill the sequence"
    if kind == "xlmr":  # <s> q </s></s> d </s>: the query tokenizer keeps its extra </s>
        assert ids[0] == 0 and ids[QUERY_TOKENS:QUERY_TOKENS + 2] == [2, 2] and ids[-1] == 2
    else:
        assert ids[0] == 101 and ids[QUERY_TOKENS + 1] == 102 and ids[-1] == 102


def test_two_label_models_rank_by_the_positive_logit():
    assert _score(1) == "onnx(crossencoder){d0:0,d1:0}"
    assert _score(2) == "onnx(crossencoder){d0:0,d1:1} - onnx(crossencoder){d0:0,d1:0}"


def test_bad_model_directory_is_one_line_error(tmp_path, capsys):
    assert main(["vespa", "--model-dir", str(tmp_path), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "config.json" in err and "\n" not in err


def test_fp32_graph_with_side_weights_file_is_refused(model_dirs, tmp_path, monkeypatch, capsys):
    from deploy import onnx_export

    monkeypatch.setattr(onnx_export, "PROTOBUF_LIMIT", 1000)
    model_dir = tmp_path / "model"
    shutil.copytree(model_dirs("bert"), model_dir)
    onnx_export.export_onnx(model_dir, model_dir, quantize=False, tolerance=1e-4)
    assert main(["vespa", "--model-dir", str(model_dir), "--out", str(tmp_path / "app")]) == 2
    assert "--onnx int8" in capsys.readouterr().err
