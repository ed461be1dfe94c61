"""RERANK_COMPILE: LLM rerankers with compiled MLPs and RMSNorms score as the eager model,
compile every shape during the warm-up, and are refused clearly where compiling cannot work."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys

import numpy as np
import pytest
from torch._dynamo.utils import counters

from example_texts import CAPITAL_DOCS, CAPITAL_QUERY
from reranker.backends.base import ModelLoadError
from reranker.backends.regional_compile import cache_free_modules, missing_toolchain
from reranker.engine import Reranker
from reranker.settings import Settings

DOCS = CAPITAL_DOCS + ["", "short", "a much longer passage " * 12]

needs_compiler = pytest.mark.skipif(missing_toolchain("cpu") is not None,
                                    reason="no C++ compiler for Inductor")


def _engine(path, **settings) -> Reranker:
    return Reranker.from_dir(str(path), Settings(**settings))


@needs_compiler
@pytest.mark.parametrize("family", ["qwen3", "gemma", "qwen3-seq-cls"])
def test_compiled_model_scores_as_the_eager_one(llm_dirs, family):
    eager = _engine(llm_dirs(family), warmup=False)
    compiled = _engine(llm_dirs(family), compile=True)
    try:
        assert compiled.describe()["compiled_modules"] > 0
        assert eager.describe()["compiled_modules"] == 0
        for docs in (DOCS, DOCS[:1], DOCS[:3]):
            ours = np.array(compiled.score(CAPITAL_QUERY, docs, raw=True))
            expected = np.array(eager.score(CAPITAL_QUERY, docs, raw=True))
            assert np.abs(ours - expected).max() < 1e-5
    finally:
        eager.close()
        compiled.close()


@needs_compiler
def test_the_warm_up_compiles_every_shape(llm_dirs):
    """After loading, requests of one row, of several and of many rows compile nothing."""
    engine = _engine(llm_dirs("qwen3"), compile=True, batch_tokens=64, max_batch_rows=3)
    try:
        graphs = counters["stats"]["unique_graphs"]
        for docs in (DOCS[:1], DOCS, DOCS[2:4] * 5):
            engine.score("another query, longer than the warm-up's", docs)
        assert counters["stats"]["unique_graphs"] == graphs
    finally:
        engine.close()


def test_compiled_modules_are_the_cache_free_ones(qwen3_engine):
    """Each layer's MLP and norms, the final norm; never attention, which holds the cache."""
    body = qwen3_engine.backend.body
    names = {type(m).__name__ for m in cache_free_modules(body)}
    assert names == {"Qwen3MLP", "Qwen3RMSNorm"}
    # per layer: mlp, two layer norms, q_norm, k_norm; plus the final norm
    assert len(cache_free_modules(body)) == 5 * len(body.layers) + 1


def test_without_a_compiler_the_model_is_refused(llm_dirs, monkeypatch):
    monkeypatch.setenv("CXX", "/nonexistent/c++")
    with pytest.raises(ModelLoadError, match=r"RERANK_COMPILE=true: no C\+\+ compiler"):
        _engine(llm_dirs("qwen3"), compile=True)


def test_the_toolchain_check_names_what_is_missing(tmp_path, monkeypatch):
    """Each branch on any host: `true` stands in for a compiler that is on PATH."""
    monkeypatch.setenv("CXX", "/nonexistent/c++")
    assert missing_toolchain("cpu") == "no C++ compiler (/nonexistent/c++) on PATH"
    monkeypatch.setenv("CXX", "true")
    assert "no Python headers" in missing_toolchain("cpu", python_include=str(tmp_path))
    (tmp_path / "Python.h").touch()
    assert missing_toolchain("cpu", python_include=str(tmp_path)) is None

    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "triton" else real_find_spec(name, *a))
    assert missing_toolchain("cuda") == "Triton is not installed"
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: object())
    monkeypatch.setenv("CC", "/nonexistent/cc")
    assert missing_toolchain("cuda") == "no C compiler (/nonexistent/cc) on PATH"
    monkeypatch.setenv("CC", "true")
    assert missing_toolchain("cuda", python_include=str(tmp_path)) is None


def test_a_cross_encoder_refuses_compile(bert_dir):
    with pytest.raises(ModelLoadError, match="RERANK_COMPILE=true applies to LLM rerankers"):
        _engine(bert_dir, compile=True)


def test_compile_is_read_from_the_environment():
    assert Settings.from_env({"RERANK_COMPILE": "true"}).compile is True
    assert Settings.from_env({}).compile is False



@needs_compiler
def test_a_failing_compiler_is_one_readable_load_error(llm_dirs):
    """A compiler that is found but fails (here: false) surfaces at the warm-up as a
    ModelLoadError.  A fresh interpreter: Inductor reads $CXX once per process."""
    code = ("import sys\n"
            "from reranker.backends.base import ModelLoadError\n"
            "from reranker.engine import Reranker\n"
            "from reranker.settings import Settings\n"
            "try:\n"
            "    Reranker.from_dir(sys.argv[1], Settings(compile=True))\n"
            "except ModelLoadError as exc:\n"
            "    print(exc)\n"
            "    sys.exit(3)\n")
    env = {**os.environ, "CXX": "false", "TORCHINDUCTOR_FORCE_DISABLE_CACHES": "1"}
    done = subprocess.run([sys.executable, "-c", code, str(llm_dirs("qwen3"))], env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 3, done.stderr[-2000:]
    assert done.stdout.startswith("RERANK_COMPILE=true: compiling the model failed")
    assert "No working C++ compiler" in done.stdout
