"""What the client-library suites share: the engine to check the server under test by.

The server is conftest's base_url (``make docker-test`` points RERANK_TEST_URL and
RERANK_TEST_MODEL_DIR at the container instead); the engine runs in-process on the same
model directory, so every score a client reads is checked against a direct forward pass.
"""

from __future__ import annotations

import contextlib
from pathlib import Path


@contextlib.contextmanager
def local_engine(model_dir: Path):
    from reranker.engine import Reranker
    from reranker.settings import Settings

    engine = Reranker.from_dir(str(model_dir), Settings(warmup=False))
    try:
        yield engine
    finally:
        engine.close()
