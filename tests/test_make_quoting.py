"""Values given to make reach the tools as typed: quotes never end a shell word early.

Every recipe quotes a variable with ``$(call shq,...)`` (Makefile), which writes a ``'``
inside the value as ``'\\''``; before that, ``DATA="it's"`` broke the shell line and
``DATA="x'; touch y; '"`` ran the ``touch``.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def make(*args: str) -> subprocess.CompletedProcess:
    # -o: never rebuild .venv from here, whatever changed in requirements.txt.
    return subprocess.run(["make", "-s", "--no-print-directory", "-o", ".venv/.installed",
                           *args], cwd=ROOT, capture_output=True, text=True, timeout=120,
                          stdin=subprocess.DEVNULL)


@pytest.mark.parametrize("target,variable", [
    ("inspect", "ARCHIVE"),
    ("evaluate", "DATA"),
    ("loadtest", "CONCURRENCY"),
    ("package", "MODEL"),
    ("serve", "MODEL"),
    ("dlc-image-run", "MODEL"),
])
def test_a_hostile_value_is_one_argument(tmp_path, target, variable):
    planted = tmp_path / "planted"
    value = f"{tmp_path}/it's; touch {planted}; echo '`touch {planted}`"
    done = make(target, "ENDPOINT=reranker", "REGION=us-east-1", f"{variable}={value}")
    assert not planted.exists(), "a value ran as a shell command"
    assert done.returncode == 2, done.stderr
    assert "unexpected EOF" not in done.stderr and "syntax error" not in done.stderr
    # The tool's own refusal (make adds its "Error 2" line), naming the value whole.
    tool = [line for line in done.stderr.splitlines() if not line.startswith("make:")]
    refusals = [line for line in tool if "error:" in line]
    assert refusals, done.stderr
    if variable != "CONCURRENCY":  # a list of ints: its first word is refused
        assert value in refusals[-1], done.stderr


@pytest.mark.parametrize("target", ["package", "evaluate", "loadtest"])
def test_a_recipe_without_its_optional_flags_echoes_no_empty_lines(target):
    """Optional flags are gathered on the command's line: none set leaves no line of only
    spaces and a backslash in what make echoes."""
    done = make("-n", target, "MODEL=m", "DATA=d", "ENDPOINT=e")
    assert done.returncode == 0, done.stderr
    assert not [line for line in done.stdout.splitlines() if line.strip(" \\") == ""]


def test_docker_run_passes_the_container_settings_given_to_make():
    """As `make serve` takes RERANK_*/SERVE_* from make's command line, so does the image;
    where the server listens inside is the image's own (the published port maps to 8080)."""
    done = make("-n", "docker-run", "RERANK_PRECISION=fast", "SERVE_API_KEY=k", "SERVE_PORT=9")
    run = done.stdout[done.stdout.index("docker run"):]
    assert "-e RERANK_PRECISION" in run and "-e SERVE_API_KEY" in run
    assert "--stop-timeout 30" in run  # docker stop's 10 s would cut the server's 25 s drain
    assert "SERVE_PORT" not in run and "k" not in run.split()  # by name, never the value


def test_docker_run_on_a_port_in_use_is_one_line_before_docker(tmp_path):
    """Docker's own answer is 'driver failed programming external connectivity'; the make
    target says which port and what to pass, before any container is made."""
    import shutil
    import socket

    if shutil.which("docker") is None or subprocess.run(
            ["docker", "info"], capture_output=True, timeout=60).returncode != 0:
        pytest.skip("no Docker engine runs here: docker-run stops before the port check")
    (tmp_path / "config.json").write_text("{}")  # a model folder, as far as make looks
    tmp_path.chmod(0o755)
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        done = make("docker-run", f"PORT={port}", f"MODEL={tmp_path}")
    assert done.returncode == 2
    assert f"error: cannot publish on 127.0.0.1:{port}: Address already in use" in done.stderr
