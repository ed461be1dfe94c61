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


def test_the_dlc_target_says_what_the_dlc_stack_runs(tmp_path, bert_dir):
    from bench.dlc_stack import layout_model

    out = layout_model(bert_dir, tmp_path / "model", link=True)
    # The stack serves our handler and our engine, not the toolkit's one-pair pipeline.
    assert (out / "code" / "reranker" / "engine.py").is_file()
    assert "from reranker import" in (out / "code" / "inference.py").read_text()
    text = flat(prose())
    assert "one pair per forward pass with no padding" not in text
    assert "ships code/inference.py with the `reranker` package" in text
