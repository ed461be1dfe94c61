"""The server the HTTP suites test, and the limits it runs under.

``make docker-test`` points RERANK_TEST_URL at our image started with the same SUITE_ENV, so
the same suites run against the container.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

from bench.local_server import start_server

# Server settings the HTTP suite runs under; `make docker-test` passes the same to the image.
SUITE_ENV = {
    "RERANK_MAX_DOCUMENTS": "16",
    "RERANK_MAX_CHARS": "20000",
    "SERVE_MAX_PAYLOAD_BYTES": "262144",
    "SERVE_MAX_CONCURRENCY": "64",
}


@contextlib.contextmanager
def suite_server(model_dir) -> Iterator[str]:
    """The server the HTTP suites test: RERANK_TEST_URL's (make docker-test) or our own."""
    if os.environ.get("RERANK_TEST_URL"):
        yield os.environ["RERANK_TEST_URL"].rstrip("/")
        return
    with start_server(model_dir, env=SUITE_ENV) as url:
        yield url

