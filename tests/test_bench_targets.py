"""What the benchmark counts and how it judges its targets, one section per rule.

Correctness only: synthetic rows, no timing is measured.
"""

from __future__ import annotations

from bench import flops

MINILM = dict(layers=6, hidden=384, intermediate=1536)
BGE_LARGE = dict(layers=24, hidden=1024, intermediate=4096)


# ---------------------------------------------------------------- useful FLOPs


def test_first_token_heads_do_not_count_the_last_ffn_of_the_other_tokens():
    full = flops.Shape(**MINILM)
    first = flops.Shape(**MINILM, model_type="bert", first_token_only=True)
    t = 100
    assert first.sequence_flops(t) == full.sequence_flops(t) - (t - 1) * 4 * 384 * 1536
    assert first.sequence_flops(1) == full.sequence_flops(1)  # one token: nothing skipped
    assert first.flops([t, t]) == 2 * first.sequence_flops(t)
    assert "(t-1)*4*h*i" in flops.FORMULA


def test_the_first_token_rule_follows_the_engines_list(bert_dir):
    from reranker.backends.torch_backend import _FIRST_TOKEN_HEADS

    shape = flops.Shape.from_model_dir(bert_dir)
    assert (shape.model_type, shape.first_token_only) == ("bert", True)
    assert all(flops.first_token_head(t) for t in _FIRST_TOKEN_HEADS)
    assert not flops.first_token_head("qwen3")


def _overcount(shape: dict, tokens: int) -> float:
    """How much the old count (every token's last FFN) exceeds the useful one."""
    old = flops.Shape(**shape).sequence_flops(tokens)
    return old / flops.Shape(**shape, first_token_only=True).sequence_flops(tokens)


def test_the_doc_states_how_high_the_old_shares_read():
    from test_bench_docs import prose

    text = " ".join(prose().split())
    minilm, bge = _overcount(MINILM, 187), _overcount(BGE_LARGE, 231)
    assert f"{100 * (minilm - 1):.1f}% more FLOPs" in text
    assert f"divide those shares by {minilm:.3f}" in text
    assert f"{100 * (bge - 1):.1f}% more for the bge-large shape" in text
    assert f"divide by {bge:.3f}" in text
