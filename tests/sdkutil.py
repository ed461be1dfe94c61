"""Run tests/sdk/predictor_client.py in .venv-sagemaker, with an environment that cannot
reach AWS or write to the user's home.

    answers = sdkutil.run_job({"mode": "runtime", "endpoint_url": url, "requests": [...]})

The SDK reads and writes ~/.aws, ~/.sagemaker and ~/.config/sagemaker; the job gets a
temporary HOME, fake credentials and a region in its own environment only (never a file),
and no AWS_PROFILE of the caller's.  Only the standard library is used.
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SDK_VENV = ROOT / os.environ.get("SDK_VENV", ".venv-sagemaker")  # `make` exports it
DRIVER = Path(__file__).resolve().parent / "sdk" / "predictor_client.py"
REGION = "us-east-1"
LOCAL_LABEL = "reranker.test.sdk"  # tests/sdk/local_mode.py labels local mode's containers
_DROPPED = ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_SESSION_TOKEN", "AWS_CONFIG_FILE",
            "AWS_SHARED_CREDENTIALS_FILE", "PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")


def venv_ready(venv: Path = SDK_VENV) -> bool:
    return (venv / ".installed").is_file()


def sdk_environment(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in _DROPPED}
    env.update({
        "HOME": str(home),
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": REGION,
        "AWS_REGION": REGION,
        "AWS_CONFIG_FILE": str(home / "no-aws-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(home / "no-aws-credentials"),
        "AWS_EC2_METADATA_DISABLED": "true",
        "SAGEMAKER_SUPPRESS_V2_WARNING": "1",
        "PYTHONUNBUFFERED": "1",
    })
    return env


def run_job(job: dict, timeout: float = 300.0, venv: Path = SDK_VENV,
            env: dict[str, str] | None = None) -> dict:
    """The driver's JSON answer; RuntimeError with its output when it fails."""
    if not venv_ready(venv):
        raise RuntimeError(f"{venv} is not built: run `make sagemaker-venv`")
    with tempfile.TemporaryDirectory(prefix="sdk-home-") as home:
        done = subprocess.run([str(venv / "bin" / "python"), str(DRIVER)],
                              input=json.dumps(job), capture_output=True, text=True,
                              env={**sdk_environment(Path(home)), **(env or {})},
                              timeout=timeout, check=False)
        written = sorted(str(p.relative_to(home)) for p in Path(home).rglob("*"))
    if done.returncode != 0:
        raise RuntimeError(f"SDK driver failed ({done.returncode}):\n{done.stderr[-20000:]}")
    result = json.loads(done.stdout)
    result["home_files"] = written
    result["stderr"] = done.stderr
    return result


def labelled_containers(label: str, *, running_only: bool = False) -> list[str]:
    """Ids of the containers that local mode started with ``label``."""
    done = subprocess.run(["docker", "ps", "-q" if running_only else "-aq",
                           "--filter", f"label={LOCAL_LABEL}={label}"],
                          capture_output=True, text=True, timeout=60, check=True)
    return done.stdout.split()


def run_local(job: dict, timeout: float = 600.0) -> dict:
    """A local-mode job; every container it started is removed by id afterwards, also when
    it failed.  The answer says which were still running after the SDK's teardown."""
    label = uuid.uuid4().hex
    try:
        result = run_job(job, timeout=timeout, env={"RERANK_SDK_LABEL": label})
        result["started"] = labelled_containers(label)
        result["running_after_teardown"] = labelled_containers(label, running_only=True)
        return result
    finally:
        for cid in labelled_containers(label):
            subprocess.run(["docker", "rm", "-f", cid], capture_output=True, timeout=60)
