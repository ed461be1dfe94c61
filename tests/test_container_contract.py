"""The container tier: our serving image under a real Docker engine, as SageMaker runs it.

A ``python -m deploy package`` archive (what ``make package`` writes) of a tiny model is
unpacked at /opt/ml/model the way SageMaker unpacks it, and ``docker run IMAGE serve``
must honour the contract: the HTTP suites pass against it (on a read-only root), /ping is
503 until the model is loaded and 200 after, SAGEMAKER_BIND_TO_PORT moves the port (and the
HEALTHCHECK follows it), uid 1000 serves, ``docker stop`` drains the request in flight and
the container exits 0 within 30 s.  And the build's CA bundle and torch wheel are in no
layer of the image.  An LLM reranker scores as in this process; RERANK_COMPILE=true is
refused by the default image and compiles in the COMPILER=true one.  Skipped, with the
reason, when no Docker engine runs.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tarfile
import threading
import time
from pathlib import Path

import httpx
import pytest

import dockerutil
from bench.local_server import ROOT
from gated_model import GATED_INFERENCE, post_in_thread, wait_file
from suite_server import SUITE_ENV

SKIP = dockerutil.skip_reason()
pytestmark = [pytest.mark.docker, pytest.mark.slow,
              pytest.mark.skipif(SKIP is not None, reason=f"container tier: {SKIP}")]

GOOD = {"query": "capital of the united states", "documents": ["washington dc", "a panda"]}
HTTP_SUITES = ["tests/test_server_api.py", "tests/test_server_errors.py",
               "tests/test_server_load.py", "tests/test_server_hostile.py"]
EXTRAS = ROOT / "build" / "docker-extras" / dockerutil.IMAGE.rpartition(":")[2]


@pytest.fixture(scope="module")
def image() -> str:
    return dockerutil.ensure_image()


@pytest.fixture(scope="module")
def model_dir(bert_dir, tmp_path_factory) -> Path:
    """The tiny BERT as SageMaker hands it to the container: packaged, then unpacked."""
    out = tmp_path_factory.mktemp("archive")
    subprocess.run([sys.executable, "-m", "deploy", "package", str(bert_dir),
                    "-o", str(out / "model.tar.gz")], check=True, capture_output=True)
    return dockerutil.unpack_like_sagemaker(out / "model.tar.gz", out / "model")


@pytest.fixture()
def gated(model_dir, tmp_path) -> tuple[Path, Path]:
    """(model, gates): the archive with a code/inference.py whose hooks wait on gate files."""
    model = tmp_path / "model"
    subprocess.run(["cp", "-a", str(model_dir), str(model)], check=True)
    (model / "code" / "inference.py").write_text(GATED_INFERENCE)
    (model / "code" / "inference.py").chmod(0o644)
    gates = tmp_path / "gates"
    gates.mkdir(mode=0o777)
    gates.chmod(0o777)  # uid 1000 in the container writes its blocked-* files here
    return model, gates


def test_http_suites_pass_against_the_read_only_image(image, model_dir):
    with dockerutil.running(image, env=SUITE_ENV,
                            volumes={model_dir: "/opt/ml/model:ro"},
                            options=["--read-only", "--tmpfs", "/tmp"]) as box:
        box.wait_ping(200)
        env = {**os.environ, "RERANK_TEST_URL": box.url, "RERANK_TEST_MODEL_DIR": str(model_dir)}
        done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                               *HTTP_SUITES], cwd=ROOT, env=env, capture_output=True, text=True,
                              timeout=900)
        assert done.returncode == 0, done.stdout[-6000:] + box.logs()[-3000:]
        assert box.state()["Running"], box.logs()[-3000:]
    assert re.search(r"\d+ passed", done.stdout)


def test_sagemaker_lifecycle_port_health_uid_and_drain(image, gated):
    model, gates = gated
    env = {"SAGEMAKER_BIND_TO_PORT": "9090", "TEST_GATE_DIR": "/gates"}
    with dockerutil.running(image, env=env, port=9090,
                            volumes={model: "/opt/ml/model:ro", gates: "/gates"}) as box:
        box.wait_ping(503)  # listening while model_fn waits on its gate
        assert box.state()["Health"]["Status"] == "starting"
        (gates / "load").touch()
        box.wait_ping(200)
        assert httpx.post(box.url + "/invocations", json=GOOD, timeout=60).status_code == 200
        box.wait_health("healthy")  # the HEALTHCHECK found port 9090 too
        status = dockerutil.docker("exec", box.id, "cat", "/proc/1/status")
        assert re.search(r"^Uid:\s+1000\s", status, re.M), status

        thread, out = post_in_thread(box.url, {"query": "block:b", "documents": ["x"]})
        wait_file(gates / "blocked-b")
        stopped = threading.Thread(target=dockerutil.docker, args=("stop", "-t", "30", box.id),
                                   kwargs={"timeout": 60})
        started = time.monotonic()
        stopped.start()
        time.sleep(1.0)
        assert box.state()["Running"], "exited with a request in flight"
        (gates / "release-b").touch()
        thread.join(60)
        stopped.join(60)
        took = time.monotonic() - started
        assert out["response"].status_code == 200, out["response"].text
        state = box.state()
        assert not state["Running"] and state["ExitCode"] == 0, box.logs()[-3000:]
        assert took < 30, f"docker stop took {took:.1f} s"


def test_image_runs_as_uid_1000_with_port_8080_and_reports_its_size(image, capsys):
    config = json.loads(dockerutil.docker("image", "inspect", "--format", "{{json .Config}}",
                                          image))
    assert config["User"] == "1000"
    assert "8080/tcp" in config["ExposedPorts"]
    assert config["Labels"]["com.amazonaws.sagemaker.capabilities.accept-bind-to-port"] == "true"
    assert config["Cmd"] == ["serve"] and "serving.healthcheck" in " ".join(
        config["Healthcheck"]["Test"])
    assert not any(key.startswith("PYTHONPATH=") for key in config["Env"])
    size = int(dockerutil.docker("image", "inspect", "--format", "{{.Size}}", image))
    report = {"image": image, "size_bytes": size, "size_mb": round(size / 1e6)}
    (ROOT / "build").mkdir(exist_ok=True)
    variant = image.rpartition(":")[2]
    (ROOT / "build" / f"container-image-{variant}.json").write_text(json.dumps(report) + "\n")
    with capsys.disabled():
        print(f"\n{image}: {size / 1e6:.0f} MB")


def _pem_blocks(text: str) -> set[str]:
    return set(re.findall(r"-----BEGIN CERTIFICATE-----.+?-----END CERTIFICATE-----", text,
                          re.S))


def test_build_ca_bundle_and_wheels_are_in_no_layer(image, tmp_path):
    handed = EXTRAS / "ca.crt"
    if not handed.exists():
        pytest.skip(f"this build was handed no CA bundle ({handed})")
    own = dockerutil.docker("run", "--rm", "--entrypoint", "cat", image,
                            "/etc/ssl/certs/ca-certificates.crt", check=False)
    # Certificates the image trusts by itself (Debian's bundle) may be there; the others
    # only this machine's pip needed.  Search one line of each, long enough to be unique.
    foreign = _pem_blocks(handed.read_text()) - _pem_blocks(own)
    needles = {block.splitlines()[3].encode() for block in foreign}
    archive = tmp_path / "image.tar"
    dockerutil.docker("save", "-o", str(archive), image, timeout=600)
    found = []
    for name, data in _layer_files(archive):
        # Wheels besides those Debian's python3-venv ships (/usr/share/python-wheels).
        wheel = name.endswith(".whl") and not name.startswith("usr/share/python-wheels/")
        if "docker-extras" in name or name.startswith("tmp/") or wheel:
            found.append(name)
        found += [name for needle in needles if data is not None and needle in data]
    assert not found, f"build-only files in the image: {sorted(set(found))[:10]}"


def _layer_files(archive: Path):
    """(path, bytes or None) of every file in every layer of a ``docker save`` archive."""
    with tarfile.open(archive) as saved:
        for blob in saved:
            if not blob.isfile() or blob.name.endswith((".json", "repositories")):
                continue
            try:
                layer = tarfile.open(fileobj=saved.extractfile(blob))
            except tarfile.ReadError:
                continue
            with layer:
                for member in layer:
                    # Certificates are text: the large shared libraries need no reading.
                    small = member.isfile() and member.size < 5_000_000
                    data = layer.extractfile(member).read() if small else None
                    yield member.name.removeprefix("./"), data


LLM_BODY = {**GOOD, "instruction": "Find capital cities"}


@pytest.fixture(scope="module")
def llm_model(llm_dirs, tmp_path_factory) -> tuple[Path, dict[int, float]]:
    """(model directory, scores): a packaged tiny Qwen3-Reranker (causal yes/no head, shared
    prefix) unpacked as SageMaker does, and what model_fn/predict_fn score in this process."""
    import inference

    out = tmp_path_factory.mktemp("llm")
    subprocess.run([sys.executable, "-m", "deploy", "package", str(llm_dirs("qwen3")),
                    "-o", str(out / "model.tar.gz")], check=True, capture_output=True)
    model_dir = dockerutil.unpack_like_sagemaker(out / "model.tar.gz", out / "model")
    model = inference.model_fn(str(model_dir))
    try:
        expected = json.loads(inference.output_fn(inference.predict_fn(
            inference.input_fn(json.dumps(LLM_BODY), "application/json"), model),
            "application/json"))
    finally:
        model.close()
    return model_dir, {r["index"]: r["relevance_score"] for r in expected["results"]}


def assert_scores_as_in_process(image: str, llm_model, env: dict | None = None) -> str:
    """The container's scores equal the in-process ones (within 1e-5); returns its logs."""
    model_dir, want = llm_model
    with dockerutil.running(image, env=env, volumes={model_dir: "/opt/ml/model:ro"}) as box:
        box.wait_ping(200, timeout=300)
        response = httpx.post(box.url + "/invocations", json=LLM_BODY, timeout=60)
        logs = box.logs()
    assert response.status_code == 200, response.text
    got = {r["index"]: r["relevance_score"] for r in response.json()["results"]}
    assert got.keys() == want.keys()
    assert max(abs(got[i] - want[i]) for i in want) < 1e-5
    return logs


def test_the_image_serves_an_llm_reranker_like_the_hooks(image, llm_model):
    """The image scores as model_fn/predict_fn do in this process, instruction included."""
    assert_scores_as_in_process(image, llm_model)


def test_rerank_compile_is_refused_in_the_image_without_a_compiler(image, llm_model):
    """The default image has no toolchain: RERANK_COMPILE=true fails the load with one line
    that says so (SageMaker reports a failed endpoint), instead of failing in a request."""
    model_dir, _ = llm_model
    with dockerutil.running(image, env={"RERANK_COMPILE": "true"},
                            volumes={model_dir: "/opt/ml/model:ro"}) as box:
        deadline = time.monotonic() + 180
        while box.state()["Running"] and time.monotonic() < deadline:
            time.sleep(0.5)
        state, logs = box.state(), box.logs()
    assert not state["Running"] and state["ExitCode"] != 0, logs[-2000:]
    assert ("RERANK_COMPILE=true: no C++ compiler (g++) on PATH; install it (our serving"
            " image: build it with COMPILER=true)") in logs


def test_the_compiler_image_serves_a_compiled_llm_reranker(llm_model):
    """`make docker-build COMPILER=true`: the same image with g++ and Python's headers, where
    RERANK_COMPILE=true compiles at load and scores as the eager model in this process."""
    # Built here every time (make test builds only the default image): never an old tree's.
    image = dockerutil.build_image(dockerutil.IMAGE.rpartition(":")[0] + ":cpu-compiler")
    logs = assert_scores_as_in_process(image, llm_model, env={"RERANK_COMPILE": "true"})
    assert re.search(r'"compiled_modules": [1-9]', logs), logs[-2000:]
