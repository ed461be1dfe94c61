"""What every search-engine integration shares: checked flags, and writing its folder.

An integration (deploy/integrations/opensearch, .../vespa, the next one) validates its
flags once, into a frozen target, then writes one folder that the user sends to or deploys on the
engine.  The folder is staged beside ``--out`` and swapped in whole, so a failed run
leaves the previous folder intact, and no stale file of an older run survives; a folder
this tool did not write is never replaced.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path

from deploy.errors import UserError

# Written into every folder an integration writes: the proof that replacing it is safe.
MARKER = ".written-by-deploy"
REGION = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d$")
ACCOUNT = re.compile(r"^\d{12}$")


def endpoint_arn(partition: str, region: str, account: str, endpoint: str) -> str:
    """The ARN IAM policies name an endpoint by: SageMaker stores endpoint names lowercase
    in ARNs, and IAM compares ARNs exactly."""
    return f"arn:{partition}:sagemaker:{region}:{account}:endpoint/{endpoint.lower()}"


def check_match(flag: str, value: str | None, rule: re.Pattern, what: str) -> str:
    if not value or not rule.fullmatch(value):
        raise UserError(f"{flag} {value!r} is not {what}")
    return value


# Longer than any task instruction (Qwen3-Reranker's default is 72 characters).
MAX_INSTRUCTION = 2000


def check_instruction(value: str | None) -> str | None:
    """An LLM reranker's instruction to write into an engine's request body.  ml-commons
    expands ``${...}`` in bodies (recursively, with its own parameters in scope), so that
    sequence is refused rather than sent as something else."""
    if value is None:
        return None
    if not value.strip():
        raise UserError("--instruction is empty (leave it out for the endpoint's default)")
    if len(value) > MAX_INSTRUCTION:
        raise UserError(f"--instruction is {len(value)} characters; at most {MAX_INSTRUCTION}")
    if "${" in value:
        raise UserError("--instruction must not contain '${' (OpenSearch would expand it as a"
                        " parameter reference)")
    return value


def check_at_least(flag: str, value: int | None, low: int) -> None:
    if value is not None and value < low:
        raise UserError(f"{flag} must be at least {low}, not {value}")


@contextlib.contextmanager
def folder(out: Path, kind: str) -> Iterator[Path]:
    """Yield an empty staging folder; when the block ends without error, it becomes ``out``.

    ``kind`` names the integration in the marker file.  Only a folder holding that marker
    is ever replaced: a user's own Vespa app with a services.xml of its own is not ours."""
    out = Path(out).resolve()
    if out == Path.cwd().resolve() or out in Path.cwd().resolve().parents:
        raise UserError(f"{out} holds the current folder, and the output folder is replaced"
                        " whole: pass a folder below it (e.g. --out build/app)")
    _check_replaceable(out)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        stage = Path(tempfile.mkdtemp(prefix=f".{out.name}-", dir=out.parent))
    except OSError as exc:
        raise UserError(f"cannot write {out}: {exc.strerror}") from None
    try:
        yield stage
        (stage / MARKER).write_text(f"{kind}\n", encoding="utf-8")
        # mkdtemp's folder is private (0700): the output gets a folder's usual mode, so a
        # container running as another user can read the package it is mounted with.
        stage.chmod(0o777 & ~_umask())
        _swap(stage, out)
    except OSError as exc:
        raise UserError(f"cannot write {out}: {exc.strerror}") from None
    finally:
        shutil.rmtree(stage, ignore_errors=True)


def _umask() -> int:
    current = os.umask(0o022)  # reading it means setting it: set it straight back
    os.umask(current)
    return current


def write_files(root: Path, files: Mapping[str, str]) -> list[Path]:
    """Relative path -> text, written under ``root`` as UTF-8."""
    written = []
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written


def _check_replaceable(out: Path) -> None:
    if not out.exists():
        return
    if not out.is_dir():
        raise UserError(f"{out} exists and is not a folder: not touching it")
    if not (out / MARKER).is_file() and any(out.iterdir()):
        raise UserError(f"{out} exists and was not written by this tool: not touching it"
                        " (pass an empty or new --out)")


def _swap(stage: Path, out: Path) -> None:
    if out.exists():
        old = out.with_name(f".{out.name}-old-{os.getpid()}")
        os.replace(out, old)
        os.replace(stage, out)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(stage, out)
