"""A model directory whose own code/inference.py waits on gate files, so a test reaches
each server state (loading, busy, draining) on purpose rather than by timing.

Used by the server's lifecycle tests and by the same contract run against our image."""

from __future__ import annotations

import textwrap
import threading
import time
from pathlib import Path

import httpx

GATED_INFERENCE = textwrap.dedent('''
    import os
    import time
    from pathlib import Path

    from reranker import dialects
    from reranker.engine import Reranker

    GATES = Path(os.environ["TEST_GATE_DIR"])


    def wait_for(name):
        while not (GATES / name).exists():
            time.sleep(0.02)


    def model_fn(model_dir):
        wait_for("load")
        return Reranker.from_dir(model_dir)


    def input_fn(data, content_type):
        return dialects.parse(data, content_type)


    def predict_fn(request, model):
        query = request.pairs[0][0]
        if query.startswith("block:"):
            (GATES / ("blocked-" + query[6:])).touch()
            wait_for("release-" + query[6:])
        if query == "explode":
            raise RuntimeError("a bug in our code")
        return model.rerank(request)
''')


def wait_file(path: Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert time.monotonic() < deadline, f"{path.name} never appeared"
        time.sleep(0.02)


def post_in_thread(url: str, body: dict) -> tuple[threading.Thread, dict]:
    out: dict = {}

    def run():
        out["response"] = httpx.post(url + "/invocations", json=body, timeout=60)

    thread = threading.Thread(target=run)
    thread.start()
    return thread, out
