"""Files and folders a command will write, checked before it does its work.

A command that runs for minutes (a package, billed evaluation or load-test requests) must
not find out at the end that its output path is a folder, lies under a file, or cannot be
written: these say so first, in one line, and create nothing.  ``write_text`` turns a
failure at the end (a disk filled meanwhile) into one line as well.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from deploy.errors import UserError


def _existing_ancestor(path: Path) -> Path:
    """The nearest folder at or above ``path`` that exists; a file in the way refuses."""
    for candidate in (path, *path.parents):
        if candidate.exists():
            if not candidate.is_dir():
                raise NotADirectoryError(candidate)
            return candidate
    return Path(".")  # a relative path whose first part is missing


def _probe(folder: Path, spelled: str, path: Path) -> None:
    """Create and remove a file in ``folder``: what the command will do there."""
    try:
        with tempfile.TemporaryFile(dir=folder, prefix=".write-check-"):
            pass
    except OSError as exc:
        raise UserError(f"{spelled} {path}: cannot write in {folder}"
                        f" ({exc.strerror or type(exc).__name__})") from None


def check_file(path: Path | str, spelled: str) -> Path:
    """``path`` can be written as a file: not a folder, no file among its parents, and its
    nearest existing folder takes new files."""
    path = Path(path)
    if path.is_dir():
        raise UserError(f"{spelled} {path} is a folder: name a file")
    try:
        folder = _existing_ancestor(path.parent)
    except NotADirectoryError as exc:
        raise UserError(f"{spelled} {path}: {exc.args[0]} is a file, not a folder") from None
    _probe(folder, spelled, path)
    return path


def check_folder(path: Path | str, spelled: str) -> Path:
    """``path`` is, or can be made, a folder that takes new files."""
    path = Path(path)
    try:
        folder = _existing_ancestor(path)
    except NotADirectoryError as exc:
        what = "is a file" if Path(exc.args[0]) == path else f"is under a file ({exc.args[0]})"
        raise UserError(f"{spelled} {path} {what}: name a folder") from None
    _probe(folder, spelled, path)
    return path


def chart_path(path: Path | str, spelled: str) -> Path:
    """Where a chart goes: ``path``, with ``.png`` added when it has no suffix (what
    matplotlib would write), refused when matplotlib has no such format."""
    path = Path(path)
    suffix = path.suffix.lower().lstrip(".")
    if not suffix:
        return check_file(path.with_name(path.name + ".png"), spelled)
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    formats = FigureCanvasAgg.get_supported_filetypes()
    if suffix not in formats:
        raise UserError(f"{spelled} {path}: matplotlib writes no .{suffix} (by the suffix:"
                        f" {', '.join(sorted(formats))})")
    return check_file(path, spelled)


def write_text(path: Path, text: str, spelled: str) -> None:
    """Write ``text`` to ``path`` (its folders made), failures as one line."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise UserError(f"cannot write {spelled} {path}:"
                        f" {exc.strerror or type(exc).__name__}") from None


def make_folder(path: Path, spelled: str) -> Path:
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(f"cannot create {spelled} {path}:"
                        f" {exc.strerror or type(exc).__name__}") from None
    if not os.access(path, os.W_OK):
        raise UserError(f"cannot write in {spelled} {path}")
    return path
