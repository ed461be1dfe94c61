"""Where the repository's parts are, and how deploy code reaches the engine package."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CODE_DIR = ROOT / "code"            # what goes into model.tar.gz under code/
BUILD_DIR = ROOT / "build"
DEFAULT_ARCHIVE = BUILD_DIR / "model.tar.gz"


def use_engine() -> None:
    """Make ``import reranker`` work: the engine lives in code/, not in an installed package."""
    if str(CODE_DIR) not in sys.path:
        sys.path.insert(0, str(CODE_DIR))
