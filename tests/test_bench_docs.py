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


def test_the_quick_run_takes_the_same_time_everywhere():
    run_py = (ROOT / "bench" / "run.py").read_text()
    make = (ROOT / "make" / "bench.mk").read_text()
    said = {
        "run.py --help": re.search(r'short server levels \(~(\d+) min\)"', run_py),
        "make/bench.mk": re.search(r"QUICK=1` \(MiniLM only, ~(\d+) min\)", make),
        "docs": re.search(r"make bench QUICK=1 .*\(~(\d+) min\)", DOC.read_text()),
    }
    assert all(said.values()), said
    assert len({m.group(1) for m in said.values()}) == 1, {k: m.group(1) for k, m in said.items()}


def test_infinity_is_not_said_to_use_bettertransformer_without_optimum():
    lock = (ROOT / "bench" / "infinity-requirements.txt").read_text().lower()
    if re.search(r"^optimum==", lock, re.M):
        return  # then Infinity may apply it
    for path in (DOC, ROOT / "bench" / "infinity_server.py"):
        text = flat(path.read_text())
        claims = len(re.findall(r"BetterTransformer", text))
        denials = len(re.findall(r"\b(?:no|without) BetterTransformer", text))
        assert claims == denials, path


def test_the_amx_exact_runtime_is_the_one_choice_picks():
    from reranker.backends.choice import MEASURED
    from reranker.cpu import AMX

    first = MEASURED[(AMX, "exact")][0]
    names = {"openvino": "OpenVINO", "torch": "torch", "onnx": "ONNX Runtime"}
    text = flat(prose())
    assert f"| Intel Xeon with AMX | {names[first.backend]} fp32" in text
    if first.backend != "torch":
        assert "with AMX it keeps torch fp32" not in text
        assert f"with AMX it takes {names[first.backend]} fp32" in text


def test_prose_does_not_call_a_target_missed_that_the_generated_block_met():
    fast = next(line for line in block("cpu-avx512_bf16").splitlines()
                if "fast mode (RERANK_PRECISION=fast)" in line and "Infinity" in line)
    if "**met**" in fast:
        assert "misses 2.5x on this CPU" not in flat(prose())


def test_the_dlc_target_says_what_the_dlc_stack_runs(tmp_path, bert_dir):
    from bench.dlc_stack import layout_model

    out = layout_model(bert_dir, tmp_path / "model", link=True)
    # The stack serves our handler and our engine, not the toolkit's one-pair pipeline.
    assert (out / "code" / "reranker" / "engine.py").is_file()
    assert "from reranker import" in (out / "code" / "inference.py").read_text()
    text = flat(prose())
    assert "one pair per forward pass with no padding" not in text
    assert "ships code/inference.py with the `reranker` package" in text
