"""One small adapter per contender: score (query, documents) -> raw logits, in input order.

Every adapter also says how many tokens it *computes* for a request (real tokens plus the
padding its batching adds), from the real pair lengths, so padding efficiency is
reported the same way for everyone:

* ``CrossEncoder.predict``: sorts by characters, batches of 32, each padded to its longest.
* the aws-samples bge-reranker-large notebook's handler: one batch of every pair, padded
  to the longest.
* HF text-classification pipeline (the DLC's default handler): one pair per forward pass.
* our engine: the batch plan of :func:`reranker.batching.plan_batches`.

Peers return raw logits (no sigmoid) so they compare with our fp32 scores directly;
the activation costs nothing next to the model.
"""

from __future__ import annotations

import contextlib
import io
import os
import shutil
from pathlib import Path

import numpy as np

# The short dtype names of the bench's labels and peer names.
SHORT_DTYPES = {"float32": "fp32", "float16": "fp16", "bfloat16": "bf16"}


class Peer:
    """Base adapter.  ``flops_dtype`` names the GEMM rate this peer's FLOP/s compare to."""

    name = "peer"
    label = "peer"
    # "peer" (what users run today) or "engine" (ours)
    kind = "peer"
    flops_dtype = "float32"

    def score(self, query: str, documents: list[str]) -> np.ndarray:
        raise NotImplementedError

    def computed_tokens(self, pairs: list[tuple[str, str]], lengths: list[int]) -> int:
        raise NotImplementedError

    def describe(self) -> dict:
        return {}

    def close(self) -> None:
        pass


class CrossEncoderPeer(Peer):
    name, label = "crossencoder", "CrossEncoder.predict"
    batch_size = 32  # predict's default

    def __init__(self, model_dir, device: str = "cpu", max_length: int = 512,
                 dtype: str = "float32"):
        import torch
        from sentence_transformers import CrossEncoder

        self.model = CrossEncoder(str(model_dir), device=device, max_length=max_length)
        if dtype != "float32":  # how GPU users run it: the fp32 checkpoint cast to half
            self.model.to(getattr(torch, dtype))
            short = SHORT_DTYPES[dtype]
            self.name, self.label = f"crossencoder-{short}", f"CrossEncoder.predict {short}"
            self.flops_dtype = dtype
        self._identity = torch.nn.Identity()

    def score(self, query, documents):
        pairs = [(query, d) for d in documents]
        return np.asarray(self.model.predict(pairs, activation_fn=self._identity,
                                             show_progress_bar=False), dtype=np.float64)

    def computed_tokens(self, pairs, lengths):
        # predict() sorts by characters (longest first) and pads each batch of 32.
        order = sorted(range(len(pairs)), key=lambda i: -(len(pairs[i][0]) + len(pairs[i][1])))
        total = 0
        for start in range(0, len(order), self.batch_size):
            batch = order[start:start + self.batch_size]
            total += len(batch) * max(lengths[i] for i in batch)
        return total


class AwsSamplePeer(Peer):
    name, label = "aws-sample", "aws-samples notebook handler"

    def __init__(self, model_dir):
        from . import aws_sample_handler

        self._handler = aws_sample_handler
        self.model = aws_sample_handler.model_fn(str(model_dir))

    def score(self, query, documents):
        data = {"query": query, "documents": documents, "topk": len(documents)}
        with contextlib.redirect_stdout(io.StringIO()):  # the handler prints every tensor
            response = self._handler.predict_fn(data, self.model)
        scores = np.empty(len(documents))
        for item in response:
            scores[item["index"]] = float(item["score"])
        return scores

    def computed_tokens(self, pairs, lengths):
        return len(lengths) * max(lengths)


class PipelinePeer(Peer):
    """What the DLC's default handler runs: ``pipeline(inputs, **parameters)``.

    Pairs go as ``{"text", "text_pair"}``; the client sends ``parameters``
    ``{"truncation": true, "function_to_apply": "none"}`` (without truncation long pages
    fail; "none" keeps logits comparable).  The pipeline runs one pair per forward pass.
    """

    name, label = "pipeline", "HF pipeline (DLC default)"

    def __init__(self, model_dir, device: str = "cpu"):
        from transformers import pipeline

        self.pipe = pipeline("text-classification", model=str(model_dir), device=device)

    def score(self, query, documents):
        inputs = [{"text": query, "text_pair": d} for d in documents]
        out = self.pipe(inputs, truncation=True, function_to_apply="none")
        return np.array([item["score"] for item in out], dtype=np.float64)

    def computed_tokens(self, pairs, lengths):
        return int(sum(lengths))


class EnginePeer(Peer):
    """Our engine in one mode (fp32 / bf16 / onnx / onnx-int8 / openvino / openvino-bf16),
    through ``Reranker.score``."""

    kind = "engine"

    def __init__(self, model_dir, mode: str, *, batch_tokens: int = 0, threads: int = 0,
                 device: str = "auto"):
        from reranker.engine import Reranker
        from reranker.settings import Settings

        self.mode = mode
        self.name = f"engine-{mode}"
        self.label = f"ours {mode}"
        options = MODES[mode]
        self.flops_dtype = options.get("flops_dtype", "float32")
        settings = Settings(dtype=options.get("dtype", "float32"),
                            backend=options.get("backend", "torch"),
                            batch_tokens=batch_tokens, threads=threads, device=device,
                            compile=options.get("compile", False))
        self.engine = Reranker.from_dir(str(model_dir), settings)

    def score(self, query, documents):
        return np.asarray(self.engine.score(query, documents, raw=True), dtype=np.float64)

    def computed_tokens(self, pairs, lengths):
        from reranker.batching import plan_batches

        batcher = self.engine.batcher
        multiple = getattr(self.engine.backend, "pad_multiple", 1)
        total = 0
        for batch in plan_batches(lengths, batcher.token_budget, batcher.max_rows):
            longest = -(-max(lengths[i] for i in batch) // multiple) * multiple
            total += len(batch) * longest
        return total

    def describe(self):
        return self.engine.describe()

    def close(self):
        self.engine.close()


# Engine modes: the Settings each one runs with.  ONNX Runtime and OpenVINO modes need a
# model directory with onnx/model.onnx (fp32) or onnx/model_int8.onnx (dynamic int8), see
# onnx_model_dir().
MODES = {
    "fp32": {"dtype": "float32"},
    "bf16": {"dtype": "bfloat16", "flops_dtype": "bfloat16"},
    "onnx": {"backend": "onnx"},
    "onnx-int8": {"backend": "onnx", "flops_dtype": "int8"},
    "openvino": {"backend": "openvino"},
    "openvino-bf16": {"backend": "openvino", "dtype": "bfloat16", "flops_dtype": "bfloat16"},
    "fp32-cuda": {"dtype": "float32"},
    "fp16-cuda": {"dtype": "float16", "flops_dtype": "float16"},
    "bf16-cuda": {"dtype": "bfloat16", "flops_dtype": "bfloat16"},
    # LLM rerankers with RERANK_COMPILE (their MLPs and norms compiled by Inductor)
    "bf16-compiled": {"dtype": "bfloat16", "flops_dtype": "bfloat16", "compile": True},
    "bf16-cuda-compiled": {"dtype": "bfloat16", "flops_dtype": "bfloat16", "compile": True},
}


def onnx_exporter():
    """deploy.package.onnx_export.export_onnx when that module exists, else None (modes skipped)."""
    try:
        from deploy.package.onnx_export import export_onnx
    except ImportError:
        return None
    return export_onnx


def onnx_model_dir(model_dir: Path, cache: Path, quantize: bool) -> Path:
    """A model directory whose onnx/ holds only the variant asked for, exported once
    with ``deploy.package.onnx_export.export_onnx`` (which writes ``out/onnx/``).

    The model files are symlinked, so the torch weights are not copied.  Only the variant
    asked for is present, so the backend cannot pick the other one.
    """
    export = onnx_exporter()
    if export is None:
        raise RuntimeError("deploy.package.onnx_export is not available")
    variant = "int8" if quantize else "fp32"
    out = cache / f"{model_dir.name}-{_fingerprint(model_dir)}-onnx-{variant}"
    if (out / "onnx").is_dir() and any((out / "onnx").glob("*.onnx")):
        return out
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    for item in model_dir.iterdir():
        if item.name not in ("onnx", "code"):
            os.symlink(item.resolve(), out / item.name)
    # The exporter refuses a graph that scores unlike torch; the benchmark reports the
    # deviation itself, so int8 gets a loose gate (relevance scores, 0..1).
    export(model_dir, out, quantize=quantize, tolerance=0.05 if quantize else 1e-4)
    return out


def _fingerprint(model_dir: Path) -> str:
    """Short hash of the directory's path and weights' mtime: a rebuilt model re-exports."""
    import hashlib

    weights = model_dir / "model.safetensors"
    stamp = weights.stat().st_mtime_ns if weights.exists() else 0
    return hashlib.sha256(f"{model_dir.resolve()}:{stamp}".encode()).hexdigest()[:8]
