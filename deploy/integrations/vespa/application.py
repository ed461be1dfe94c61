"""The Vespa application package for global-phase reranking, written offline with pyvespa.

Layout of the output directory (deploy it as it is: ``vespa deploy OUT``):

    services.xml              container with one hugging-face-tokenizer component
    schemas/doc.sd            fields, the onnx-model, rank profiles bm25 and rerank
    files/crossencoder.onnx   the exported cross-encoder (fp32 or int8)
    models/tokenizer.json     the model's tokenizer with no template, truncation or padding
                              (what Vespa forces anyway; see deploy/integrations/vespa/tokens.py)
    ext/feed.json, ext/queries.json, README.md   examples (Vespa ignores them)
"""

from __future__ import annotations

import dataclasses
import json
import tempfile
from pathlib import Path

from deploy.errors import UserError
from deploy.integrations import common as integration
from deploy.integrations.vespa import examples
from deploy.integrations.vespa.tokens import (
    EMPTY,
    EMPTY_EXPRESSION,
    PairLayout,
    load_tokenizer,
    pair_layout,
    write_tokenizer,
)

SCHEMA = "doc"
MODEL = "crossencoder"
QUERY_INPUT = "query(q_tokens)"
DOC_FIELD = "text_tokens"
PROFILE = "rerank"
TOKENIZER = "tokenizer"


@dataclasses.dataclass(frozen=True)
class Options:
    app_name: str = "reranker"
    max_length: int = 256      # tokens per (query, document) sequence the model sees
    query_tokens: int = 32     # query budget: the query tensor's size
    # Document budget: the text_tokens field's size; None: what max_length leaves.
    document_tokens: int | None = None
    rerank_count: int = 100    # hits the global phase rescores per query


@dataclasses.dataclass(frozen=True)
class Budgets:
    """Token budgets: query + document + the template's special tokens = sequence."""

    query: int
    document: int
    sequence: int


def budgets(options: Options, layout: PairLayout, model_limit: int) -> Budgets:
    """A document budget given: the sequence is what query and document need; otherwise
    the document gets what the sequence length leaves after the query."""
    limit = min(options.max_length, model_limit)
    if options.document_tokens is None:
        document = limit - options.query_tokens - layout.special_tokens
    else:
        document = options.document_tokens
        limit = model_limit
    sequence = options.query_tokens + document + layout.special_tokens
    if options.document_tokens is None and document < 8:
        raise UserError(f"--max-length {limit} leaves no room for documents after"
                        f" --query-tokens {options.query_tokens}")
    if options.query_tokens < 4 or document < 8 or sequence > limit:
        raise UserError(
            f"--query-tokens {options.query_tokens} and --document-tokens {document} need"
            f" {sequence} tokens with the template's {layout.special_tokens} special tokens;"
            f" the model takes at most {model_limit} (and at least 8 document tokens)")
    return Budgets(options.query_tokens, document, sequence)


@dataclasses.dataclass(frozen=True)
class Model:
    """What the package needs to know about the model."""

    onnx_path: Path
    tokenizer_path: Path
    graph_inputs: tuple[str, ...]
    num_labels: int
    model_limit: int


def check_budgets(tokenizer_path: Path, options: Options, model_limit: int) -> Budgets:
    return budgets(options, pair_layout(load_tokenizer(tokenizer_path)), model_limit)


def write_package(model: Model, out: Path, options: Options) -> dict:
    """Write the package into ``out`` (replaced whole); return a summary of choices."""
    layout = pair_layout(load_tokenizer(model.tokenizer_path))
    sizes = budgets(options, layout, model.model_limit)
    length, doc_tokens = sizes.sequence, sizes.document
    with tempfile.TemporaryDirectory(prefix="vespa-app-") as tmp:
        tmp = Path(tmp)
        tokenizer = write_tokenizer(model.tokenizer_path, tmp / "tok" / "tokenizer.json")
        app = _application(model, layout, options, sizes, tokenizer)
        with integration.folder(out, "vespa") as staged:
            app.to_files(str(staged))
            examples.write(staged, options, sizes, SCHEMA, PROFILE, QUERY_INPUT)
    return {"sequence_length": length, "query_tokens": sizes.query,
            "document_tokens": doc_tokens, "input_ids": layout.input_ids_expression(
                length, QUERY_INPUT, f"attribute({DOC_FIELD})"),
            "token_type_ids": "token_type_ids" in model.graph_inputs}


def _application(model: Model, layout: PairLayout, options: Options, sizes: Budgets,
                 tokenizer: Path):
    from vespa.package import (
        ApplicationPackage,
        Component,
        Parameter,
    )

    # One component for queries and documents: Vespa runs both without special tokens.
    component = Component(id=TOKENIZER, type="hugging-face-tokenizer",
                          parameters=[Parameter("model", {"path": f"models/{tokenizer.name}"})])
    return ApplicationPackage(
        name=options.app_name,
        schema=[_schema(model, layout, options, sizes)],
        components=[component],
        include_files=[(tokenizer, f"models/{tokenizer.name}")],
    )


def _schema(model: Model, layout: PairLayout, options: Options, sizes: Budgets):
    from vespa.package import (
        Document,
        Field,
        FieldSet,
        GlobalPhaseRanking,
        OnnxModel,
        RankProfile,
        Schema,
    )

    doc, length, doc_tokens = f"attribute({DOC_FIELD})", sizes.sequence, sizes.document
    functions = {
        "input_ids": layout.input_ids_expression(length, QUERY_INPUT, doc),
        "attention_mask": layout.attention_mask_expression(length, QUERY_INPUT, doc),
    }
    if "token_type_ids" in model.graph_inputs:
        functions["token_type_ids"] = layout.token_types_expression(length, QUERY_INPUT, doc)
    fields = [
        Field(name="id", type="string", indexing=["summary", "attribute"]),
        Field(name="text", type="string", indexing=["index", "summary"], index="enable-bm25"),
        # Synthetic field: document tokens computed once at feed time, not per query.
        Field(name=DOC_FIELD, type=f"tensor<float>(d0[{doc_tokens}])",
              indexing=["input text", f"embed {TOKENIZER}", "attribute"],
              is_document_field=False),
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
                functions=_functions(layout, functions),
                first_phase="bm25(text)",
                global_phase=GlobalPhaseRanking(rerank_count=options.rerank_count,
                                                expression=_score(model.num_labels)),
                match_features=["bm25(text)"],
            ),
        ],
    )


def _functions(layout: PairLayout, functions: dict[str, str]) -> list:
    from vespa.package import Function

    out = [Function(name=f"ce_{name}", expression=expr) for name, expr in functions.items()]
    if layout.empty_middle:
        out.insert(0, Function(name=EMPTY, expression=EMPTY_EXPRESSION))
    return out


def _score(num_labels: int) -> str:
    """One label: the logit.  Two: positive minus negative logit, which orders hits like
    the softmax of the positive class (what the SageMaker endpoint reports)."""
    if num_labels == 1:
        return f"onnx({MODEL}){{d0:0,d1:0}}"
    return f"onnx({MODEL}){{d0:0,d1:1}} - onnx({MODEL}){{d0:0,d1:0}}"


def describe(summary: dict, out: Path) -> str:
    return json.dumps({"package": str(out), **summary}, indent=2)
