"""Infinity (infinity-emb 0.0.78), the peer server, started from `.venv-infinity` on 127.0.0.1.

    with start_infinity(model_dir, dtype="float32") as base_url:
        POST base_url + "/rerank"  {"query": q, "documents": [...], "raw_scores": true}

It serves the same local model directory offline (HF_HUB_OFFLINE=1) with its torch engine
on CPU, at the dtype asked for (float32 for our exact mode, bfloat16 for our fast mode), with
its default dynamic batching (--batch-size 32) and transformers' own attention: no
torch.compile (Infinity's default is off) and no BetterTransformer (Infinity needs optimum
for it, which the lock leaves out).  Usage statistics and the vector disk cache are off.
The venv is `make infinity-venv` (bench/infinity-requirements.txt).
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

from .local_server import ROOT, free_port

ROUTE = "/rerank"
DTYPES = ("float32", "bfloat16")


def venv() -> Path:
    return ROOT / os.environ.get("INFINITY_VENV", ".venv-infinity")


def available() -> str | None:
    """None when Infinity can start here, else why not."""
    if not (venv() / ".installed").is_file():
        return f"{venv().name} is not built (make infinity-venv)"
    return None


def command(model_dir: Path, port: int, dtype: str) -> list[str]:
    if dtype not in DTYPES:
        raise ValueError(f"Infinity dtype {dtype!r}: use one of {DTYPES}")
    return [str(venv() / "bin" / "infinity_emb"), "v2", "--model-id", str(Path(model_dir)),
            "--engine", "torch", "--device", "cpu", "--dtype", dtype,
            "--host", "127.0.0.1", "--port", str(port), "--no-vector-disk-cache"]


def environment(threads: int) -> dict:
    env = dict(os.environ)
    env.update({"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "DO_NOT_TRACK": "1",
                "INFINITY_ANONYMOUS_USAGE_STATS": "0", "TOKENIZERS_PARALLELISM": "false",
                "OMP_NUM_THREADS": str(threads), "OMP_WAIT_POLICY": "PASSIVE"})
    return env


def body(query: str, documents: list[str]) -> bytes:
    """Raw logits, as our server returns them in the benchmark's requests."""
    return json.dumps({"query": query, "documents": documents, "raw_scores": True}).encode()


@contextlib.contextmanager
def start_infinity(model_dir: Path, *, dtype: str = "float32", threads: int = 2,
                   ready_timeout: float = 300.0) -> Iterator[str]:
    """Serve ``model_dir`` until the block ends; yields the base URL."""
    why = available()
    if why:
        raise RuntimeError(why)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    # Its own working directory: Infinity writes a .infinity_cache folder there.
    workdir = tempfile.TemporaryDirectory(prefix="infinity-")
    log_path = Path(workdir.name) / "infinity.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(command(Path(model_dir).resolve(), port, dtype),
                                cwd=workdir.name, env=environment(threads), stdout=log,
                                stderr=subprocess.STDOUT)
    try:
        wait_ready(proc, url, ready_timeout, log_path)
        yield url
    finally:
        stop(proc)
        workdir.cleanup()


def stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def wait_ready(proc: subprocess.Popen, url: str, timeout: float, log_path: Path) -> None:
    """Until Infinity's /health answers 200; RuntimeError with its log's last line if it
    exits or takes longer than ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"Infinity exited with {proc.returncode}: {_tail(log_path)}")
        try:
            with urllib.request.urlopen(url + "/health", timeout=2) as response:
                if response.status == 200:
                    return
        except (OSError, urllib.error.URLError):
            pass
        time.sleep(0.3)
    raise RuntimeError(f"Infinity not ready after {timeout:.0f} s: {_tail(log_path)}")


def _tail(path: Path) -> str:
    lines = path.read_text(errors="replace").strip().splitlines()
    return lines[-1][:300] if lines else "(no output)"
