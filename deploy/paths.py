"""Where the repository's parts are."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CODE_DIR = ROOT / "code"            # what goes into model.tar.gz under code/
BUILD_DIR = ROOT / "build"
DEFAULT_ARCHIVE = BUILD_DIR / "model.tar.gz"

