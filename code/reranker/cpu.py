"""What this CPU can do fast: its vendor and instruction-set flags, as one CpuFacts value.

Read once from /proc/cpuinfo (empty elsewhere), unless RERANK_CPU_FEATURES names the CPU
to assume instead, so that every CPU-dependent choice (runtime, dtype, token budget) can
be made, and tested, for a CPU the process does not run on:

    RERANK_CPU_FEATURES=amx            an Intel Xeon with AMX (Sapphire Rapids and later)
    RERANK_CPU_FEATURES=avx512_bf16    an AMD EPYC with avx512_bf16 (Zen 4), no AMX
    RERANK_CPU_FEATURES=plain          avx2 only: no bf16 arithmetic
    RERANK_CPU_FEATURES=avx512f,avx512_bf16,...   any other list of /proc/cpuinfo flags
    RERANK_CPU_FEATURES=auto (or unset)           this machine's /proc/cpuinfo
"""

from __future__ import annotations

import dataclasses
import functools
import math
import os
from pathlib import Path

ENV = "RERANK_CPU_FEATURES"
# The CPU kinds the runtime table (reranker.backends.choice) has measurements for.
AMX, AVX512_BF16, PLAIN = "amx", "avx512_bf16", "plain"
KINDS = (AMX, AVX512_BF16, PLAIN)


@dataclasses.dataclass(frozen=True)
class CpuFacts:
    vendor: str = ""  # /proc/cpuinfo's vendor_id: "GenuineIntel", "AuthenticAMD"
    flags: frozenset[str] = frozenset()
    source: str = "auto"  # where the facts came from: "auto" (this CPU) or the override

    @property
    def amx(self) -> bool:
        return "amx_bf16" in self.flags

    @property
    def bf16(self) -> bool:
        """bf16 arithmetic in hardware (AMX tiles or avx512_bf16 dot products)."""
        return bool({"avx512_bf16", "amx_bf16"} & self.flags)

    @property
    def kind(self) -> str:
        """The row of the measured runtime table this CPU falls in."""
        if self.amx:
            return AMX
        return AVX512_BF16 if self.bf16 else PLAIN


_AVX512 = frozenset({"avx2", "fma", "avx512f", "avx512bw", "avx512vl", "avx512_vnni"})
PRESETS = {
    AMX: CpuFacts("GenuineIntel", _AVX512 | {"avx512_bf16", "amx_bf16", "amx_int8",
                                             "amx_tile"}, AMX),
    AVX512_BF16: CpuFacts("AuthenticAMD", _AVX512 | {"avx512_bf16"}, AVX512_BF16),
    PLAIN: CpuFacts("", frozenset({"avx2", "fma"}), PLAIN),
}


def check(spec: str) -> str | None:
    """None when ``spec`` is a valid RERANK_CPU_FEATURES value, else why not."""
    spec = (spec or "").strip().lower()
    if spec in ("", "auto") or spec in PRESETS:
        return None
    flags = [f.strip() for f in spec.split(",")]
    if len(flags) < 2 or any(not f or not f.replace("_", "").isalnum() for f in flags):
        return (f"must be auto, one of {', '.join(KINDS)}, or a comma-separated list of"
                " /proc/cpuinfo flags (e.g. avx2,avx512f,avx512_bf16)")
    return None


def facts(spec: str | None = None) -> CpuFacts:
    """The CPU to plan for: ``spec`` (a RERANK_CPU_FEATURES value; None reads the variable),
    else this machine's."""
    if spec is None:
        spec = os.environ.get(ENV, "")
    spec = spec.strip().lower()
    if spec in ("", "auto"):
        return this_machine()
    if spec in PRESETS:
        return PRESETS[spec]
    problem = check(spec)
    if problem:
        raise ValueError(f"{ENV}={spec!r} {problem}")
    return CpuFacts("", frozenset(f.strip() for f in spec.split(",")), spec)


@functools.lru_cache(maxsize=1)
def this_machine() -> CpuFacts:
    vendor, flag_set = "", frozenset()
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                key, _, value = line.partition(":")
                key = key.strip()
                if key == "vendor_id" and not vendor:
                    vendor = value.strip()
                elif key == "flags":
                    flag_set = frozenset(value.split())
                    break
    except OSError:
        pass
    return CpuFacts(vendor, flag_set, "auto")


# The older function API, over facts() so that the override applies to it too.
def flags() -> frozenset[str]:
    return facts().flags


def has_bf16() -> bool:
    return facts().bf16


def has_amx() -> bool:
    return facts().amx


# Where a container sees its own cgroup (a cgroup namespace): v2's cpu.max, or v1's pair.
CGROUP = Path("/sys/fs/cgroup")


def usable_cores(cgroup: Path = CGROUP) -> int:
    """The cores this process may use: those it may run on, fewer under a CPU quota (docker
    run --cpus, an inference component's CPU cores, a Kubernetes limit), where threads for
    every core would only wait their turn."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cores = os.cpu_count() or 1
    quota = quota_cores(cgroup)
    return min(cores, quota) if quota else cores


def quota_cores(cgroup: Path = CGROUP) -> int | None:
    """The CPU quota as whole cores, rounded up (None: no quota, or no cgroup to read)."""
    for quota_file, period_file in (("cpu.max", None),
                                    ("cpu/cpu.cfs_quota_us", "cpu/cpu.cfs_period_us"),
                                    ("cpu,cpuacct/cpu.cfs_quota_us",
                                     "cpu,cpuacct/cpu.cfs_period_us")):
        try:
            fields = (cgroup / quota_file).read_text().split()
            if period_file:
                fields.append((cgroup / period_file).read_text().strip())
            quota, period = fields[0], int(fields[1])
        except (OSError, IndexError, ValueError):
            continue
        if quota in ("max", "-1") or period <= 0:
            return None
        return max(1, math.ceil(int(quota) / period))
    return None
