"""Where and in what a torch backend computes: device, dtype and CPU threads."""

from __future__ import annotations

import logging
import re
from pathlib import Path

import torch

from .. import cpu
from .base import ModelLoadError

log = logging.getLogger(__name__)

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


# The kernel module's version line, there whenever the host has an NVIDIA driver loaded
# (also inside a container that was not given the GPU).
NVIDIA_DRIVER_FILE = Path("/proc/driver/nvidia/version")
# The oldest Linux driver each CUDA major version runs on (minor-version compatibility).
MIN_DRIVER = {11: 450, 12: 525, 13: 580}


def pick_device(requested: str, driver_file: Path = NVIDIA_DRIVER_FILE) -> torch.device:
    """``auto``: the GPU when torch can use one, else the CPU; but a CUDA build of torch on
    a host with an NVIDIA driver it cannot use is refused, not served slowly on the CPU."""
    if torch.cuda.is_available():
        device = torch.device("cuda" if requested == "auto" else requested)
        capability = torch.cuda.get_device_capability(device)
        if not has_kernels_for(capability, torch.cuda.get_arch_list()):
            raise ModelLoadError(
                f"this GPU (compute capability {capability[0]}.{capability[1]},"
                f" {torch.cuda.get_device_name(device)}) has no kernels in torch"
                f" {torch.__version__} (CUDA {torch.version.cuda}, built for"
                f" {', '.join(torch.cuda.get_arch_list())}): CUDA 13 dropped Volta (V100,"
                " ml.p3); use a newer GPU (ml.g4dn and later) or a torch built for it")
        return device
    if requested.startswith("cuda"):
        raise ModelLoadError(f"RERANK_DEVICE={requested} but no CUDA device is visible"
                             f"{unusable_gpu(driver_file) or ''}")
    if requested == "auto":
        reason = unusable_gpu(driver_file)
        if reason:
            raise ModelLoadError(f"this host has an NVIDIA GPU that torch cannot use{reason};"
                                 " set RERANK_DEVICE=cpu to run on the CPU anyway")
    return torch.device("cpu" if requested == "auto" else requested)


def has_kernels_for(capability: tuple[int, int], arch_list: list[str]) -> bool:
    """Whether a torch built for ``arch_list`` runs on a GPU of ``capability``: a cubin
    (sm_XY) runs on the same major at that minor or later, PTX (compute_XY) is compiled
    for any GPU at or after it.  Without the list (a build that does not say), assume so."""
    if not arch_list:
        return True
    for arch in arch_list:
        match = re.fullmatch(r"(sm|compute)_(\d+)(\d)[a-z]?", arch)
        if not match:
            continue
        built = (int(match.group(2)), int(match.group(3)))
        if match.group(1) == "compute" and built <= capability:
            return True
        if built[0] == capability[0] and built[1] <= capability[1]:
            return True
    return False


def unusable_gpu(driver_file: Path, cuda: str | None = None) -> str | None:
    """Why a CUDA build of torch sees no GPU on a host that has an NVIDIA driver (None: no
    driver here, or a CPU build of torch, which is a choice)."""
    cuda = cuda or torch.version.cuda
    if not cuda:
        return None
    try:
        line = driver_file.read_text()
    except OSError:
        return None
    match = re.search(r"Kernel Module\s+(?:for \S+\s+)?(\d+)\.[\d.]+", line)
    driver = int(match.group(1)) if match else None
    needed = MIN_DRIVER.get(int(cuda.split(".")[0]))
    if driver and needed and driver < needed:
        return (f": its driver {driver} is older than the {needed} that torch"
                f" {torch.__version__} (CUDA {cuda}) needs (on SageMaker: deploy with"
                " INFERENCE_AMI=auto, which picks a host image with a newer driver)")
    return (f" (driver {driver or 'unknown'}, torch built for CUDA {cuda}): the GPU was"
            " not given to this container (docker run --gpus all) or the driver failed")


def pick_dtype(requested: str, device: torch.device) -> str:
    """On CUDA, ``auto`` is bf16 where the GPU computes it natively (compute capability 8+:
    A10G, L4, L40S, A100, H100) and fp16 before that (T4 on g4dn), where torch would
    otherwise emulate bf16 without tensor cores."""
    if device.type == "cuda":
        if requested == "auto":
            return "bfloat16" if native_bf16(device) else "float16"
        if requested == "bfloat16" and not torch.cuda.is_bf16_supported():
            return "float16"
        return requested
    if requested == "float16":
        raise ModelLoadError("RERANK_DTYPE=float16 is for GPUs; on CPU use float32 or bfloat16")
    return "float32" if requested == "auto" else requested


def cpu_threads(default: int, cgroup: Path = cpu.CGROUP) -> int:
    """Threads where RERANK_THREADS leaves it to us: torch's ``default`` (a thread per core
    it may run on), or the CPU quota's cores where a quota allows fewer (0: no change)."""
    usable = cpu.usable_cores(cgroup)
    return usable if usable < default else 0


def native_bf16(device: torch.device) -> bool:
    if torch.version.hip:
        return True
    return torch.cuda.get_device_capability(device)[0] >= 8


def place(device: str, dtype: str, threads: int) -> tuple[torch.device, str]:
    """The device and dtype a backend computes in, with torch's CPU threads set."""
    chosen = pick_device(device)
    dtype = pick_dtype(dtype, chosen)
    if chosen.type == "cpu":
        threads = threads or cpu_threads(torch.get_num_threads())
        if threads:
            torch.set_num_threads(threads)
    if chosen.type == "cpu" and dtype == "bfloat16" and not cpu.has_bf16():
        log.warning("this CPU has no avx512_bf16/AMX: bfloat16 will be slower than float32")
    return chosen, dtype
