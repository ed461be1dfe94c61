"""What the numbers were measured on: CPU, flags, software versions, and GEMM rates.

The matrix-multiply rate is the yardstick for "model FLOP/s as a share of the machine":
measured once per run with torch on the same threads the peers use, fp32 and (where the
CPU has avx512_bf16 / AMX) bf16.
"""

from __future__ import annotations

import datetime
import importlib.metadata
import os
import platform
import time

# Flags that decide which fast paths this CPU has.
INTERESTING_FLAGS = ("avx2", "avx512f", "avx512_vnni", "avx512_bf16", "avx512_fp16",
                     "amx_tile", "amx_bf16", "amx_int8")
PACKAGES = ("torch", "transformers", "tokenizers", "sentence-transformers", "onnxruntime",
            "numpy", "uvicorn")
# The DLC stack lives in its own venv (transformers 4.x): its versions are read from there.
DLC_PACKAGES = ("sagemaker-huggingface-inference-toolkit", "multi-model-server", "torch",
                "transformers")


def cpu_info() -> dict:
    from reranker.cpu import CpuFacts

    model, flags = platform.processor() or "unknown", set()
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                key, _, value = line.partition(":")
                if key.strip() == "model name":
                    model = value.strip()
                elif key.strip() == "flags":
                    flags.update(value.split())
    except OSError:
        pass
    from reranker.cpu import usable_cores

    return {
        "model": model,
        # The cores this process may use (its affinity mask, or fewer under a CPU quota), as
        # the engine counts them: a container or taskset may allow fewer than are online.
        "cores": usable_cores(),
        "online_cores": os.cpu_count(),
        "flags": [f for f in INTERESTING_FLAGS if f in flags],
        "bf16": "avx512_bf16" in flags or "amx_bf16" in flags,
        # The row of the product's measured runtime table (reranker.backends.choice).
        "kind": CpuFacts(flags=frozenset(flags)).kind,
        "machine": platform.machine(),
        "system": f"{platform.system()} {platform.release()}",
    }


def versions() -> dict:
    out = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return out


def dlc_versions() -> dict:
    """Package versions of the DLC stack's venv (.venv-dlc), {} when it is not built."""
    import json
    import subprocess
    from pathlib import Path

    venv = Path(os.environ.get("DLC_VENV", Path(__file__).resolve().parent.parent / ".venv-dlc"))
    python = venv / "bin" / "python"
    if not python.exists():
        return {}
    code = ("import importlib.metadata as m, json, sys\n"
            "out = {}\n"
            "for n in sys.argv[1:]:\n"
            "    try: out[n] = m.version(n)\n"
            "    except m.PackageNotFoundError: pass\n"
            "print(json.dumps(out))")
    try:
        done = subprocess.run([str(python), "-c", code, *DLC_PACKAGES], capture_output=True,
                              text=True, timeout=60, check=True)
        return json.loads(done.stdout)
    except (OSError, subprocess.SubprocessError, ValueError):
        return {}


def gpu_info() -> dict | None:
    import torch

    if not torch.cuda.is_available():
        return None
    props = torch.cuda.get_device_properties(0)
    return {"name": props.name, "memory_gib": round(props.total_memory / 2**30, 1),
            "count": torch.cuda.device_count(), "cuda": torch.version.cuda,
            "capability": f"{props.major}.{props.minor}",
            "bf16": props.major >= 8}  # native; torch's own check also counts emulation


def gemm_rate(dtype: str = "float32", device: str = "cpu", sizes=(1024, 2048),
              seconds: float = 1.0) -> float:
    """Best sustained FLOP/s of ``a @ b`` over a few square sizes (2 n^3 flops each)."""
    import torch

    dt = getattr(torch, dtype)
    best = 0.0
    for n in sizes:
        a = torch.randn(n, n, device=device).to(dt)
        b = torch.randn(n, n, device=device).to(dt)
        a @ b  # first call pays for kernel selection / JIT
        _sync(device)
        deadline = time.perf_counter() + seconds
        while time.perf_counter() < deadline:
            start = time.perf_counter()
            for _ in range(3):
                a @ b
            _sync(device)
            best = max(best, 3 * 2 * n**3 / (time.perf_counter() - start))
    return best


def cpu_gemm_by_library(bf16: bool, seconds: float, threads: int | None = None) -> dict:
    """GEMM FLOP/s per library and dtype on this CPU, on ``threads`` threads (default:
    torch's setting, which the bench sets to its --threads)."""
    import torch

    threads = threads or torch.get_num_threads()
    rates = {"torch float32": gemm_rate("float32", seconds=seconds),
             "onnxruntime float32": ort_gemm_rate(seconds=seconds, threads=threads)}
    if bf16:
        rates["torch bfloat16"] = gemm_rate("bfloat16", seconds=seconds)
    return rates


def cpu_ceilings(by_library: dict) -> dict:
    """cpu_<dtype> -> the best rate any library reached: torch's MKL/oneDNN fp32 kernels are
    not the fastest on every CPU (ONNX Runtime's MLAS beat them by 30-50% on the AMD EPYC),
    and a share above 100% of a ceiling would say nothing."""
    out = {}
    for dt in ("float32", "bfloat16"):
        rates = [v for k, v in by_library.items() if k.endswith(dt) and v]
        if rates:
            out[f"cpu_{dt}"] = max(rates)
    return out


def remeasure_cpu(info: dict, seconds: float) -> None:
    """Measure the CPU ceilings again and keep the best of both: on a shared machine a
    neighbour's burst during one measurement would otherwise sink the ceiling."""
    again = cpu_gemm_by_library(info["cpu"]["bf16"], seconds, info.get("torch_threads"))
    best = info.setdefault("gemm_by_library", {})
    for key, value in again.items():
        best[key] = max(best.get(key, 0.0), value)
    info["gemm_flops"].update(cpu_ceilings(best))


def ort_gemm_rate(n: int = 1024, seconds: float = 1.0, threads: int = 0) -> float:
    """FLOP/s of one fp32 MatMul in ONNX Runtime (MLAS) on ``threads`` intra-op threads (0:
    ONNX Runtime's default, one per physical core); 0 without ONNX Runtime."""
    try:
        import numpy as np
        import onnxruntime as ort
        from onnx import TensorProto, helper
    except ImportError:
        return 0.0
    io = [helper.make_tensor_value_info(x, TensorProto.FLOAT, [n, n]) for x in "ABC"]
    graph = helper.make_graph([helper.make_node("MatMul", ["A", "B"], ["C"])], "gemm",
                              io[:2], io[2:])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8  # readable by every ONNX Runtime of the last years
    options = ort.SessionOptions()
    # The same thread count as the peers and torch's GEMM: the ceilings must compare.
    options.intra_op_num_threads = threads
    session = ort.InferenceSession(model.SerializeToString(), sess_options=options,
                                   providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(0)
    feed = {"A": rng.standard_normal((n, n), dtype=np.float32),
            "B": rng.standard_normal((n, n), dtype=np.float32)}
    session.run(None, feed)
    best, deadline = 0.0, time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        start = time.perf_counter()
        for _ in range(3):
            session.run(None, feed)
        best = max(best, 3 * 2 * n**3 / (time.perf_counter() - start))
    return best


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        import torch

        torch.cuda.synchronize()


def describe(measure_gemm: bool = True, gemm_seconds: float = 1.0) -> dict:
    """The machine, and its GEMM ceilings on torch's thread count (set from --threads)."""
    import torch

    cpu = cpu_info()
    info = {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "cpu": cpu,
        "torch_threads": torch.get_num_threads(),
        "versions": versions(),
        "dlc_versions": dlc_versions(),
        "gpu": gpu_info(),
        "gemm_flops": {},
    }
    if measure_gemm:
        info["gemm_by_library"] = cpu_gemm_by_library(cpu["bf16"], gemm_seconds,
                                                      info["torch_threads"])
        info["gemm_flops"].update(cpu_ceilings(info["gemm_by_library"]))
        if info["gpu"]:
            for dt in ("float32", "float16", "bfloat16"):
                info["gemm_flops"][f"cuda_{dt}"] = gemm_rate(
                    dt, device="cuda", sizes=(4096, 8192), seconds=gemm_seconds)
    return info
