"""What the client-library suites share: the server under test and the engine to check it by.

The server is suite_server's server (``make docker-test`` points RERANK_TEST_URL and
RERANK_TEST_MODEL_DIR at the container instead); the engine runs in-process on the same
model directory, so every score a client reads is checked against a direct forward pass.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

from suite_server import suite_server


@contextlib.contextmanager
def served(model_dir: Path) -> Iterator[tuple[str, Path]]:
    """(base URL, model directory) of the server under test."""
    if os.environ.get("RERANK_TEST_URL"):
        model_dir = Path(os.environ["RERANK_TEST_MODEL_DIR"])
    with suite_server(model_dir) as url:
        yield url, model_dir


@contextlib.contextmanager
def served_and_engine(model_dir: Path) -> Iterator[tuple[str, object]]:
    """(base URL of the server under test, the engine in-process on its model)."""
    with served(model_dir) as (url, served_dir), local_engine(served_dir) as engine:
        yield url, engine


@contextlib.contextmanager
def local_engine(model_dir: Path):
    from reranker.engine import Reranker
    from reranker.settings import Settings

    engine = Reranker.from_dir(str(model_dir), Settings(warmup=False))
    try:
        yield engine
    finally:
        engine.close()
