"""Run our serving image under a real Docker engine for the container tier.

    reason = skip_reason()            # None when an engine answers `docker info`
    image = ensure_image("reranker-serving:cpu")
    with running(image, env={...}, volumes={model_dir: "/opt/ml/model:ro"}) as box:
        httpx.get(box.url + "/ping")

Containers publish their port on 127.0.0.1 only (``-p 127.0.0.1::PORT``) and are always
removed by id when the block ends, also on failure.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import subprocess
import tarfile
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

from bench.local_server import ROOT, ping

IMAGE = os.environ.get("RERANK_TEST_IMAGE", "reranker-serving:cpu")


def docker(*args: str, timeout: float = 120, check: bool = True) -> str:
    """``docker ARGS``' stdout; raises with its stderr when it fails and ``check``."""
    done = subprocess.run(["docker", *args], capture_output=True, text=True, timeout=timeout)
    if check and done.returncode != 0:
        raise RuntimeError(f"docker {' '.join(args[:2])} failed: {done.stderr.strip()}")
    return done.stdout.strip()


def skip_reason() -> str | None:
    """Why the container tier cannot run here, or None when a Docker engine answers."""
    try:
        done = subprocess.run(["docker", "info", "--format", "{{.ServerVersion}}"],
                              capture_output=True, text=True, timeout=30)
    except FileNotFoundError:
        return "no docker command (apt-get install docker.io; .ci/run does it)"
    except subprocess.TimeoutExpired:
        return "docker info did not answer in 30 s"
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["docker info failed"])[-1]
        return f"no Docker engine answers: {last}"
    return None


@functools.cache
def ensure_image(image: str = IMAGE) -> str:
    """``image`` built from this tree, once per test run: an image left by an older tree
    would serve archives whose code/inference.py it cannot import (Docker's cache makes
    this seconds when `make test` has just built it).  An image named by
    RERANK_TEST_IMAGE is taken as it is, built only when missing."""
    given = "RERANK_TEST_IMAGE" in os.environ
    if given and not subprocess.run(["docker", "image", "inspect", image],
                                    capture_output=True).returncode:
        return image
    return build_image(image)


def build_image(image: str) -> str:
    """``make docker-build`` of ``image`` from this tree (seconds when only our code changed;
    a tag ``VARIANT-compiler`` builds with COMPILER=true)."""
    name, _, tag = image.partition(":")
    variant, _, extra = (tag or "cpu").partition("-")
    subprocess.run(["make", "--no-print-directory", "docker-build", f"IMAGE={name}",
                    f"VARIANT={variant}", f"COMPILER={str(extra == 'compiler').lower()}"],
                   cwd=ROOT, check=True)
    return image


def unpack_like_sagemaker(archive: Path, target: Path) -> Path:
    """Unpack ``archive`` into ``target`` readable by the image's uid 1000, as SageMaker does."""
    target.mkdir(parents=True, exist_ok=True)
    with tarfile.open(archive) as tar:
        tar.extractall(target, filter="data")
    for path in [target, *target.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)
    return target


class Container:
    """One running container: its id, the URL of its published port, its state."""

    def __init__(self, cid: str, port: int):
        self.id = cid
        host = docker("port", cid, f"{port}/tcp").splitlines()[0]
        self.url = "http://" + host.replace("0.0.0.0", "127.0.0.1")

    def state(self) -> dict:
        return json.loads(docker("inspect", "--format", "{{json .State}}", self.id))

    def logs(self) -> str:
        done = subprocess.run(["docker", "logs", self.id], capture_output=True, text=True,
                              timeout=60)
        return done.stdout + done.stderr

    def wait_ping(self, status: int, timeout: float = 180) -> None:
        """Block until /ping answers ``status``; raise with the logs if it exits or times out."""
        deadline = time.monotonic() + timeout
        while ping(self.url) != status:
            if not self.state()["Running"] or time.monotonic() > deadline:
                raise RuntimeError(f"/ping never answered {status}:\n{self.logs()[-4000:]}")
            time.sleep(0.1)

    def wait_health(self, status: str, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while (health := self.state().get("Health", {}).get("Status")) != status:
            if time.monotonic() > deadline:
                raise RuntimeError(f"health stayed {health!r}, not {status!r}")
            time.sleep(0.5)


@contextlib.contextmanager
def running(image: str, *, env: Mapping[str, str] | None = None,
            volumes: Mapping[Path, str] | None = None, port: int = 8080,
            options: Sequence[str] = (), command: Sequence[str] = ("serve",),
            ) -> Iterator[Container]:
    """``docker run -d IMAGE serve`` with ``port`` published on 127.0.0.1; removed at the end."""
    args = ["run", "-d", "-p", f"127.0.0.1::{port}", *options]
    for key, value in (env or {}).items():
        args += ["-e", f"{key}={value}"]
    for source, target in (volumes or {}).items():
        args += ["-v", f"{source}:{target}"]
    cid = docker(*args, image, *command)
    try:
        yield Container(cid, port)
    finally:
        docker("rm", "-f", cid, check=False)
