"""``python -m deploy vespa``: a Vespa application package that reranks with the model.

BM25 first phase, the cross-encoder (ONNX) in the global phase, the tokenizer shipped in
the package; see deploy/integrations/vespa/application.py for the layout and tokens.py for how the
model's pair encoding is rebuilt from Vespa's token functions.
"""

from __future__ import annotations

import re
import sys
import tempfile
from pathlib import Path

from deploy.errors import UserError
from deploy.integrations.common import check_at_least, check_match
from deploy.package import model_kind
from reranker import model_dir as model_facts

_APP_NAME = re.compile(r"[a-z][a-z0-9]{0,39}")


def run(args) -> int:
    from deploy.integrations.vespa.application import check_budgets, describe, write_package

    options = _options(args)
    model_dir = Path(args.model_dir)
    _check_model_dir(model_dir)
    model_kind.refuse_llm(model_kind.read_config(model_dir), "The Vespa application package",
                          "rerank with it on a SageMaker endpoint (make deploy), not in"
                          " Vespa's global phase")
    facts = _facts(model_dir)
    # Before any export: a refused budget costs nothing.
    check_budgets(model_dir / "tokenizer.json", options, facts.max_length)
    with tempfile.TemporaryDirectory(prefix="vespa-onnx-") as tmp:
        onnx_path, check = _chosen_onnx(model_dir, args, Path(tmp))
        model = _model(model_dir, facts, onnx_path)
        summary = write_package(model, Path(args.out), options)
    checked = {"onnx_check": check} if check else {}
    print(describe({"onnx": model.onnx_path.name, **checked, **summary}, Path(args.out)))
    return 0


def _options(args):
    from deploy.integrations.vespa.application import Options

    check_match("--app-name", args.app_name, _APP_NAME,
                "an application name: lowercase letters and digits, at most 40")
    for flag, value, low in (("--rerank-count", args.rerank_count, 1),
                             ("--max-length", args.max_length, 16),
                             ("--query-tokens", args.query_tokens, 4),
                             ("--document-tokens", args.document_tokens, 8)):
        check_at_least(flag, value, low)
    return Options(app_name=args.app_name, max_length=args.max_length,
                   query_tokens=args.query_tokens, document_tokens=args.document_tokens,
                   rerank_count=args.rerank_count)


def _check_model_dir(model_dir: Path) -> None:
    for name in ("config.json", "tokenizer.json"):
        if not (model_dir / name).is_file():
            raise UserError(f"{model_dir} has no {name}: pass a model directory"
                            " (`python -m deploy package` stages one)")


def _facts(model_dir: Path) -> model_facts.ModelDir:
    try:
        return model_facts.read(model_dir)
    except model_facts.ModelLoadError as exc:
        raise UserError(str(exc)) from None


def _chosen_onnx(model_dir: Path, args, tmp: Path) -> tuple[Path, dict | None]:
    """The user's own file, checked against torch; else ours (found or exported now)."""
    if args.onnx_file is None:
        return _onnx_file(model_dir, args.onnx, args.onnx_tolerance, tmp), None
    from deploy.integrations.vespa.onnx_check import DEFAULT_TOLERANCE, check_onnx_file

    if args.onnx_file.is_file():
        graph_inputs(args.onnx_file)  # an ONNX file Vespa can load, before the slow check
    tolerance = DEFAULT_TOLERANCE if args.onnx_tolerance is None else args.onnx_tolerance
    report = check_onnx_file(model_dir, args.onnx_file, tolerance)  # 0 is refused there
    return args.onnx_file, report


def _model(model_dir: Path, facts: model_facts.ModelDir, onnx_path: Path):
    from deploy.integrations.vespa.application import Model

    return Model(onnx_path=onnx_path, tokenizer_path=model_dir / "tokenizer.json",
                 graph_inputs=graph_inputs(onnx_path), num_labels=_num_labels(facts),
                 model_limit=facts.max_length)


def _onnx_file(model_dir: Path, choice: str, tolerance, tmp: Path) -> Path:
    wanted = ["int8", "fp32"] if choice == "auto" else [choice]
    for variant in wanted:
        path = model_dir / model_facts.ONNX_DIR / model_facts.ONNX_FILES[variant]
        if path.is_file():
            if tolerance is not None:
                print(f"note: {path} is shipped as it is; --onnx-tolerance applies to an"
                      " export or an --onnx-file", file=sys.stderr)
            return path
    variant = _variant_to_export(model_dir, choice)
    from deploy.package.onnx_export import FP32_TOLERANCE, export_onnx

    limit = tolerance if tolerance is not None else (FP32_TOLERANCE if variant == "fp32" else 0.05)
    export_onnx(model_dir, tmp, quantize=variant == "int8", tolerance=limit)
    return tmp / model_facts.ONNX_DIR / model_facts.ONNX_FILES[variant]


def _variant_to_export(model_dir: Path, choice: str) -> str:
    """fp32 unless its weights pass protobuf's 2 GB (bge-reranker-large, -v2-m3): such a
    graph keeps them in a side file Vespa cannot load, so ``auto`` exports int8 and an
    explicit fp32 is refused before minutes of export."""
    from deploy.package.onnx_export import PROTOBUF_LIMIT

    if choice == "int8":
        return "int8"
    size = fp32_weight_bytes(model_dir)
    if size <= PROTOBUF_LIMIT:
        return "fp32"
    if choice == "fp32":
        raise UserError(f"the model's fp32 weights are {size / 1e9:.1f} GB, past the 2 GB an"
                        " ONNX file Vespa loads can hold: ship int8 (ONNX=int8, --onnx int8)")
    print(f"note: the model's fp32 weights are {size / 1e9:.1f} GB, past the 2 GB of one ONNX"
          " file: exporting int8", file=sys.stderr)
    return "int8"


def fp32_weight_bytes(model_dir: Path) -> int:
    """4 bytes per weight, whatever dtype the files store (counted from their headers)."""
    from deploy.package import weights

    return 4 * weights.parameter_count(model_dir)


def graph_inputs(path: Path) -> tuple[str, ...]:
    import onnx

    try:
        graph = onnx.load(str(path), load_external_data=False).graph
    except Exception as exc:  # noqa: BLE001 - protobuf errors have many types
        raise UserError(f"{path} is not an ONNX model: {exc}") from None
    if any(t.data_location == onnx.TensorProto.EXTERNAL for t in graph.initializer):
        raise UserError(f"{path} keeps its weights in a side file (over 2 GB in fp32): ship"
                        " the int8 model to Vespa (ONNX=int8, --onnx int8)")
    initializers = {i.name for i in graph.initializer}
    names = tuple(i.name for i in graph.input if i.name not in initializers)
    if not {"input_ids", "attention_mask"} <= set(names):
        raise UserError(f"{path} takes inputs {list(names)}; the package maps input_ids,"
                        " attention_mask and token_type_ids")
    outputs = [o.name for o in graph.output]
    if "logits" not in outputs:  # the schema's onnx-model block names it; Vespa checks it
        raise UserError(f"{path} outputs {outputs}; the package reads one named logits (what"
                        " `deploy package --onnx` exports)")
    return names


def _num_labels(facts: model_facts.ModelDir) -> int:
    if facts.num_labels not in (1, 2):
        raise UserError(f"the model has {facts.num_labels} labels; a cross-encoder has 1 or 2")
    return facts.num_labels
