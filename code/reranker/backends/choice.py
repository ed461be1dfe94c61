"""Which runtime and dtype RERANK_BACKEND=auto runs, per CPU kind and precision, from a
table of measured throughputs (not from guesses about which library is "usually" faster).

Every row of :data:`MEASURED` holds MiniLM-L6 throughputs measured in one interleaved run on
one CPU kind (each Option says which CPU, workload and unit).  The first option of a row
that the model directory and the installed packages allow is the one that serves; a new
measurement is a new number here (docs/BENCHMARKS.md, "Modes per CPU kind", says how).
"""

from __future__ import annotations

import dataclasses
import importlib.util

from .. import cpu
from .. import model_dir as model_facts


@dataclasses.dataclass(frozen=True)
class Option:
    backend: str  # a reranker.loading.BACKENDS name
    dtype: str  # what it computes in
    rate: float  # pairs/s, or pairs per CPU-second where ``where`` says so; 0: not kept
    where: str  # which CPU, workload and run the number comes from


_AMX = ("Intel Xeon with AMX, 2 cores, MiniLM-L6 mixed100, pairs/s, interleaved run of"
        " 2026-12-05 (fp32 budgets: OpenVINO and ONNX Runtime 512, torch 1024; bf16 2048)")
_EPYC = ("AMD EPYC with avx512_bf16, no AMX, 2 cores, MiniLM-L6 opensearch10, pairs per"
         " CPU-second (a contended machine), interleaved run of 2026-12-04")

# (CPU kind, precision) -> options, fastest first.  "fast" may fall back to an exact
# runtime where bf16 is not possible.  Plain CPUs (no bf16 arithmetic) were not measured
# apart: they take the EPYC's fp32 order (the same fp32 kernels, without bf16).
MEASURED: dict[tuple[str, str], tuple[Option, ...]] = {
    # OpenVINO fp32 also led on 10- and 25-document requests (57.7 and 55.2 pairs/s against
    # torch's 46.7 and 45.5, ONNX Runtime's 49.9 and 48.0); the earlier runs on a larger
    # Sapphire Rapids (2026-11) gave the same order.
    (cpu.AMX, "exact"): (
        Option("openvino", "float32", 62.6, _AMX),
        Option("torch", "float32", 57.1, _AMX),
        Option("onnx", "float32", 56.5, _AMX),
    ),
    (cpu.AMX, "fast"): (
        Option("openvino", "bfloat16", 164.9, _AMX),
        Option("torch", "bfloat16", 103.4, _AMX),
        Option("openvino", "float32", 62.6, _AMX),
    ),
    # ONNX Runtime and OpenVINO fp32 are close here (OpenVINO ahead by 5-23% in two wall-clock
    # runs on mixed100, behind by 3-11% per CPU-second); ONNX Runtime keeps the lead for its
    # measured 512-token budget on 10-document requests (docs/BENCHMARKS.md).
    (cpu.AVX512_BF16, "exact"): (
        Option("onnx", "float32", 17.0, _EPYC),
        Option("openvino", "float32", 15.1, _EPYC),
        Option("torch", "float32", 13.1, _EPYC),
    ),
    (cpu.AVX512_BF16, "fast"): (
        Option("openvino", "bfloat16", 21.9, _EPYC),
        Option("torch", "bfloat16", 18.6, _EPYC),
        Option("onnx", "float32", 17.0, _EPYC),
    ),
    (cpu.PLAIN, "exact"): (
        Option("onnx", "float32", 17.0, _EPYC + " (fp32 kernels)"),
        Option("openvino", "float32", 15.1, _EPYC + " (fp32 kernels)"),
        Option("torch", "float32", 13.1, _EPYC + " (fp32 kernels)"),
    ),
}
# No bf16 arithmetic: bf16 would run slower than fp32, so fast is the exact order.
MEASURED[(cpu.PLAIN, "fast")] = MEASURED[(cpu.PLAIN, "exact")]


def cpu_precision(precision: str) -> str:
    """"auto" is exact on CPU."""
    return "fast" if precision == "fast" else "exact"


def cpu_option(facts: model_facts.ModelDir, precision: str, cpu_facts: cpu.CpuFacts) -> Option:
    """The fastest measured option this directory and these packages can run."""
    options = MEASURED[(cpu_facts.kind, cpu_precision(precision))]
    for option in options:
        if runnable(option, facts):
            return option
    # Nothing measured fits (e.g. only an int8 graph, or no torch weights): the graph it has.
    return Option("onnx" if facts.onnx else "torch", "float32", 0.0, "unmeasured fallback")


def runnable(option: Option, facts: model_facts.ModelDir) -> bool:
    if option.backend == "torch":
        return bool(facts.safetensors)
    needs = {"onnx": "onnxruntime", "openvino": "openvino"}[option.backend]
    return (model_facts.ONNX_FILES["fp32"] in facts.onnx
            and importlib.util.find_spec(needs) is not None)
