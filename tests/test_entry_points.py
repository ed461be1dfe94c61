"""Every command-line entry point runs from a bare interpreter.

The tests themselves run with tests/ on the path and the project imported; a user's shell
has neither.  Each command here runs in a fresh interpreter, from an empty working
directory, with no PYTHONPATH: it works only if the installed project (`make venv`) is
enough.  `make vespa` on a model directory without onnx/ once failed exactly like this
(`No module named 'reranker'`), because only the tests put code/ on the path.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

BIN = Path(sys.executable).parent
DEPLOY_COMMANDS = ["package", "inspect", "upload", "deploy", "status", "delete", "invoke",
                   "evaluate", "capture-export", "loadtest", "cloudformation", "transform",
                   "opensearch", "elasticsearch", "vespa"]


def bare_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP", "PYTHONSAFEPATH")}
    env.update(HF_HUB_OFFLINE="1", TOKENIZERS_PARALLELISM="false")
    return env


def run(args: list[str], cwd: Path, timeout: int = 120) -> subprocess.CompletedProcess:
    return subprocess.run(args, cwd=cwd, env=bare_env(), capture_output=True, text=True,
                          timeout=timeout, stdin=subprocess.DEVNULL)


@pytest.mark.parametrize("args", [
    ["-m", "deploy", "--help"],
    *[["-m", "deploy", command, "--help"] for command in DEPLOY_COMMANDS],
    ["-m", "serving", "--help"],
    ["-m", "bench", "--help"],
], ids=lambda args: " ".join(args[1:-1]) or "deploy")
def test_module_help_from_bare_interpreter(tmp_path, args):
    done = run([sys.executable, "-I", *args], tmp_path)
    assert done.returncode == 0, done.stderr
    assert "usage:" in done.stdout


# `make demo-model` and `make serve` install serving's packages only; the deploy tools then
# lack boto3 and botocore, which this import hook hides to play that install.
WITHOUT_BOTO = """
import importlib.abc, runpy, sys
class Hide(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name.split(".")[0] in ("boto3", "botocore"):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
sys.meta_path.insert(0, Hide())
sys.argv = ["deploy", *sys.argv[1:]]
runpy.run_module("deploy", run_name="__main__")
"""


@pytest.mark.parametrize("args", [["--help"], ["deploy", "--help"]])
def test_deploy_tools_before_the_full_install_say_how_in_one_line(tmp_path, args):
    done = run([sys.executable, "-I", "-c", WITHOUT_BOTO, *args], tmp_path)
    assert done.returncode == 2, done.stderr
    assert done.stderr.count("\n") == 1 and "run `make venv` first" in done.stderr
    assert "'botocore'" in done.stderr or "'boto3'" in done.stderr


def test_local_model_resolver_answers_in_one_line(tmp_path):
    """`make serve`/`make vespa` resolve MODEL with it; without one it prints its usage."""
    done = run([sys.executable, "-I", "-m", "deploy.package.local_model"], tmp_path)
    assert done.returncode == 2
    assert done.stderr.strip().startswith("usage:") and done.stderr.count("\n") == 1


@pytest.mark.parametrize("script", ["reranker-serve", "reranker-deploy"])
def test_console_scripts_are_installed(tmp_path, script):
    path = BIN / script
    assert path.is_file(), f"{script} is not installed in {BIN}: run `make venv`"
    done = run([str(path), "--help"], tmp_path)
    assert done.returncode == 0, done.stderr
    assert "usage:" in done.stdout


def test_hooks_import_from_bare_interpreter(tmp_path):
    """What the image's server does: the default hooks and the engine, with no path set up."""
    code = ("import inference, serving.hooks as h; "
            "assert h.IMAGE_PROGRAM.is_file(), h.IMAGE_PROGRAM; print(h.IMAGE_PROGRAM)")
    done = run([sys.executable, "-I", "-c", code], tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().endswith("inference.py")


@pytest.mark.slow
def test_vespa_exports_onnx_from_bare_interpreter(tmp_path, bert_dir):
    """The reported crash: `make vespa` on a model directory that has no onnx/ yet."""
    model = tmp_path / "model"
    shutil.copytree(bert_dir, model, ignore=shutil.ignore_patterns("onnx"))
    out = tmp_path / "vespa-app"
    done = run([sys.executable, "-I", "-m", "deploy", "vespa", "--model-dir", str(model),
                "--out", str(out), "--onnx", "fp32"], tmp_path, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "ModuleNotFoundError" not in done.stderr
    assert list(out.rglob("*.onnx")), sorted(p.name for p in out.rglob("*"))


@pytest.mark.parametrize("args,needle", [
    (["-m", "deploy", "deploy", "--bogus"], "unrecognized arguments: --bogus"),
    (["-m", "deploy"], "required: COMMAND"),
    (["-m", "deploy", "frob"], "invalid choice: 'frob'"),
    (["-m", "serving", "--port", "x"], "argument --port: invalid int value: 'x'"),
])
def test_a_bad_command_line_is_one_line(tmp_path, args, needle):
    done = run([sys.executable, "-I", *args], tmp_path)
    assert done.returncode == 2, done.stderr
    assert done.stderr.count("\n") == 1 and needle in done.stderr, done.stderr
    assert "--help`" in done.stderr
