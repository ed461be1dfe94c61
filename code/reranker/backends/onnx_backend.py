"""The ONNX backend: the exported cross-encoder on CPU, fp32 or int8, run by ONNX Runtime.

Imports only numpy at module level; the runtime is imported when a backend is built, so
the engine package stays importable where it is not installed.  Everything that can be
wrong with an ONNX file (garbage bytes, another model's graph, a label count that is not
config.json's) is found here, at load time, and reported as ModelLoadError.  The OpenVINO
backend (openvino_backend.py) runs the same file with the same checks.
"""

from __future__ import annotations

import os

import numpy as np

from .. import cpu
from .. import model_dir as model_facts
from ..settings import Settings
from .base import ModelLoadError, first_line

INPUTS = ("input_ids", "attention_mask", "token_type_ids")
REQUIRED_INPUTS = ("input_ids", "attention_mask")
# Written by deploy/package/onnx_export.py into the graph's metadata_props; checked against
# config.json so an ONNX file from another model is refused.
META_PREFIX = "reranker."
META_CHECKED = ("model_type", "vocab_size", "num_labels")
# ONNX Runtime fp32 on CPU scored the most pairs per CPU-second with small batches: 512
# padded tokens beat 1024 by 14-23% at 10-25 documents (docs/BENCHMARKS.md, "Token budget").
FP32_BATCH_TOKENS = 512


class OnnxBackend:
    """One ONNX graph behind one runtime; subclasses swap the runtime (``runner``)."""

    name = "onnx"
    device_type = "cpu"
    pad_multiple = 1
    batches_itself = False
    runner_class: type  # OrtRunner, set below where it is defined
    fp32_batch_tokens = FP32_BATCH_TOKENS  # measured with ONNX Runtime only

    def __init__(self, model_dir: str, *, settings: Settings | None = None,
                 path: str | None = None):
        settings = settings or Settings()
        facts = model_facts.read(model_dir)
        self.num_labels = facts.num_labels
        self.path = path or model_file(facts, settings.onnx_model)
        self.threads = settings.threads or cpu.usable_cores()
        self.runner = self.runner_class(self.path, self.threads, settings.dtype)
        self.inputs = _check_inputs(self.runner.inputs, self.runner.output_rank, self.path)
        self.metadata = self.runner.metadata
        _check_metadata(self.metadata, facts, self.path)
        file_dtype = self.metadata.get("precision") or _guess_precision(self.path)
        self.dtype = self.runner.precision or file_dtype
        self.batch_tokens = self.fp32_batch_tokens if self.dtype == "float32" else 0
        self._probe()

    def forward(self, ids: np.ndarray, mask: np.ndarray, types: np.ndarray | None) -> np.ndarray:
        feed = {"input_ids": ids.astype(np.int64, copy=False),
                "attention_mask": mask.astype(np.int64, copy=False)}
        if "token_type_ids" in self.inputs:
            # A graph with the input but a tokenizer without types: one segment id, as HF does.
            feed["token_type_ids"] = (np.zeros_like(feed["input_ids"]) if types is None
                                      else types.astype(np.int64, copy=False))
        return np.asarray(self.runner.run(feed), dtype=np.float32)

    def health(self) -> bool:
        return True

    def describe(self) -> dict:
        return {
            "backend": self.name,
            "device": self.device_type,
            "dtype": self.dtype,
            "onnx_file": os.path.join(model_facts.ONNX_DIR, os.path.basename(self.path)),
            self.runner.name: self.runner.version,
            "threads": self.threads,
        }

    def _probe(self) -> None:
        """One tiny forward pass: the output must be [rows, num_labels] and finite."""
        ids = np.zeros((1, 4), dtype=np.int64)
        try:
            out = self.forward(ids, np.ones_like(ids), np.zeros_like(ids))
        except Exception as exc:  # noqa: BLE001 - any runtime failure means a bad file
            raise ModelLoadError(f"{self.path}: a test forward pass failed: {first_line(exc)}"
                                 ) from None
        if out.ndim != 2 or out.shape != (1, self.num_labels):
            raise ModelLoadError(
                f"{self.path}: the graph returns logits of shape {list(out.shape)} for one pair;"
                f" config.json says {self.num_labels} label(s): the ONNX file belongs to"
                " another model (re-export it with `python -m deploy package --onnx ...`)"
            )
        if not np.isfinite(out).all():
            raise ModelLoadError(f"{self.path}: a test forward pass returned {out.tolist()}")


def model_file(facts: model_facts.ModelDir, choice: str) -> str:
    """The ONNX file RERANK_ONNX_MODEL names.  "auto" prefers the exact fp32 graph: int8
    moves scores and ranks (docs/onnx.md), so it runs only when it is the only file or is
    asked for by name."""
    folder = os.path.join(facts.path, model_facts.ONNX_DIR)
    present = list(facts.onnx)
    files = model_facts.ONNX_FILES
    if choice == "auto":
        for wanted in (files["fp32"], files["int8"]):
            if wanted in present:
                return os.path.join(folder, wanted)
        if len(present) == 1:
            return os.path.join(folder, present[0])
        raise ModelLoadError(
            f"{folder} has {present or 'no .onnx files'}: set RERANK_ONNX_MODEL to one of them"
            if present else f"{folder} has no .onnx file (export one with"
            " `python -m deploy package --onnx fp32|int8`)"
        )
    name = files.get(choice, choice)
    if os.path.basename(name) != name or name not in present:
        raise ModelLoadError(
            f"RERANK_ONNX_MODEL={choice!r}: {model_facts.ONNX_DIR}/{name} is not in the model"
            f" directory (present: {present or 'none'})"
        )
    return os.path.join(folder, name)


class OrtRunner:
    """ONNX Runtime's CPU provider: fp32 or the int8 graph as exported."""

    name = "onnxruntime"
    precision = None  # what the file holds

    def __init__(self, path: str, threads: int, dtype: str):
        try:
            import onnxruntime as ort
        except ImportError:
            raise ModelLoadError(
                "the onnx backend needs onnxruntime (pip install onnxruntime), or set"
                " RERANK_BACKEND=torch"
            ) from None
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        # One batch at a time comes from the batcher: all cores go to intra-op parallelism.
        options.intra_op_num_threads = threads
        # Idle threads sleep instead of spinning: the cores are shared with tokenizing
        # request threads (the same reason the server sets OMP_WAIT_POLICY=PASSIVE).
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        try:
            self.session = ort.InferenceSession(path, options,
                                                providers=["CPUExecutionProvider"])
        except Exception as exc:  # noqa: BLE001 - ORT raises several unrelated types
            raise ModelLoadError(f"{path} is not a loadable ONNX model: {first_line(exc)}"
                                 ) from None
        self.version = ort.__version__
        self.inputs = {i.name: (i.type.replace("tensor(", "").rstrip(")"), len(i.shape))
                       for i in self.session.get_inputs()}
        outputs = self.session.get_outputs()
        self.output = outputs[0].name if outputs else None
        self.output_rank = len(outputs[0].shape) if outputs else 0
        props = self.session.get_modelmeta().custom_metadata_map
        self.metadata = {k[len(META_PREFIX):]: v for k, v in props.items()
                         if k.startswith(META_PREFIX)}

    def run(self, feed: dict) -> np.ndarray:
        return self.session.run([self.output], feed)[0]


OnnxBackend.runner_class = OrtRunner


def _check_inputs(inputs: dict, output_rank: int, path: str) -> tuple[str, ...]:
    """inputs: name -> (element type, rank)."""
    unknown = sorted(set(inputs) - set(INPUTS))
    missing = [n for n in REQUIRED_INPUTS if n not in inputs]
    if unknown or missing:
        raise ModelLoadError(
            f"{path} takes inputs {sorted(inputs)}; a cross-encoder graph takes input_ids,"
            " attention_mask and optionally token_type_ids"
        )
    for name, (kind, rank) in inputs.items():
        if kind != "int64" or rank != 2:
            raise ModelLoadError(
                f"{path}: input {name!r} is {kind} of rank {rank};"
                " expected a 2-d int64 tensor [batch, sequence]"
            )
    if output_rank != 2:
        raise ModelLoadError(f"{path}: the first output must be logits [batch, labels]")
    return tuple(inputs)


def _check_metadata(meta: dict, facts: model_facts.ModelDir, path: str) -> None:
    for key in META_CHECKED:
        if key not in meta:
            continue
        expected = facts.num_labels if key == "num_labels" else facts.config.get(key)
        if str(expected) != meta[key]:
            raise ModelLoadError(
                f"{path} was exported from a model with {key}={meta[key]}, but config.json"
                f" has {key}={expected}: the ONNX file belongs to another model"
            )


def _guess_precision(path: str) -> str:
    name = os.path.basename(path).lower()
    return "int8" if ("int8" in name or "quant" in name) else "float32"
