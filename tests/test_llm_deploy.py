"""LLM rerankers on the deploy path: sharded packaging, size report, streaming, refusals,
deploy defaults (instance type by parameter count, serverless, the DLC's transformers)."""

from __future__ import annotations

import json
import tarfile
import tracemalloc
from pathlib import Path

import pytest

from deploy import config as cfg
from deploy.__main__ import main
from deploy.errors import UserError
from deploy.package import archive, model_kind, weights
from deploy.sagemaker import images, model_source, sizing


@pytest.fixture(scope="module")
def llm_dir(llm_dirs, tmp_path_factory) -> Path:
    """A tiny Qwen3-Reranker (Qwen3ForCausalLM, the real Qwen vocabulary) in 3 shards."""
    from transformers import AutoModelForCausalLM

    single = llm_dirs("qwen3")
    model = AutoModelForCausalLM.from_pretrained(single)
    sharded = tmp_path_factory.mktemp("qwen3-sharded") / "qwen3-reranker-tiny"
    model.save_pretrained(sharded, max_shard_size="4MB")
    for name in ("tokenizer.json", "tokenizer_config.json"):
        (sharded / name).write_bytes((single / name).read_bytes())
    assert len(list(sharded.glob("model-*-of-*.safetensors"))) > 1
    return sharded


@pytest.fixture(scope="module")
def llm_archive(llm_dir, tmp_path_factory) -> tuple[Path, str]:
    out = tmp_path_factory.mktemp("llm-package") / "model.tar.gz"
    import contextlib
    import io

    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        assert main(["package", str(llm_dir), "-o", str(out)]) == 0
    return out, printed.getvalue()


def one_line(capsys) -> str:
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), lines
    return lines[0]


def test_kind_comes_from_config_json():
    assert model_kind.is_llm({"architectures": ["Qwen3ForCausalLM"]})
    assert model_kind.is_llm({"architectures": ["Qwen3ForSequenceClassification"],
                              "model_type": "qwen3"})
    assert not model_kind.is_llm({"architectures": ["BertForSequenceClassification"]})


def test_a_causal_lm_without_a_reranker_profile_is_refused(llm_dir, tmp_path, capsys):
    unknown = tmp_path / "unknown"
    unknown.mkdir()
    for path in llm_dir.iterdir():
        (unknown / path.name).symlink_to(path)
    config = json.loads((llm_dir / "config.json").read_text())
    (unknown / "config.json").unlink()
    (unknown / "config.json").write_text(json.dumps(
        {**config, "architectures": ["MysteryForCausalLM"]}))
    code = main(["package", str(unknown), "-o", str(tmp_path / "x.tar.gz")])
    line = one_line(capsys)
    assert code == 2 and "no reranker profile" in line and "does not load" in line
    assert not (tmp_path / "x.tar.gz").exists()


def test_sharded_weights_are_counted_from_headers(llm_dir):
    from safetensors import safe_open

    files = weights.files(llm_dir)
    assert [p.name for p in files] == sorted(p.name for p in
                                             llm_dir.glob("model-*-of-*.safetensors"))
    expected = 0
    for path in files:
        with safe_open(str(path), "pt") as fh:
            expected += sum(_numel(fh.get_slice(k).get_shape()) for k in fh.keys())
    assert weights.parameter_count(llm_dir) == expected > 0


def _numel(shape) -> int:
    out = 1
    for dim in shape:
        out *= dim
    return out


def test_index_and_shards_must_agree(llm_dir, tmp_path):
    broken = tmp_path / "broken"
    broken.mkdir()
    for path in llm_dir.iterdir():
        (broken / path.name).symlink_to(path)
    first = sorted(broken.glob("model-*-of-*.safetensors"))[0]
    first.unlink()
    with pytest.raises(UserError, match=f"missing, first {first.name}"):
        weights.files(broken)
    (broken / weights.INDEX).unlink()
    (broken / weights.INDEX).write_text(json.dumps({"weight_map": {"x": "../escape.safetensors"}}))
    with pytest.raises(UserError, match="not a safetensors file beside it"):
        weights.files(broken)


def test_package_of_a_sharded_llm_reports_its_sizes(llm_archive, capsys):
    out, printed = llm_archive
    manifest = json.loads(archive.read_member(out, archive.MANIFEST))
    assert manifest["llm"] is True and manifest["parameters"] > 1_000_000
    assert manifest["architecture"] == "Qwen3ForCausalLM"
    # Which prompt it will be scored with, said before it is deployed.
    assert manifest["prompt"].startswith("qwen3-reranker, as the Qwen3-Reranker model card")
    assert "prompt      qwen3-reranker" in printed
    # ... and again by `inspect`, read from the archive's reranker.json, on one line.
    capsys.readouterr()
    assert main(["inspect", str(out)]) == 0
    inspected = capsys.readouterr().out
    assert "prompt      qwen3-reranker, as the Qwen3-Reranker model card" in inspected
    with tarfile.open(out) as tar:
        names = set(tar.getnames())
    assert weights.INDEX in names and "model-00001-of-00003.safetensors" in names
    for line in ("model-00001-of-00003.safetensors", "total ", "archive ", "time ",
                 "parameters "):
        assert line in printed


def test_archiving_and_hashing_stream(tmp_path):
    """No whole-file reads: a 48 MB file goes through with a few MB of Python memory."""
    big = tmp_path / "model-00001-of-00001.safetensors"
    with open(big, "wb") as fh:
        fh.truncate(48 * 1024 * 1024)
    manifest = tmp_path / "reranker.json"
    manifest.write_text("{}")
    tracemalloc.start()
    try:
        archive.write(tmp_path / "out.tar.gz", {"reranker.json": manifest, big.name: big},
                      level=1)
        archive.sha256_file(big)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 8 * 1024 * 1024, peak


def test_large_inputs_are_compressed_fast():
    assert archive.level_for(archive.LARGE_INPUT + 1) == 1
    assert archive.level_for(100 * 1024 * 1024) == 6


def test_onnx_export_refuses_llm_rerankers(llm_dir, tmp_path, capsys):
    from deploy.package.onnx_export import export_onnx

    with pytest.raises(UserError, match="ONNX export takes cross-encoders only"):
        export_onnx(llm_dir, tmp_path, quantize=False, tolerance=1e-4)
    code = main(["package", str(llm_dir), "-o", str(tmp_path / "x.tar.gz"), "--onnx", "fp32"])
    assert code == 2 and "Qwen3ForCausalLM is an LLM reranker" in one_line(capsys)


def test_vespa_package_refuses_llm_rerankers(llm_dir, tmp_path, capsys):
    code = main(["vespa", "--model-dir", str(llm_dir), "--out", str(tmp_path / "app")])
    assert code == 2 and "Vespa application package takes cross-encoders" in one_line(capsys)
    assert not (tmp_path / "app").exists()


@pytest.mark.parametrize("parameters, expected", [
    (0.6e9, "ml.g5.xlarge"), (4.0e9, "ml.g5.xlarge"), (8.2e9, "ml.g6e.xlarge")])
def test_llm_rerankers_default_to_a_gpu_by_size(parameters, expected):
    assert sizing.default_instance_type({"llm": True, "parameters": parameters}) == expected
    assert sizing.default_instance_type({"llm": False, "parameters": 5e8}) == "ml.m5.xlarge"
    assert sizing.default_instance_type(None) == "ml.m5.xlarge"


def test_too_large_for_one_gpu_asks_for_an_instance_type():
    with pytest.raises(UserError, match="set INSTANCE_TYPE"):
        sizing.default_instance_type({"llm": True, "parameters": 70e9, "model_id": "big"})


def _config(**values) -> cfg.DeployConfig:
    return cfg.DeployConfig(**{"instance_type": "ml.g5.xlarge", **values})


def test_serverless_is_refused_where_the_model_cannot_fit():
    eight_b = {"llm": True, "parameters": 8.2e9, "model_id": "Qwen/Qwen3-Reranker-8B",
               "model_type": "qwen3"}
    with pytest.raises(UserError, match="serverless has no GPU and at most 6144 MB"):
        sizing.check(_config(mode="serverless", memory_mb=6144), eight_b)
    small = {**eight_b, "parameters": 0.6e9, "model_id": "Qwen/Qwen3-Reranker-0.6B"}
    with pytest.raises(UserError, match="--memory-mb=2048 is too little"):
        sizing.check(_config(mode="serverless", memory_mb=2048), small)
    sizing.check(_config(mode="serverless", memory_mb=6144), small)  # fits


def test_a_gpu_too_small_for_the_weights_is_refused():
    eight_b = {"llm": True, "parameters": 8.2e9, "model_id": "Qwen3-Reranker-8B"}
    with pytest.raises(UserError, match="ml.g4dn.xlarge has 16 GB per GPU"):
        sizing.check(_config(instance_type="ml.g4dn.xlarge"), eight_b)
    sizing.check(_config(instance_type="ml.g6e.xlarge"), eight_b)


def test_compile_for_a_cross_encoder_is_refused_before_anything_is_created():
    """The container would refuse it at load: a failed endpoint ten minutes later."""
    minilm = {"llm": False, "parameters": 22.7e6, "model_id": "cross-encoder/ms-marco-MiniLM-L6-v2"}
    compiled = _config(instance_type="ml.c7i.xlarge", env={"RERANK_COMPILE": "true"})
    with pytest.raises(UserError, match="RERANK_COMPILE=true applies to LLM rerankers;"
                                        " cross-encoder/ms-marco-MiniLM-L6-v2 is a cross"):
        sizing.check(compiled, minilm)
    sizing.check(_config(instance_type="ml.c7i.xlarge"), minilm)
    sizing.check(compiled, {"llm": True, "parameters": 0.6e9, "model_id": "Qwen3-Reranker-0.6B"})


@pytest.mark.parametrize("parameters, instance_type, expected", [
    (22.7e6, "ml.m5.xlarge", 2048),     # MiniLM-L6: the floor
    (560e6, "ml.m5.xlarge", 4096),      # bge-reranker-large: fp32 weights on CPU
    (0.6e9, "ml.g5.xlarge", 4096),      # Qwen3-Reranker-0.6B: bf16 on its way to the GPU
    (8.2e9, "ml.g6e.xlarge", 22528)])   # Qwen3-Reranker-8B
def test_component_memory_is_sized_from_the_model(parameters, instance_type, expected):
    config = _config(mode="component", instance_type=instance_type)
    sizing.apply(config, {"parameters": parameters, "llm": instance_type.startswith("ml.g")})
    assert config.component_memory_mb == expected
    unknown = _config(mode="component")  # MODEL_DATA: no manifest to size from
    sizing.fit_component_memory(unknown, None)
    assert unknown.component_memory_mb == sizing.COMPONENT_MIN_MB


def test_component_memory_below_the_weights_is_refused():
    eight_b = {"llm": True, "parameters": 8.2e9, "model_id": "Qwen3-Reranker-8B"}
    config = _config(mode="component", instance_type="ml.g6e.xlarge", component_memory_mb=2048)
    with pytest.raises(UserError, match="--component-memory-mb=2048 is too little") as exc:
        sizing.fit_component_memory(config, eight_b)
    assert "unset, it is 22528" in str(exc.value) and "\n" not in str(exc.value)
    # Close to the estimate is the user's call; below the weights alone is not.
    small = _config(mode="component", instance_type="ml.m5.xlarge", component_memory_mb=1024)
    sizing.fit_component_memory(small, {"parameters": 22.7e6})
    assert small.component_memory_mb == 1024
    roomy = _config(mode="component", instance_type="ml.g6e.xlarge", component_memory_mb=32768)
    sizing.fit_component_memory(roomy, eight_b)
    assert roomy.component_memory_mb == 32768  # what was set is kept


def test_memory_is_sized_again_for_the_endpoint_a_component_joins():
    """The default instance type is a guess until the existing endpoint's is known: a
    Qwen3-Reranker-4B loads fp32 on CPU, twice its bf16 size on a GPU."""
    four_b = {"llm": True, "parameters": 4.0e9, "model_id": "Qwen3-Reranker-4B"}
    config = _config(mode="component")
    sizing.fit_component_memory(config, four_b)
    on_gpu = config.component_memory_mb
    sizing.fit_component_memory(config, four_b, "ml.m5.4xlarge")
    assert config.component_memory_mb == sizing.host_mb(4.0e9, gpu=False) > on_gpu
    assert config.memory_sized_for == "ml.m5.4xlarge"
    chosen = _config(mode="component", component_memory_mb=12288)
    sizing.fit_component_memory(chosen, four_b)  # enough beside a GPU
    with pytest.raises(UserError, match="to load on ml.m5.4xlarge"):
        sizing.fit_component_memory(chosen, four_b, "ml.m5.4xlarge")


def test_the_dlc_must_know_the_family():
    assert images.serving("qwen3") == [v for v in images.versions()
                                       if images._vkey(v) >= (4, 51)]
    assert images.transformers_for("qwen3", None) == images.PARITY_TRANSFORMERS
    with pytest.raises(UserError, match="need transformers 4.51.0 or later"):
        images.transformers_for("qwen3", "4.49.0")
    assert images.transformers_for("bert", "4.26.0") == "4.26.0"
    assert images.transformers_for("modernbert", "4.49.0") == "4.49.0"
    with pytest.raises(UserError, match="gemma models need transformers 4.51.0 or later"):
        images.transformers_for("gemma", "4.49.0")  # it has gemma; the engine's LLM path
    assert images.transformers_for("gemma", "5.5.3") == "5.5.3"


def test_deploy_settings_fit_a_packaged_llm(llm_archive, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for key in ("DEPLOY_INSTANCE_TYPE", "DEPLOY_TRANSFORMERS_VERSION", "DEPLOY_MODE"):
        monkeypatch.delenv(key, raising=False)
    args = type("Args", (), {"archive": str(llm_archive[0]), "env": []})()
    config = cfg.load(args, environ={}, container=True)
    assert config.instance_type == "ml.g5.xlarge"
    image = model_source.resolve_image(config, "us-east-1")
    assert "transformers4.51.3-gpu" in image
    args.transformers_version = "4.49.0"
    with pytest.raises(UserError, match="qwen3 models need transformers 4.51.0"):
        cfg.load(args, environ={}, container=True)
    args.transformers_version, args.mode = None, "serverless"
    config = cfg.load(args, environ={}, container=True)  # tiny: fits in 4096 MB
    assert config.instance_type == "ml.g5.xlarge"


def test_members_over_8_gib_fit_the_archive_format():
    """A 16 GB checkpoint's shard can exceed ustar's 8 GiB member limit; PAX has none."""
    info = archive._info("model-00001-of-00002.safetensors", 9 * 1024 ** 3)
    assert len(info.tobuf(tarfile.PAX_FORMAT)) % 512 == 0
    with pytest.raises(ValueError):
        info.tobuf(tarfile.USTAR_FORMAT)


def test_a_profile_override_is_packaged_and_served(llm_dirs, qwen3_engine, tmp_path):
    """reranker.json's "profile" in the model directory reaches the archive's reranker.json
    beside packaging's own keys, and the archive's engine scores with it."""
    import shutil

    import inference

    source = tmp_path / "qwen3-instructed-reranker"
    shutil.copytree(llm_dirs("qwen3"), source)
    override = {"name": "qwen3-reranker", "default_instruction": "Find the city's country"}
    # An earlier package's manifest key is written afresh; the profile is kept.
    (source / archive.MANIFEST).write_text(json.dumps({"profile": override, "parameters": 1}))
    out = tmp_path / "model.tar.gz"
    assert main(["package", str(source), "-o", str(out)]) == 0
    served = tmp_path / "served"
    archive.safe_extract(out, served)
    manifest = json.loads((served / archive.MANIFEST).read_text())
    assert manifest["profile"] == override
    assert manifest["parameters"] > 1 and manifest["llm"] is True

    body = json.dumps({"query": "Paris", "documents": ["France", "Spain"]}).encode()

    def answer_of(engine) -> list:
        result = inference.predict_fn(inference.input_fn(body, "application/json"), engine)
        return json.loads(inference.output_fn(result, "application/json"))["results"]

    def served_by(model_dir: Path) -> tuple[str, list]:
        """The engine's instruction and its answer, through the SageMaker hooks."""
        engine = inference.model_fn(str(model_dir))
        try:
            return engine.profile.default_instruction, answer_of(engine)
        finally:
            engine.close()

    instruction, answer = served_by(served)
    assert (instruction, answer) == served_by(source)
    assert instruction == override["default_instruction"]
    # The same weights without the override: the instruction is in the prompt.
    assert answer != answer_of(qwen3_engine)


def test_a_bad_profile_override_is_one_line(llm_dirs, tmp_path, capsys):
    import shutil

    source = tmp_path / "qwen3-bad-reranker"
    shutil.copytree(llm_dirs("qwen3"), source)
    (source / archive.MANIFEST).write_text(json.dumps({"profile": 3}))
    assert main(["package", str(source), "-o", str(tmp_path / "m.tar.gz")]) == 2
    assert '"profile" must be' in one_line(capsys)


def test_every_llm_family_goes_only_to_a_dlc_its_engine_path_is_tested_on():
    """The engine's LLM path (shared prompt caches) runs on the DLC's transformers from 4.51
    (tests/test_families_on_the_dlc.py): no decoder family is sent to an older one, where
    it would fail at the endpoint's start rather than here."""
    from reranker.profiles import DECODER_TYPES

    for model_type in DECODER_TYPES:
        assert images.serving(model_type), model_type
        assert all(images._vkey(v) >= images._vkey("4.51.0")
                   for v in images.serving(model_type)), model_type
