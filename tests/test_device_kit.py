"""The device kit and the GPU check, dry-run on this CPU.

`make device-kit` then `bash bench/device/run.sh OUT` is what a GPU machine without network
runs; here the same two steps run with wheels for this interpreter, installed into a clean
folder, and the check with ``--device cpu --quick`` on the GPU machine's transformers and
sentence-transformers (.venv-gpu-machine, which `make test` builds).  Correctness only: no
assertion here looks at a timing.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bench.device import kit, prepare
from bench.device.results import Budget, Results, Skip

ROOT = Path(__file__).resolve().parent.parent
# Persistent between local runs, so only a fresh clone downloads (about 6 MB).
KIT_HERE = ROOT / "build" / "device-kit-current"
MACHINE_VENV = ROOT / os.environ.get("MACHINE_VENV", ".venv-gpu-machine")
MACHINE_REQS = ROOT / "bench" / "device" / "machine-requirements.txt"


def test_the_machine_venv_pins_the_gpu_machines_versions():
    """What the dry run runs on is what bench/device/closure.py says the GPU machine has,
    except torch (this machine's CPU build) and numpy (2.5 needs Python 3.12)."""
    from bench.device import closure

    pins = dict(line.split("==") for line in MACHINE_REQS.read_text().splitlines()
                if line and not line.startswith("#"))
    pins = {kit.normalise(name): version for name, version in pins.items()}
    for name, version in closure.MACHINE_VERSIONS.items():
        if name not in ("torch", "numpy"):
            assert pins[kit.normalise(name)] == version, name
    assert pins["torch"] == "2.13.0"


def test_serving_pins_are_the_image_pins_and_the_tested_versions():
    sets = kit.wheel_sets()
    image = kit.requirement_pins()
    serving = sets["serving"]
    for name in kit.FROM_REQUIREMENTS:
        assert serving[name] == image[kit.normalise(name)]
    for name, version in serving.items():  # what the GPU run imports is what tests ran
        assert importlib.metadata.version(name) == version, name
    assert sets["infinity"]["infinity-emb"] == "0.0.78"
    # Both sets hold one version per name (two versions stop pip --no-deps installs).
    for pins in sets.values():
        assert len({kit.normalise(n) for n in pins}) == len(pins)


def test_results_keep_every_section_whatever_happens(tmp_path):
    path = tmp_path / "r.json"
    results = Results(path, {"device": "cpu"}, log=lambda _: None)
    budget = Budget(100.0)

    def broken():
        results.put(("sections", "b", "partial"), 1)
        raise RuntimeError("boom")

    def cannot():
        raise Skip("no GPU here")

    results.section("a", lambda: {"x": 1}, budget)
    results.section("b", broken, budget)
    results.section("c", cannot, budget)
    results.section("d", lambda: {}, budget, needs_seconds=1000)
    on_disk = json.loads(path.read_text())["sections"]
    assert on_disk["a"]["status"] == "ok" and on_disk["a"]["x"] == 1
    assert on_disk["b"]["status"] == "error" and "boom" in on_disk["b"]["error"]
    assert on_disk["b"]["partial"] == 1  # what a failing part finished is kept
    assert on_disk["c"] == {"status": "skipped", "reason": "no GPU here",
                            "seconds": on_disk["c"]["seconds"]}
    assert on_disk["d"]["status"] == "skipped" and "time budget" in on_disk["d"]["reason"]


def test_only_our_servers_errors_fail_the_run():
    """Infinity runs a combination its authors never ran (sentence-transformers 3 on
    transformers 5): its failures are its findings, recorded, not a failed check."""
    from bench.gpu_check import passed

    def server(ours: dict, infinity: dict) -> dict:
        return {"sections": {"server": {"status": "ok",
                                        "stacks": {"ours": ours, "infinity": infinity}}}}

    fine = {"levels": [{"concurrency": 1, "errors": 0}]}
    failing = {"levels": [{"concurrency": 1, "errors": 3}]}
    assert passed(server(fine, failing))
    assert passed(server(fine, {"error": "RuntimeError: it did not start"}))
    assert not passed(server(failing, fine))
    assert not passed(server({"error": "RuntimeError: ours did not start"}, fine))


def test_the_budget_counts_from_the_check_s_import(tmp_path, monkeypatch):
    """The budget main() gives the check starts when the module was imported, before
    `import torch` (seconds of the hard limit too), not when main() got to it."""
    from bench import gpu_check

    made = []

    class Recorded(gpu_check.Budget):
        def __init__(self, seconds, started=None):
            made.append(started)
            raise SystemExit(0)

    monkeypatch.setattr(gpu_check, "Budget", Recorded)
    (tmp_path / "assets").mkdir()
    with pytest.raises(SystemExit):
        gpu_check.main(["--device", "cpu", "--kit", str(tmp_path), "--out", str(tmp_path)])
    assert made == [gpu_check.STARTED]


def test_a_wheel_set_missing_a_dependency_is_refused(prepared, tmp_path):
    from bench.device import closure

    for name in ("serving", "infinity"):
        assert closure.unmet(KIT_HERE / "wheels" / name) == [], name
    for wheel in (KIT_HERE / "wheels" / "infinity").glob("*.whl"):
        if not wheel.name.startswith("pydantic_core"):
            (tmp_path / wheel.name).write_bytes(wheel.read_bytes())
    assert closure.unmet(tmp_path) == [
        "pydantic: needs pydantic-core==2.50.5, which is neither carried nor on the machine"]


def test_manifest_refuses_a_kit_over_the_carry_limit(tmp_path, monkeypatch):
    (tmp_path / "wheels").mkdir()
    (tmp_path / "wheels" / "big.whl").write_bytes(b"x" * 4096)
    monkeypatch.setattr(kit, "CARRY_LIMIT", 2048)
    monkeypatch.setattr(kit, "TREE_MARGIN", 0)
    manifest = prepare.write_manifest(tmp_path, "3.12", {}, {})
    assert manifest["fits"] is False and manifest["kit_bytes"] == 4096
    assert "TOO BIG" in prepare.report(manifest)


def test_entry_points_answer_bad_input_with_one_line(tmp_path):
    bad_sets = subprocess.run([sys.executable, "-m", "bench.device.prepare", "--sets", "nope"],
                              cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert bad_sets.returncode == 2 and "unknown wheel sets" in bad_sets.stderr
    no_kit = subprocess.run(["bash", "bench/device/run.sh", str(tmp_path / "out")], cwd=ROOT,
                            capture_output=True, text=True, timeout=60,
                            env=dict(os.environ, DEVICE_KIT=str(tmp_path / "none")))
    assert no_kit.returncode == 2 and "make device-kit" in no_kit.stdout
    chart = subprocess.run([sys.executable, "-m", "bench.device.chart",
                            str(tmp_path / "missing.json")], cwd=ROOT, capture_output=True,
                           text=True, timeout=60)
    assert chart.returncode == 2 and "cannot read" in chart.stderr


@pytest.fixture(scope="module")
def prepared():
    """`make device-kit` with wheels for this interpreter (downloads once per clone)."""
    done = subprocess.run([sys.executable, "-m", "bench.device.prepare", "--current-python",
                           "--dest", str(KIT_HERE)], cwd=ROOT, capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    return done


@pytest.mark.slow
def test_kit_installs_into_a_clean_folder_and_the_check_runs_on_cpu(prepared, tmp_path):
    """prepare (this interpreter's wheels), run.sh (install + check), then the chart."""
    done = prepared
    assert "fits" in done.stdout
    manifest = json.loads((KIT_HERE / "manifest.json").read_text())
    assert set(manifest["wheel_set_bytes"]) == {"serving", "infinity"}
    assert manifest["fits"]

    before = _untracked_and_changed()
    out = tmp_path / "out"
    python = MACHINE_VENV / "bin" / "python"
    assert python.is_file(), f"no {python}: `make gpu-machine-venv` (make test builds it)"
    env = dict(os.environ, PYTHON=str(python), DEVICE_KIT=str(KIT_HERE),
               DEVICE_CHECK_SECONDS="400")
    # The bge-large shape runs the same code as MiniLM on a 17 MB tokenizer that is slow
    # to load on two busy cores: left out here, its asset is checked below.
    run = subprocess.run(["bash", "bench/device/run.sh", str(out), "--device", "cpu", "--quick",
                          "--levels", "2", "--cache", str(tmp_path / "models"),
                          "--skip", "models:bge-large"], cwd=ROOT,
                         env=env, capture_output=True, text=True, timeout=500)
    assert run.returncode == 0, (run.stdout + run.stderr)[-4000:]
    assert _untracked_and_changed() == before  # the install worked on a copy
    assert (out / "run.log").is_file()
    (path,) = out.glob("gpu-check-cpu-*.json")
    data = json.loads(path.read_text())
    sections = data["sections"]
    _check_install(sections["environment"])
    versions = sections["environment"]["machine"]["versions"]
    assert versions["transformers"] == "5.17.0", versions
    # What the engine picks by itself (on the GPU: one device per GPU, bf16, no refusal).
    assert sections["environment"]["placement"] == {
        "devices": ["auto"], "auto_dtype": "float32", "unusable_gpu": None}
    _check_encoder(sections["models:minilm"])
    assert sections["models:bge-large"] == {"status": "skipped", "reason": "--skip"}
    assert sections["oom"]["status"] == "skipped" and "CPU" in sections["oom"]["reason"]
    _check_server(sections["server"])
    _check_llm(sections["llm:qwen3-0.6b"])
    assert sections["compiled"]["status"] == "ok"
    assert data["ok"] and "OK" in run.stdout

    from bench.device import chart

    png = chart.draw(data, tmp_path / "chart.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "CPU dry run" in chart.device_name(data)
    titles = [title for title, _ in chart.panels(data)]
    assert any(t.startswith("minilm, 100 mixed") for t in titles)
    _check_assets(KIT_HERE / "assets", tmp_path / "tokenizers")


def _check_assets(assets_dir: Path, tmp: Path) -> None:
    """Each shape's tokenizer: the real vocabulary, ids and pair layout of its family."""
    from transformers import AutoTokenizer

    from bench.device import assets

    xlmr = AutoTokenizer.from_pretrained(assets.unpack(assets_dir / "xlm-r", tmp / "xlm-r"))
    assert len(xlmr) == 250002 and xlmr.model_max_length == 512
    pair = xlmr.decode(xlmr("what is", "the capital")["input_ids"])
    assert pair == "<s> what is</s></s> the capital</s>"
    qwen = AutoTokenizer.from_pretrained(assets.unpack(assets_dir / "qwen", tmp / "qwen"))
    assert len(qwen) == 151669
    assert qwen.convert_tokens_to_ids(["yes", "no", "<|im_start|>", "</think>"]) == [
        9693, 2152, 151644, 151668]


def _check_install(environment: dict) -> None:
    """Serving's packages and the project came from the kit's clean folder, not .venv."""
    origins = environment["imported_from"]
    for module in ("reranker", "serving", "starlette", "uvicorn"):
        assert "device-check." in origins[module], (module, origins[module])
    assert origins["bench"].startswith(str(ROOT))  # the tree's, beside tests/


def _check_encoder(section: dict) -> None:
    assert section["status"] == "ok", section
    peers = section["peers"]
    assert set(peers) == {"ours fp32", "ours bf16", "CrossEncoder fp32"}
    assert section["targets"]["fp32_parity_ok"]
    assert peers["ours fp32"]["parity"]["max_abs"] <= 1e-5
    assert -1 <= peers["ours bf16"]["parity"]["kendall_tau_mean"] <= 1
    for row in peers.values():
        for workload in ("mixed100", "rag25"):
            assert row[workload]["pairs_per_s"] > 0
    assert section["requests"]["mixed100"]["pairs"] > section["requests"]["rag25"]["pairs"]


def _check_llm(section: dict) -> None:
    """The engine scores the Qwen3 shape as the model card does, and CrossEncoder, given
    the card's prompt as the chat template and the card's context, computes the same."""
    assert section["status"] == "ok", section
    assert section["probe_max_abs"] <= 1e-4
    peers = section["peers"]
    assert peers["ours fp32"]["parity"]["max_abs"] <= 1e-4
    assert peers["CrossEncoder fp32"]["parity"]["max_abs"] <= 1e-4
    assert -1 <= peers["ours bf16"]["parity"]["kendall_tau_mean"] <= 1
    for row in peers.values():
        assert row["mixed100"]["pairs_per_s"] > 0


def _check_server(section: dict) -> None:
    assert section["status"] == "ok", section
    for name in ("ours", "infinity"):
        levels = section["stacks"][name]["levels"]
        assert [r["concurrency"] for r in levels] == [2], name
        assert all(r["requests"] > 0 and r["errors"] == 0 for r in levels), (name, levels)


def _untracked_and_changed() -> str:
    return subprocess.run(["git", "status", "--porcelain"], cwd=ROOT, capture_output=True,
                          text=True, timeout=60).stdout
