"""The DLC-equivalent image (container/dlc, `make dlc-image`) keeps the SageMaker contract
the way the real Hugging Face DLC does: `docker run IMAGE serve` with a `make package`
archive unpacked at /opt/ml/model, SAGEMAKER_BIND_TO_PORT, code/inference.py from the
archive, code/requirements.txt run through pip at start; served by uid 1000 here, with the
build's CA bundle and torch wheel left in the build stage.  Parity of every dialect is in
tests/test_dlc_parity.py ([container]).  Skipped, with the reason, where Docker cannot run.
"""

from __future__ import annotations

import subprocess
import sys

import httpx
import pytest

import dlcimage
import dockerutil
from bench import dlc_stack as dlcutil
from example_texts import PANDA_DOCS, PANDA_QUERY

pytestmark = pytest.mark.slow

PORT = 9090


@pytest.fixture(scope="module")
def served(bert_dir, tmp_path_factory):
    reason = dlcimage.skip_reason()
    if reason:
        pytest.skip(reason)
    out = tmp_path_factory.mktemp("dlc-contract")
    subprocess.run([sys.executable, "-m", "deploy", "package", str(bert_dir),
                    "-o", str(out / "model.tar.gz")], check=True, capture_output=True)
    model = dockerutil.unpack_like_sagemaker(out / "model.tar.gz", out / "model")
    with dockerutil.running(dlcimage.IMAGE, env={**dlcimage.SAGEMAKER_ENV,
                                                 "SAGEMAKER_BIND_TO_PORT": str(PORT)},
                            volumes={model: "/opt/ml/model:ro"}, port=PORT) as box:
        dlcutil.wait_invocations(box.url, alive=lambda: box.state()["Running"],
                                 tail=lambda: box.logs()[-4000:], timeout=240)
        yield box


def test_serves_the_archive_on_the_bound_port(served, bert_engine):
    answer = httpx.post(served.url + "/invocations", timeout=60,
                        json={"query": PANDA_QUERY, "documents": PANDA_DOCS, "topk": 2})
    assert answer.status_code == 200
    raw = bert_engine.score(PANDA_QUERY, PANDA_DOCS, raw=True)
    for item in answer.json():
        assert item["score"] == pytest.approx(raw[item["index"]], abs=1e-5)


def test_runs_our_hooks_and_the_requirements_step(served):
    logs = served.logs()
    assert "`model_fn` implementation found" in logs
    # The toolkit pip-installs the archive's code/requirements.txt (empty on purpose) at
    # every start, as the serving user: that user can.
    dlcimage.in_container(served, "pip", "install", "--no-index", "-r",
                          "/opt/ml/model/code/requirements.txt")


def test_serves_as_uid_1000_not_root(served):
    assert dlcimage.in_container(served, "id", "-u") == "1000"
    config = dockerutil.docker("image", "inspect", "-f", "{{.Config.User}}", dlcimage.IMAGE)
    assert config == "1000"


def test_build_inputs_stay_in_the_build_stage(served):
    """The CA bundle and torch wheel handed to the build (build/docker-extras) are not in
    the image: the last stage copies only /opt/venv."""
    found = dlcimage.in_container(served, "sh", "-c",
                                  "ls /tmp/build /tmp/*.whl /opt/venv/*.whl 2>/dev/null; true")
    assert found == ""
    history = dockerutil.docker("history", "--no-trunc", "--format", "{{.CreatedBy}}",
                                dlcimage.IMAGE)
    assert "docker-extras" not in history and "ca.crt" not in history
