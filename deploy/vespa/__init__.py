"""``python -m deploy vespa``: a Vespa application package that reranks with the model.

BM25 first phase, the cross-encoder (ONNX) in the global phase, the tokenizer shipped in
the package; see deploy/vespa/application.py for the layout and tokens.py for how the
model's pair encoding is rebuilt from Vespa's token functions.
"""

from __future__ import annotations

import re
import tempfile
from pathlib import Path

from deploy.errors import UserError
from deploy.paths import BUILD_DIR
from reranker import model_dir as model_facts


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "vespa", help="write a Vespa application package (BM25 + cross-encoder global phase)",
        description=__doc__.splitlines()[0])
    p.add_argument("--model-dir", required=True, help="model directory (config.json,"
                   " tokenizer.json, model.safetensors; onnx/ is used when present)")
    p.add_argument("--out", default=str(BUILD_DIR / "vespa"), help="package directory")
    p.add_argument("--onnx", choices=["auto", "fp32", "int8"], default="auto",
                   help="which ONNX model to ship; auto: int8 if the model directory has"
                   " one, else fp32 (exported now if missing)")
    p.add_argument("--onnx-tolerance", type=float, default=None,
                   help="largest int8 score difference from torch when exporting now")
    p.add_argument("--rerank-count", type=int, default=100,
                   help="hits the global phase rescores per query (default 100)")
    p.add_argument("--max-length", type=int, default=256,
                   help="tokens per query+document sequence (default 256, capped by the model)")
    p.add_argument("--query-tokens", type=int, default=32,
                   help="query budget: longer queries are cut to it (default 32)")
    p.add_argument("--document-tokens", type=int, default=None,
                   help="document budget, fixed at feed time (default: what --max-length"
                   " leaves after the query); given, it sets the sequence length instead")
    p.add_argument("--app-name", default="reranker", help="application name (a-z, 0-9)")
    p.set_defaults(func=run)


def run(args) -> int:
    from deploy.vespa.application import describe, write_package

    options = _options(args)
    model_dir = Path(args.model_dir)
    _check_model_dir(model_dir)
    with tempfile.TemporaryDirectory(prefix="vespa-onnx-") as tmp:
        model = _model(model_dir, args.onnx, args.onnx_tolerance, Path(tmp))
        summary = write_package(model, Path(args.out), options)
    print(describe({"onnx": model.onnx_path.name, **summary}, Path(args.out)))
    return 0


def _options(args):
    from deploy.vespa.application import Options

    if not re.fullmatch(r"[a-z][a-z0-9]{0,39}", args.app_name):
        raise UserError(f"--app-name {args.app_name!r}: use lowercase letters and digits")
    for flag, value, low in (("--rerank-count", args.rerank_count, 1),
                             ("--max-length", args.max_length, 16),
                             ("--query-tokens", args.query_tokens, 4),
                             ("--document-tokens", args.document_tokens, 8)):
        if value is not None and value < low:
            raise UserError(f"{flag} must be at least {low}, not {value}")
    return Options(app_name=args.app_name, max_length=args.max_length,
                   query_tokens=args.query_tokens, document_tokens=args.document_tokens,
                   rerank_count=args.rerank_count)


def _check_model_dir(model_dir: Path) -> None:
    for name in ("config.json", "tokenizer.json"):
        if not (model_dir / name).is_file():
            raise UserError(f"{model_dir} has no {name}: pass a model directory"
                            " (`python -m deploy package` stages one)")


def _model(model_dir: Path, choice: str, tolerance, tmp: Path):
    from deploy.vespa.application import Model

    try:
        facts = model_facts.read(model_dir)
    except model_facts.ModelLoadError as exc:
        raise UserError(str(exc)) from None
    onnx_path = _onnx_file(model_dir, choice, tolerance, tmp)
    return Model(onnx_path=onnx_path, tokenizer_path=model_dir / "tokenizer.json",
                 graph_inputs=graph_inputs(onnx_path), num_labels=_num_labels(facts),
                 model_limit=facts.max_length)


def _onnx_file(model_dir: Path, choice: str, tolerance, tmp: Path) -> Path:
    wanted = ["int8", "fp32"] if choice == "auto" else [choice]
    for variant in wanted:
        path = model_dir / model_facts.ONNX_DIR / model_facts.ONNX_FILES[variant]
        if path.is_file():
            return path
    variant = "fp32" if choice == "auto" else choice
    from deploy.onnx_export import FP32_TOLERANCE, export_onnx

    limit = tolerance or (FP32_TOLERANCE if variant == "fp32" else 0.05)
    export_onnx(model_dir, tmp, quantize=variant == "int8", tolerance=limit)
    return tmp / model_facts.ONNX_DIR / model_facts.ONNX_FILES[variant]


def graph_inputs(path: Path) -> tuple[str, ...]:
    import onnx

    try:
        graph = onnx.load(str(path), load_external_data=False).graph
    except Exception as exc:  # noqa: BLE001 - protobuf errors have many types
        raise UserError(f"{path} is not an ONNX model: {exc}") from None
    if any(t.data_location == onnx.TensorProto.EXTERNAL for t in graph.initializer):
        raise UserError(f"{path} keeps its weights in a side file (over 2 GB in fp32): ship"
                        " the int8 model to Vespa (--onnx int8)")
    initializers = {i.name for i in graph.initializer}
    names = tuple(i.name for i in graph.input if i.name not in initializers)
    if not {"input_ids", "attention_mask"} <= set(names):
        raise UserError(f"{path} takes inputs {list(names)}; the package maps input_ids,"
                        " attention_mask and token_type_ids")
    return names


def _num_labels(facts: model_facts.ModelDir) -> int:
    if facts.num_labels not in (1, 2):
        raise UserError(f"the model has {facts.num_labels} labels; a cross-encoder has 1 or 2")
    return facts.num_labels
