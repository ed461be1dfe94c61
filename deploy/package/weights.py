"""Safetensors weights on disk: one file or shards, checked and counted without loading.

A 4B or 8B checkpoint is sharded (``model.safetensors.index.json`` and
``model-0000x-of-0000y.safetensors``).  The index must name exactly the shards present;
parameters are counted from each file's JSON header (8 bytes of length, then the header),
so a 16 GB model is sized without reading its tensors.
"""

from __future__ import annotations

import json
import re
import struct
from pathlib import Path

from deploy.errors import UserError

INDEX = "model.safetensors.index.json"
SINGLE = "model.safetensors"
SHARD = re.compile(r"^model-(\d+)-of-(\d+)\.safetensors$")
# A header larger than this is not a safetensors header (the format caps it at 100 MB).
MAX_HEADER = 100 * 1024 * 1024
DTYPE_BYTES = {"F64": 8, "I64": 8, "U64": 8, "F32": 4, "I32": 4, "U32": 4, "F16": 2,
               "BF16": 2, "I16": 2, "U16": 2, "F8_E4M3": 1, "F8_E5M2": 1, "I8": 1, "U8": 1,
               "BOOL": 1}


def files(model_dir: Path) -> list[Path]:
    """The weight files: model.safetensors, or the shards the index names (checked)."""
    model_dir = Path(model_dir)
    if (model_dir / INDEX).is_file():
        return _shards(model_dir)
    if (model_dir / SINGLE).is_file():
        return [model_dir / SINGLE]
    return []


def _shards(model_dir: Path) -> list[Path]:
    try:
        index = json.loads((model_dir / INDEX).read_text())
        named = sorted(set(index["weight_map"].values()))
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise UserError(f"{INDEX} is not a valid safetensors index: {exc}") from None
    bad = [n for n in named if "/" in n or "\\" in n or not n.endswith(".safetensors")]
    if bad:
        raise UserError(f"{INDEX} names {bad[0]!r}, not a safetensors file beside it")
    missing = [n for n in named if not (model_dir / n).is_file()]
    if missing:
        raise UserError(f"{INDEX} names {len(missing)} shard(s) that are missing, first"
                        f" {missing[0]}: download every model-*-of-*.safetensors")
    totals = {m.group(2) for n in named if (m := SHARD.match(n))}
    if len(totals) == 1 and len(named) != int(totals.pop()):
        raise UserError(f"{INDEX} names {len(named)} shards, but their names say there are"
                        " more: the index and the shards come from different revisions")
    return [model_dir / n for n in named]


def header(path: Path) -> dict:
    """A safetensors file's header: {tensor: {"dtype", "shape", "data_offsets"}, ...}."""
    try:
        with open(path, "rb") as fh:
            raw = fh.read(8)
            if len(raw) != 8:
                raise ValueError("shorter than its 8-byte header length")
            (length,) = struct.unpack("<Q", raw)
            if length > MAX_HEADER:
                raise ValueError(f"header length {length} is not plausible")
            data = json.loads(fh.read(length))
    except (OSError, ValueError) as exc:
        raise UserError(f"{path.name} is not a safetensors file: {exc}") from None
    data.pop("__metadata__", None)
    return data


def parameter_count(model_dir: Path) -> int:
    """Parameters in the weight files, from their headers only."""
    total = 0
    for path in files(model_dir):
        for tensor in header(path).values():
            count = 1
            for dim in tensor.get("shape", []):
                count *= int(dim)
            total += count
    return total


def stored_bytes(model_dir: Path) -> int:
    return sum(p.stat().st_size for p in files(model_dir))
