"""Every CPU-dependent choice, for every CPU kind, on any machine: the CPU facts are
injected (RERANK_CPU_FEATURES or a CpuFacts value), never read from this host."""

import importlib.util

import pytest

from reranker import cpu
from reranker.backends import choice
from reranker.loading import plan
from reranker.model_dir import ModelDir
from reranker.settings import Settings, SettingsError

XEON, EPYC, PLAIN = cpu.PRESETS["amx"], cpu.PRESETS["avx512_bf16"], cpu.PRESETS["plain"]


def _dir(onnx=("model.onnx",), safetensors=True) -> ModelDir:
    return ModelDir(path="/m", config={}, model_type="bert", num_labels=1, max_length=512,
                    vocab_size=None, tokenizer_json=True, safetensors=safetensors,
                    pickle=False, onnx=tuple(onnx))


@pytest.fixture
def every_runtime(monkeypatch):
    """onnxruntime and openvino importable, whatever is installed (the table decides)."""
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: object()
                        if name in ("onnxruntime", "openvino") else real(name, *a))


def test_presets_are_the_three_kinds():
    assert (XEON.kind, XEON.amx, XEON.bf16, XEON.vendor) == ("amx", True, True, "GenuineIntel")
    assert (EPYC.kind, EPYC.amx, EPYC.bf16, EPYC.vendor) == ("avx512_bf16", False, True,
                                                             "AuthenticAMD")
    assert (PLAIN.kind, PLAIN.amx, PLAIN.bf16) == ("plain", False, False)
    listed = cpu.facts("avx2,avx512f,avx512_bf16")
    assert listed.kind == "avx512_bf16" and listed.source == "avx2,avx512f,avx512_bf16"


def test_the_environment_overrides_this_machine(monkeypatch):
    monkeypatch.setenv(cpu.ENV, "amx")
    assert cpu.has_amx() and cpu.has_bf16() and "amx_tile" in cpu.flags()
    monkeypatch.setenv(cpu.ENV, "plain")
    assert not cpu.has_bf16()
    monkeypatch.setenv(cpu.ENV, "auto")
    assert cpu.facts() == cpu.this_machine()


@pytest.mark.parametrize("bad", ["xeon", "avx2,,fma", "amx;rm -rf"])
def test_a_bad_cpu_spec_is_a_settings_error(bad):
    with pytest.raises(SettingsError, match="RERANK_CPU_FEATURES"):
        Settings.from_env({"RERANK_CPU_FEATURES": bad})
    with pytest.raises(ValueError, match="RERANK_CPU_FEATURES"):
        cpu.facts(bad)


def test_precision_and_dtype_must_agree():
    assert Settings.from_env({"RERANK_PRECISION": "FAST"}).precision == "fast"
    with pytest.raises(SettingsError, match="RERANK_PRECISION"):
        Settings.from_env({"RERANK_PRECISION": "fast", "RERANK_DTYPE": "float32"})
    with pytest.raises(SettingsError, match="RERANK_PRECISION"):
        Settings.from_env({"RERANK_PRECISION": "exact", "RERANK_DTYPE": "bfloat16"})
    with pytest.raises(SettingsError, match="RERANK_PRECISION must be one of"):
        Settings.from_env({"RERANK_PRECISION": "int4"})


# (CPU, precision) -> (runtime, dtype) with every runtime installed and an fp32 export.
EXPECTED = {
    (XEON, "exact"): ("openvino", "float32"),
    (XEON, "fast"): ("openvino", "bfloat16"),
    (EPYC, "exact"): ("onnx", "float32"),
    (EPYC, "fast"): ("openvino", "bfloat16"),
    (PLAIN, "exact"): ("onnx", "float32"),
    (PLAIN, "fast"): ("onnx", "float32"),  # no bf16 arithmetic: fast is the exact runtime
}


@pytest.mark.parametrize("cpu_facts, precision", list(EXPECTED))
def test_auto_takes_the_measured_fastest_runtime(cpu_facts, precision, every_runtime):
    planned = plan(_dir(), Settings(precision=precision), cuda=False, cpu_facts=cpu_facts)
    assert (planned.backend, planned.dtype) == EXPECTED[(cpu_facts, precision)]
    # the same answer through RERANK_CPU_FEATURES
    by_env = Settings(precision=precision, cpu_features=cpu_facts.source)
    assert plan(_dir(), by_env, cuda=False).backend == planned.backend


@pytest.mark.parametrize("cpu_facts", [XEON, EPYC, PLAIN])
def test_without_an_export_torch_serves_in_the_precision_asked(cpu_facts):
    exact = plan(_dir(onnx=()), Settings(), cuda=False, cpu_facts=cpu_facts)
    fast = plan(_dir(onnx=()), Settings(precision="fast"), cuda=False, cpu_facts=cpu_facts)
    assert (exact.backend, exact.dtype) == ("torch", "float32")
    assert (fast.backend, fast.dtype) == ("torch", "bfloat16" if cpu_facts.bf16 else "float32")


@pytest.mark.parametrize("cpu_facts", [XEON, EPYC, PLAIN])
def test_an_explicit_runtime_follows_the_precision(cpu_facts, every_runtime):
    fast_ov = plan(_dir(), Settings(backend="openvino", precision="fast"), cuda=False,
                   cpu_facts=cpu_facts)
    exact_ov = plan(_dir(), Settings(backend="openvino"), cuda=False, cpu_facts=cpu_facts)
    assert fast_ov.dtype == ("bfloat16" if cpu_facts.bf16 else "float32")
    assert exact_ov.dtype == "float32"  # OpenVINO would pick bf16 itself on these CPUs
    bf16 = plan(_dir(), Settings(dtype="bfloat16"), cuda=False, cpu_facts=cpu_facts)
    assert bf16.dtype == "bfloat16"  # an explicit dtype is kept, and reads as fast


def test_gpu_fast_by_default_exact_when_asked():
    assert plan(_dir(), Settings(), cuda=True).backend == "torch"
    assert plan(_dir(), Settings(), cuda=True).dtype == "auto"  # bf16, else fp16
    assert plan(_dir(), Settings(precision="fast"), cuda=True).dtype == "auto"
    assert plan(_dir(), Settings(precision="exact"), cuda=True).dtype == "float32"
    on_cpu = plan(_dir(), Settings(device="cpu"), cuda=True, cpu_facts=EPYC)
    assert on_cpu.backend == "onnx"


def test_every_table_row_is_ordered_and_sourced():
    for (kind, precision), options in choice.MEASURED.items():
        assert kind in cpu.KINDS and precision in ("exact", "fast")
        rates = [o.rate for o in options]
        assert rates == sorted(rates, reverse=True), (kind, precision)
        assert all(o.where for o in options)
        if precision == "exact":
            assert {o.dtype for o in options} == {"float32"}
        if kind == cpu.PLAIN:
            assert {o.dtype for o in options} == {"float32"}  # no bf16 arithmetic


def test_fast_falls_back_to_torch_bf16_without_openvino(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None
                        if name == "openvino" else real(name, *a))
    for cpu_facts in (XEON, EPYC):
        planned = plan(_dir(), Settings(precision="fast"), cuda=False, cpu_facts=cpu_facts)
        assert (planned.backend, planned.dtype) == ("torch", "bfloat16")


def test_fp16_on_cpu_is_refused_at_load():
    from reranker.loading import ModelLoadError

    with pytest.raises(ModelLoadError, match="float16 is for GPUs"):
        plan(_dir(), Settings(dtype="float16"), cuda=False, cpu_facts=EPYC)


# --- threads under a CPU quota (docker run --cpus, an inference component's CPU cores) ------

@pytest.mark.parametrize("files,cores", [
    ({"cpu.max": "200000 100000\n"}, 2),  # cgroup v2: --cpus=2
    ({"cpu.max": "150000 100000\n"}, 2),  # 1.5 cores: two threads, each waiting its turn less
    ({"cpu.max": "25000 100000\n"}, 1),  # a quarter core (the least a component may ask)
    ({"cpu.max": "max 100000\n"}, None),  # no limit
    ({"cpu/cpu.cfs_quota_us": "400000\n", "cpu/cpu.cfs_period_us": "100000\n"}, 4),  # v1
    ({"cpu/cpu.cfs_quota_us": "-1\n", "cpu/cpu.cfs_period_us": "100000\n"}, None),
    ({}, None),  # no cgroup files: a host, or not Linux
])
def test_the_cpu_quota_in_whole_cores(tmp_path, files, cores):
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    assert cpu.quota_cores(tmp_path) == cores
    affinity = cpu.usable_cores(tmp_path / "absent")
    assert cpu.usable_cores(tmp_path) == min(affinity, cores or affinity)


def test_torch_threads_follow_a_quota_below_its_default(tmp_path):
    from reranker.backends.torch_setup import cpu_threads

    (tmp_path / "cpu.max").write_text("100000 100000\n")
    assert cpu_threads(16, tmp_path) == 1  # a thread per host core would wait its turn
    assert cpu_threads(1, tmp_path) == 0  # already within it: torch's default stays
    assert cpu_threads(16, tmp_path / "absent") == (cpu.usable_cores() if cpu.usable_cores()
                                                    < 16 else 0)
