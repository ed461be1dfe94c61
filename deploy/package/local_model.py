"""``python -m deploy.package.local_model MODEL``: the model directory ``make serve`` serves.

MODEL is a model directory (served as it is), a model.tar.gz (unpacked once under
build/serve/), or a hub id (packaged once with ``python -m deploy package`` into
build/serve/ and reused after).  Prints the directory on stdout; progress and errors go
to stderr, an error as one line with exit status 2.  A deploy-side tool (it runs the
packager): not part of the image.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
from pathlib import Path
from urllib.parse import urlparse

from deploy.errors import UserError
from deploy.package import archive as archives
from deploy.paths import BUILD_DIR, ROOT

SERVE_DIR = BUILD_DIR / "serve"
# In an unpacked folder: the archive it was unpacked from.
UNPACKED_FROM = ".unpacked-from"
HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


def resolve(model: str) -> Path:
    path = Path(model).expanduser()
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise UserError(f"{model} has no config.json; pass a model directory (make demo-model "
                          "builds one in build/demo-minilm)")
        return path.resolve()
    if path.is_file() and path.name.endswith(".tar.gz"):
        return unpack(path, SERVE_DIR / path.name[: -len(".tar.gz")])
    if not HUB_ID.match(model):
        raise UserError(f"MODEL={model} is neither a model directory, a model.tar.gz nor a hub "
                      "id like cross-encoder/ms-marco-MiniLM-L-6-v2")
    target = SERVE_DIR / model.replace("/", "--")
    if (target / "model" / "config.json").is_file():
        return target / "model"  # packaged before: reuse
    if not hub_reachable():
        raise UserError(f"cannot reach the Hugging Face hub to fetch {model} (offline?); pass a "
                      "local model directory: make serve MODEL=path/to/model (make demo-model "
                      "builds one: MODEL=build/demo-minilm)")
    archive = target / "model.tar.gz"
    package(model, archive)
    return unpack(archive, target / "model")


def hub_reachable(timeout: float = 3.0) -> bool:
    if os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on"):
        return False
    host = urlparse(os.environ.get("HF_ENDPOINT", "https://huggingface.co")).hostname
    result: list[bool] = []

    def connect() -> None:  # in a thread: name resolution has no timeout of its own
        try:
            socket.create_connection((host, 443), timeout=timeout).close()
            result.append(True)
        except OSError:
            result.append(False)

    thread = threading.Thread(target=connect, daemon=True)
    thread.start()
    thread.join(timeout + 0.5)
    return bool(result and result[0])


def package(model: str, archive: Path) -> None:
    archive.parent.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, "-m", "deploy", "package", model, "--output", str(archive)]
    print("packaging:", " ".join(command[1:]), file=sys.stderr)
    # The packager's progress goes to our stderr, so stdout stays the answer.
    done = subprocess.run(command, cwd=ROOT, stdout=sys.stderr)
    if done.returncode != 0:
        raise UserError(f"packaging {model} failed (exit {done.returncode}); see above")


def unpack(archive: Path, target: Path) -> Path:
    """``archive`` unpacked at ``target`` (unless this very archive, unchanged, was
    unpacked there); returns the real directory.

    ``target`` is a symlink to a folder unpacked fresh beside it: a repackaged archive is
    unpacked into a new folder and the link swapped to it in one rename, so no file of the
    earlier archive survives and a failed unpack leaves the earlier one served.  Which
    archive a folder came from is recorded in it (its path, size and mtime): two archives
    of one name in different folders, or one packaged earlier than the other, are never
    taken for each other."""
    stat = archive.stat()
    source = f"{archive.resolve()}\n{stat.st_size}\n{stat.st_mtime_ns}\n"
    record = target / UNPACKED_FROM
    if (target / "config.json").is_file() and record.is_file() and \
            record.read_text(encoding="utf-8") == source:
        return target.resolve()
    print(f"unpacking {archive} into {target}", file=sys.stderr)
    target.parent.mkdir(parents=True, exist_ok=True)
    fresh = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    try:
        archives.safe_extract(archive, fresh)
    except BaseException:
        shutil.rmtree(fresh, ignore_errors=True)
        raise
    (fresh / UNPACKED_FROM).write_text(source, encoding="utf-8")
    fresh.chmod(0o755)  # mkdtemp's folder is private; the image's user reads the model
    previous = target.resolve() if target.is_symlink() else None
    if target.exists() and not target.is_symlink():
        shutil.rmtree(target)  # unpacked in place by an earlier version of this tool
    link = target.parent / f".{target.name}.link-{os.getpid()}"
    link.unlink(missing_ok=True)
    link.symlink_to(fresh.name)
    os.replace(link, target)  # atomic: the old folder or the new one, never a mix
    if previous is not None and previous != fresh:
        shutil.rmtree(previous, ignore_errors=True)
    return fresh


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m deploy.package.local_model MODEL", file=sys.stderr)
        return 2
    try:
        print(resolve(argv[0]))
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
