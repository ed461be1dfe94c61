"""docs/BENCHMARKS.md's hand-written text against the code and the generated blocks: a claim
that the code or a committed result contradicts fails here."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "BENCHMARKS.md"
BLOCK = re.compile(r"<!-- BEGIN GENERATED: (\S+) -->(.*?)<!-- END GENERATED: \1 -->", re.S)


def prose() -> str:
    """The hand-written text: the doc without its generated blocks."""
    return BLOCK.sub("", DOC.read_text())


def block(name: str) -> str:
    return next(m.group(2) for m in BLOCK.finditer(DOC.read_text()) if m.group(1) == name)


def flat(text: str) -> str:
    return " ".join(text.split())
