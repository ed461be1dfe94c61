"""The Vespa application package for global-phase reranking, written offline with pyvespa.

Layout of the output directory (deploy it as it is: ``vespa deploy OUT``):

    services.xml              container with the two hugging-face-tokenizer components
    schemas/doc.sd            fields, the onnx-model, rank profiles bm25 and rerank
    files/crossencoder.onnx   the exported cross-encoder (fp32 or int8)
    models/tokenizer.json     document tokenizer (no special tokens; cut to the field size)
    models/query_tokenizer.json  query tokenizer (see deploy/vespa/tokens.py)
    ext/feed.json, ext/queries.json, README.md   examples (Vespa ignores them)
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import tempfile
from pathlib import Path

from deploy.errors import UserError
from deploy.vespa import examples
from deploy.vespa.tokens import PairLayout, load_tokenizer, pair_layout, write_tokenizers

SCHEMA = "doc"
MODEL = "crossencoder"
QUERY_INPUT = "query(q_tokens)"
DOC_FIELD = "text_tokens"
PROFILE = "rerank"


@dataclasses.dataclass(frozen=True)
class Options:
    app_name: str = "reranker"
    max_length: int = 256      # tokens per (query, document) sequence the model sees
    query_tokens: int = 32     # size of the query token tensor
    rerank_count: int = 100    # hits the global phase rescores per query


@dataclasses.dataclass(frozen=True)
class Model:
    """What the package needs to know about the model."""

    onnx_path: Path
    tokenizer_path: Path
    graph_inputs: tuple[str, ...]
    num_labels: int
    model_limit: int


def write_package(model: Model, out: Path, options: Options) -> dict:
    """Write the package into ``out`` (replaced whole); return a summary of choices."""
    layout = pair_layout(load_tokenizer(model.tokenizer_path))
    length = min(options.max_length, model.model_limit)
    doc_tokens = length - options.query_tokens - 3  # s, e and the final e
    if options.query_tokens < 4 or doc_tokens < 8:
        raise UserError(f"--max-length {length} leaves no room for documents after"
                        f" --query-tokens {options.query_tokens}")
    with tempfile.TemporaryDirectory(prefix="vespa-app-") as tmp:
        tmp = Path(tmp)
        doc_tok, query_tok = write_tokenizers(model.tokenizer_path, layout,
                                              options.query_tokens, doc_tokens, tmp / "tok")
        app = _application(model, layout, options, length, doc_tokens, doc_tok, query_tok)
        staged = tmp / "app"
        app.to_files(str(staged))
        examples.write(staged, options, SCHEMA, PROFILE, QUERY_INPUT)
        _replace(staged, out)
    return {"sequence_length": length, "query_tokens": options.query_tokens,
            "document_tokens": doc_tokens, "input_ids": layout.input_ids_expression(
                length, QUERY_INPUT, f"attribute({DOC_FIELD})"),
            "token_type_ids": "token_type_ids" in model.graph_inputs}


def _application(model: Model, layout: PairLayout, options: Options, length: int,
                 doc_tokens: int, doc_tok: Path, query_tok: Path):
    from vespa.package import (
        ApplicationPackage,
        Component,
        Parameter,
    )

    components = [
        Component(id=name, type="hugging-face-tokenizer",
                  parameters=[Parameter("model", {"path": f"models/{path.name}"})])
        for name, path in (("tokenizer", doc_tok), ("query_tokenizer", query_tok))
    ]
    return ApplicationPackage(
        name=options.app_name,
        schema=[_schema(model, layout, options, length, doc_tokens)],
        components=components,
        include_files=[(doc_tok, f"models/{doc_tok.name}"),
                       (query_tok, f"models/{query_tok.name}")],
    )


def _schema(model: Model, layout: PairLayout, options: Options, length: int, doc_tokens: int):
    from vespa.package import (
        Document,
        Field,
        FieldSet,
        Function,
        GlobalPhaseRanking,
        OnnxModel,
        RankProfile,
        Schema,
    )

    doc = f"attribute({DOC_FIELD})"
    functions = {
        "input_ids": layout.input_ids_expression(length, QUERY_INPUT, doc),
        "attention_mask": f"tokenAttentionMask({length}, {QUERY_INPUT}, {doc})",
    }
    if "token_type_ids" in model.graph_inputs:
        functions["token_type_ids"] = layout.token_types_expression(length, QUERY_INPUT, doc)
    fields = [
        Field(name="id", type="string", indexing=["summary", "attribute"]),
        Field(name="text", type="string", indexing=["index", "summary"], index="enable-bm25"),
        # Synthetic field: document tokens computed once at feed time, not per query.
        Field(name=DOC_FIELD, type=f"tensor<float>(d0[{doc_tokens}])",
              indexing=["input text", "embed tokenizer", "attribute"], is_document_field=False),
    ]
    return Schema(
        name=SCHEMA, mode="index",
        document=Document(fields=fields),
        fieldsets=[FieldSet(name="default", fields=["text"])],
        models=[OnnxModel(model_name=MODEL, model_file_path=str(model.onnx_path),
                          inputs={name: f"ce_{name}" for name in functions},
                          outputs={"logits": "logits"})],
        rank_profiles=[
            RankProfile(name="bm25", first_phase="bm25(text)"),
            RankProfile(
                name=PROFILE, inherits="default",
                inputs=[(QUERY_INPUT, f"tensor<float>(d0[{options.query_tokens}])")],
                functions=[Function(name=f"ce_{name}", expression=expr)
                           for name, expr in functions.items()],
                first_phase="bm25(text)",
                global_phase=GlobalPhaseRanking(rerank_count=options.rerank_count,
                                                expression=_score(model.num_labels)),
                match_features=["bm25(text)"],
            ),
        ],
    )


def _score(num_labels: int) -> str:
    """One label: the logit.  Two: positive minus negative logit, which orders hits like
    the softmax of the positive class (what the SageMaker endpoint reports)."""
    if num_labels == 1:
        return f"onnx({MODEL}){{d0:0,d1:0}}"
    return f"onnx({MODEL}){{d0:0,d1:1}} - onnx({MODEL}){{d0:0,d1:0}}"


def _replace(staged: Path, out: Path) -> None:
    if out.exists() and not (out / "services.xml").exists() and any(out.iterdir()):
        raise UserError(f"{out} exists and is not a Vespa application package: not touching it")
    if out.exists():
        shutil.rmtree(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    shutil.copytree(staged, out)


def describe(summary: dict, out: Path) -> str:
    return json.dumps({"package": str(out), **summary}, indent=2)
