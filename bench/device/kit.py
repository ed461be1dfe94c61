"""What the device kit holds: wheel sets with exact pins, tokenizer assets, size limits.

The GPU machine has Python 3.12 with torch, transformers, sentence-transformers, numpy,
scipy, onnxruntime, anyio, h11, click and setuptools, but not our serving stack.  Every
wheel it needs is pinned here; pins that container/requirements.txt also makes are read
from there, so the GPU run serves with the versions the image and the tests use.
"""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent
KIT = ROOT / "build" / "device-kit"
# What travels with the working tree to the GPU machine, the tree included.
CARRY_LIMIT = 64 * 2**20
# Room kept free for files that the tree gains before the run.
TREE_MARGIN = 4 * 2**20

# Read from container/requirements.txt (the image's pins).
FROM_REQUIREMENTS = ("starlette", "uvicorn")

# Our server (container/serving) and the project's own install.  The small pure-Python
# dependencies are carried too, pinned to what the tests run with, although the machine
# has some version of them: the run then does not depend on that version.
SERVING = {
    "anyio": "4.16.0",
    "h11": "0.16.0",
    "click": "8.5.1",
    "typing_extensions": "4.16.0",
    # `pip install --no-build-isolation .` builds the project with this.
    "setuptools": "84.2.1",
}

# Infinity (michaelfeil/infinity, MIT), the server users pick instead, with its [server]
# extra.  It needs sentence-transformers<4 (its CrossEncoder subclass uses the 3.x API);
# 3.4.1 runs on transformers 5 (checked here with 5.23).  It installs into its own folder,
# so its older uvicorn and click never meet ours.  numpy (<2 declared) and
# huggingface_hub are the machine's: Infinity's reranking path runs on numpy 2.
INFINITY = {
    "infinity-emb": "0.0.78",
    "sentence-transformers": "3.4.1",
    "fastapi": "0.165.0",
    "starlette": "1.10.0",
    "pydantic": "2.14.4",
    "pydantic-core": "2.50.5",
    "annotated-types": "0.8.0",
    "annotated-doc": "0.0.7",
    "typing-inspection": "0.4.5",
    "typing_extensions": "4.16.0",
    "anyio": "4.16.0",
    "opentelemetry-api": "1.45.2",
    "orjson": "3.13.0",
    "prometheus-fastapi-instrumentator": "8.1.0",
    "prometheus-client": "0.26.0",
    "uvicorn": "0.32.1",
    "httptools": "0.9.0",
    "h11": "0.16.0",
    "click": "8.1.8",
    "typer": "0.12.5",
    "rich": "13.9.4",
}

# The GPU machine's interpreter and platform tags (wheels for it are chosen with these).
TARGET_PYTHON = "3.12"
PLATFORMS = ("manylinux_2_28_x86_64", "manylinux_2_17_x86_64", "manylinux2014_x86_64",
             "manylinux_2_5_x86_64", "manylinux1_x86_64")


def requirement_pins(path: Path = ROOT / "container" / "requirements.txt") -> dict[str, str]:
    """``name==version`` lines of a requirements file, names normalised (PEP 503)."""
    pins = {}
    for line in path.read_text().splitlines():
        match = re.match(r"^\s*([A-Za-z0-9_.\-]+)\s*==\s*([^\s;#]+)", line)
        if match:
            pins[normalise(match.group(1))] = match.group(2)
    return pins


def normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def wheel_sets() -> dict[str, dict[str, str]]:
    """``{"serving": {name: version}, "infinity": {...}}`` with the image's pins merged in."""
    pins = requirement_pins()
    serving = dict(SERVING)
    for name in FROM_REQUIREMENTS:
        serving[name] = pins[normalise(name)]
    return {"serving": serving, "infinity": dict(INFINITY)}
