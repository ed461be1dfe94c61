"""What this CPU can do fast, read once from /proc/cpuinfo (empty elsewhere)."""

from __future__ import annotations

import functools


@functools.lru_cache(maxsize=1)
def flags() -> frozenset[str]:
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                key, _, value = line.partition(":")
                if key.strip() == "flags":
                    return frozenset(value.split())
    except OSError:
        pass
    return frozenset()


def has_bf16() -> bool:
    return bool({"avx512_bf16", "amx_bf16"} & flags())


def has_amx() -> bool:
    return "amx_bf16" in flags()
