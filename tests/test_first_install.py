"""The README's first commands (`make demo-model`, `make demo-llm`, `make serve`) run on
serving's install alone (requirements-serve.txt), before `make test` installs the rest.

`make test` installs everything, so a package the first commands need but only the full
install pins goes unnoticed here; this test hides the packages that only the full install
pins and runs what those make targets run."""

from __future__ import annotations

import importlib.metadata
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.slow  # builds both demo models

# None in sys.modules: an import of the module fails and importlib.util.find_spec (how
# libraries probe for optional packages) says it is not there, as without the package.
FIRST_COMMANDS = """
import json, pkgutil, sys
from pathlib import Path
hidden, out = json.loads(sys.argv[1]), Path(sys.argv[2])
sys.modules.update(dict.fromkeys(hidden))
from demo_models.encoders import minilm_cross_encoder  # make demo-model
from demo_models.llm import qwen3_reranker  # make demo-llm
minilm_cross_encoder(out / "demo-minilm")
qwen3_reranker(out / "demo-qwen3-reranker")
import serving  # make serve: the server, every module of it
for module in pkgutil.walk_packages(serving.__path__, "serving."):
    __import__(module.name)
"""


def _name(requirement: str) -> str:
    return re.sub(r"[-_.]+", "-", requirement).lower()


def pinned(path: Path) -> set[str]:
    """The distributions a requirements file pins, following its -r includes."""
    names: set[str] = set()
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line.startswith("-r "):
            names |= pinned(path.parent / line[3:].strip())
        elif line and not line.startswith("-"):
            names.add(_name(re.split(r"[=<>!~\[; ]", line, maxsplit=1)[0]))
    return names


def only_in_the_full_install() -> list[str]:
    """Top-level modules whose every distribution only requirements.txt pins."""
    full_only = pinned(ROOT / "requirements.txt") - pinned(ROOT / "requirements-serve.txt")
    return sorted(module for module, dists in importlib.metadata.packages_distributions().items()
                  if dists and all(_name(d) in full_only for d in dists))


def test_the_first_commands_need_only_serving_s_install(tmp_path):
    hidden = only_in_the_full_install()
    assert {"boto3", "botocore", "pytest"} <= set(hidden)  # the hiding does hide
    done = subprocess.run([sys.executable, "-c", FIRST_COMMANDS, json.dumps(hidden),
                           str(tmp_path)], cwd=ROOT, capture_output=True, text=True,
                          timeout=600, env=dict(os.environ, HF_HUB_OFFLINE="1",
                                                TOKENIZERS_PARALLELISM="false"))
    assert done.returncode == 0, done.stderr[-3000:]
    assert (tmp_path / "demo-minilm" / "config.json").is_file()
    assert (tmp_path / "demo-qwen3-reranker" / "config.json").is_file()


@pytest.mark.parametrize("model,install", [
    ("", ".venv/.installed"),  # the default, a hub id: packaged by the deploy tools
    ("someone/some-reranker", ".venv/.installed"),
    ("tests", ".venv/.serve-installed"),  # a directory: serving's install is enough
])
def test_make_serve_installs_what_the_model_needs(model, install):
    done = subprocess.run(["make", "-pn", "serve", *([f"MODEL={model}"] if model else [])],
                          cwd=ROOT, capture_output=True, text=True, timeout=60,
                          stdin=subprocess.DEVNULL)
    rule = next(line for line in done.stdout.splitlines() if line.startswith("serve:"))
    assert rule.split()[1:] == [install]
