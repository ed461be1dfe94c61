"""The SageMaker Python SDK's local mode (sagemaker 2.x, .venv-sagemaker) deploys our image
and the DLC-equivalent one from a file:// model.tar.gz with instance_type="local", predicts
through the SDK's Predictor with JSON serializers, and tears down.

What users do in the aws-samples bge-reranker-large notebook, with the endpoint on this
machine: `Model(...)` (our image) or `HuggingFaceModel(...)` (the DLC's class)
`.deploy(instance_type="local")`, `predictor.predict({...})`, `predictor.delete_endpoint()`,
`predictor.delete_model()`.
Local mode runs docker compose; the port is published on 127.0.0.1 (tests/sdk/local_mode.py)
and every container it started is removed by id afterwards, also on failure.  Skipped,
with the reason, where Docker or compose cannot run.
"""

from __future__ import annotations

import shutil
import subprocess
import sys

import pytest

import dlcimage
import dockerutil
import sdkutil
from bench.local_server import free_port
from example_texts import PANDA_DOCS, PANDA_QUERY

pytestmark = pytest.mark.slow

TOPK_REQUEST = {"query": PANDA_QUERY, "documents": PANDA_DOCS, "topk": 2}
EMPTY_QUERY = {"query": "", "documents": PANDA_DOCS}
IMAGES = {
    # image fixture, the SDK's model class
    "ours": ("serving_image", "Model"),
    "dlc": ("dlc_image", "HuggingFaceModel"),
}


def compose_skip_reason() -> str | None:
    """The SDK (sagemaker.local.image) runs `docker compose` (v2) or `docker-compose`."""
    v2 = subprocess.run(["docker", "compose", "version"], capture_output=True, text=True)
    if v2.returncode == 0 and "v2" in v2.stdout or shutil.which("docker-compose"):
        return None
    return ("local mode needs `docker compose` v2 or `docker-compose` "
            "(apt-get install docker-compose)")


@pytest.fixture(scope="module")
def local_ready():
    reason = (dockerutil.skip_reason() or compose_skip_reason()
              or (None if sdkutil.venv_ready() else "run `make sagemaker-venv`"))
    if reason:
        pytest.skip(reason)


@pytest.fixture(scope="module")
def serving_image(local_ready):
    return dockerutil.ensure_image()


@pytest.fixture(scope="module")
def dlc_image(local_ready):
    reason = dlcimage.skip_reason()
    if reason:
        pytest.skip(reason)
    return dlcimage.IMAGE


@pytest.fixture(scope="module")
def model_data(bert_dir, tmp_path_factory):
    """file:// URL of a `make package` archive, alone in its folder: local mode unpacks it
    beside itself and mounts that folder at /opt/ml/model."""
    out = tmp_path_factory.mktemp("sdk-model")
    out.chmod(0o755)
    subprocess.run([sys.executable, "-m", "deploy", "package", str(bert_dir),
                    "-o", str(out / "model.tar.gz")], check=True, capture_output=True)
    return f"file://{out / 'model.tar.gz'}"


@pytest.fixture(scope="module", params=IMAGES, ids=IMAGES)
def deployed(request, model_data):
    image_fixture, model_class = IMAGES[request.param]
    image = request.getfixturevalue(image_fixture)
    result = sdkutil.run_local({
        "mode": "local", "image": image, "model_data": model_data, "port": free_port(),
        "model_class": model_class, "env": dict(dlcimage.SAGEMAKER_ENV),
        "ready_body": TOPK_REQUEST, "requests": [TOPK_REQUEST, EMPTY_QUERY]})
    return result, model_class


def test_deploy_predict_with_json_serializers(deployed, bert_engine):
    result, model_class = deployed
    assert result["predictors"] == [f"{model_class}.deploy(local)"]
    raw = bert_engine.score(PANDA_QUERY, PANDA_DOCS, raw=True)
    best = sorted(range(len(PANDA_DOCS)), key=lambda i: -raw[i])[:2]
    got = result["answers"][0][0]
    assert "ok" in got, got
    assert [item["index"] for item in got["ok"]] == best
    for item in got["ok"]:
        assert item["score"] == pytest.approx(raw[item["index"]], abs=1e-5)


def test_client_fault_comes_back_as_the_error_body(deployed):
    """Unlike SageMaker's runtime (a ModelError, tests/test_sdk_predictor.py), local mode's
    runtime client ignores the status and hands the error body to the deserializer: ours,
    naming the field, from both images (on the DLC the hooks answer it themselves rather
    than leave it to the toolkit's 400 envelope)."""
    result, _ = deployed
    body = result["answers"][0][1]["ok"]
    assert set(body) == {"error"} and body["error"]["field"] == "query"


def test_teardown_leaves_no_running_container(deployed):
    """delete_endpoint stops the compose service; what it leaves, run_local removes."""
    result, _ = deployed
    assert result["teardown"] == "deleted endpoint, endpoint config and model"
    assert len(result["started"]) == 1
    assert result["running_after_teardown"] == []
    assert not [p for p in result["home_files"] if p.startswith(".aws")]
