"""Run the DLC-equivalent image (container/dlc, `make dlc-image`) as SageMaker runs the real
Hugging Face DLC: `docker run IMAGE serve`, the model.tar.gz unpacked at /opt/ml/model,
port 8080 published on 127.0.0.1 only.

    reason = skip_reason()        # None when Docker runs and the image can be had
    with serve(unpacked_dir, env={...}) as box:    # ready: an invocation answered 200
        httpx.post(box.url + "/invocations", ...)

The container is removed by id when the block ends, also on failure (tests/dockerutil.py).
"""

from __future__ import annotations

import contextlib
import os
import subprocess
from collections.abc import Iterator, Mapping
from pathlib import Path

import dockerutil
from bench import dlc_stack as dlcutil
from bench.local_server import ROOT

IMAGE = os.environ.get("RERANK_DLC_IMAGE", "reranker-dlc:cpu")
# What SageMaker sets for a HuggingFaceModel with entry_point/SAGEMAKER_PROGRAM (the aws-samples
# bge-reranker-large notebook).
SAGEMAKER_ENV = {"SAGEMAKER_PROGRAM": "inference.py", "SAGEMAKER_REGION": "us-east-1"}


def image_present(image: str = IMAGE) -> bool:
    done = subprocess.run(["docker", "image", "inspect", image], capture_output=True)
    return done.returncode == 0


def skip_reason(image: str = IMAGE) -> str | None:
    """Why the image cannot run here, or None.  A missing image is built once (make
    dlc-image, a few minutes cold); a failed build is a reason, not a crash."""
    reason = dockerutil.skip_reason()
    if reason or image_present(image):
        return reason
    done = subprocess.run(["make", "--no-print-directory", "dlc-image", f"DLC_IMAGE={image}"],
                          cwd=ROOT, capture_output=True, text=True)
    if done.returncode or not image_present(image):
        return f"`make dlc-image` could not build {image}: {done.stderr.strip()[-500:]}"
    return None


def in_container(box: dockerutil.Container, *command: str) -> str:
    return dockerutil.docker("exec", box.id, *command, timeout=120)


@contextlib.contextmanager
def serve(model_dir: Path, env: Mapping[str, str] | None = None, *, image: str = IMAGE,
          options: tuple[str, ...] = (), ready_timeout: float = 240.0,
          ) -> Iterator[dockerutil.Container]:
    """The image serving ``model_dir`` (an unpacked model.tar.gz) read-only at /opt/ml/model,
    until the block ends; yields once an invocation answered 200 (the DLC's /ping says
    nothing about its workers)."""
    with dockerutil.running(image, env={**SAGEMAKER_ENV, **(env or {})},
                            volumes={model_dir: "/opt/ml/model:ro"}, options=options) as box:
        dlcutil.wait_invocations(box.url, alive=lambda: box.state()["Running"],
                                 tail=lambda: box.logs()[-4000:], timeout=ready_timeout)
        yield box
