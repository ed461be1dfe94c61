"""The OpenVINO backend: the exported ONNX graph on OpenVINO's CPU plugin.

fp32 for RERANK_PRECISION=exact, bf16 for fast (the dtype reranker.loading.plan decides;
OpenVINO's own default would be bf16 on CPUs with AMX/avx512_bf16).  The file is chosen and
checked exactly as by the ONNX Runtime backend; only the runtime differs.  Optional
(pip install openvino): imported when the backend is built.
"""

from __future__ import annotations

import numpy as np

from .base import ModelLoadError, first_line
from .onnx_backend import FP32_BATCH_TOKENS, OnnxBackend


class OpenVinoBackend(OnnxBackend):
    name = "openvino"
    # OpenVINO fp32 on the AMX Xeon (2 cores, 2026-12-05, interleaved): 512 padded tokens
    # beat 1024 by 7% at 10 documents and 3% at 25, within 2% on 100 (docs/BENCHMARKS.md).
    fp32_batch_tokens = FP32_BATCH_TOKENS


class OpenVinoRunner:
    """OpenVINO's CPU plugin on the same ONNX file, with the inference precision set from the
    dtype asked for (f32 or bf16).  Optional (pip install openvino); the graph's metadata is
    not read here, so a foreign graph is caught by the input and label checks only."""

    name = "openvino"
    _HINTS = {"float32": "f32", "bfloat16": "bf16"}

    def __init__(self, path: str, threads: int, dtype: str):
        try:
            import openvino as ov
        except ImportError:
            raise ModelLoadError("RERANK_ONNX_RUNTIME=openvino needs openvino"
                                 " (pip install openvino)") from None
        config = {"INFERENCE_NUM_THREADS": threads, "PERFORMANCE_HINT": "LATENCY"}
        # Always set: left alone, OpenVINO would compute in bf16 on bf16 CPUs, never exact.
        config["INFERENCE_PRECISION_HINT"] = self._HINTS.get(dtype, "f32")
        try:
            core = ov.Core()
            compiled = core.compile_model(core.read_model(path), "CPU", config)
        except Exception as exc:  # noqa: BLE001 - OpenVINO raises RuntimeError and others
            raise ModelLoadError(f"{path} is not a loadable ONNX model: {first_line(exc)}"
                                 ) from None
        self.version = ov.__version__ if hasattr(ov, "__version__") else ov.get_version()
        int64 = ov.Type.i64
        self.inputs = {i.get_any_name(): ("int64" if i.get_element_type() == int64
                                          else str(i.get_element_type()),
                                          len(i.get_partial_shape()))
                       for i in compiled.inputs}
        self.output_rank = len(compiled.outputs[0].get_partial_shape()) \
            if compiled.outputs else 0
        self.metadata = {}
        hint = str(compiled.get_property("INFERENCE_PRECISION_HINT")).lower()
        self.precision = "bfloat16" if "bf16" in hint or "bfloat16" in hint else None
        # One request object: forward() is called by the batcher's single worker thread.
        self.request = compiled.create_infer_request()
        self.names = list(self.inputs)

    def run(self, feed: dict) -> np.ndarray:
        result = self.request.infer({name: feed[name] for name in self.names})
        return next(iter(result.values()))


OpenVinoBackend.runner_class = OpenVinoRunner
