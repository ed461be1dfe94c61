"""Drive an endpoint with the SageMaker Python SDK (2.x), as a user's notebook does.

Runs in .venv-sagemaker (`make sagemaker-venv`), never in the project's venv: the SDK cannot
live beside our pins.  tests/sdkutil.py starts it with a job as JSON on stdin and reads one
JSON object from stdout:

    {"mode": "runtime", "endpoint_url": "http://127.0.0.1:PORT", "requests": [...]}
        the SDK's Predictor on the boto3 sagemaker-runtime client pointed at a server
    {"mode": "local", "image": "IMAGE", "model_data": "file:///.../model.tar.gz",
     "port": PORT, "env": {...}, "model_class": "Model" | "HuggingFaceModel", "requests": [...]}
        Model(...).deploy(instance_type="local"), predict, then delete endpoint and model

Answers {"predictors": [...], "answers": [...], "teardown": ...}: each answer is
{"ok": decoded JSON} or {"error": {"type", "status", "message"}} (a ModelError from the
endpoint keeps the status our server answered).
"""

from __future__ import annotations

import json
import os
import sys
import time

os.environ.setdefault("SAGEMAKER_SUPPRESS_V2_WARNING", "1")
# The SDK prints its config notices to stdout; the answer alone goes there.
ANSWER_OUT, sys.stdout = sys.stdout, sys.stderr

import boto3  # noqa: E402
import botocore.exceptions  # noqa: E402
import sagemaker  # noqa: E402
from sagemaker.deserializers import JSONDeserializer  # noqa: E402
from sagemaker.huggingface import HuggingFacePredictor  # noqa: E402
from sagemaker.predictor import Predictor  # noqa: E402
from sagemaker.serializers import JSONSerializer  # noqa: E402

ENDPOINT = "reranker-sdk-test"
# Local mode runs as if on SageMaker, which wants a role; nothing checks it offline.
ROLE = "arn:aws:iam::111122223333:role/reranker-local"
# SDK defaults as a user's config.yaml would give them: no telemetry calls from the tests.
SDK_CONFIG = {"SchemaVersion": "1.0",
              "SageMaker": {"PythonSDK": {"Modules": {"TelemetryOptOut": True}}}}


def answer(predictor, body) -> dict:
    try:
        return {"ok": predictor.predict(body)}
    except botocore.exceptions.ClientError as exc:  # ModelError: the endpoint said no
        error = exc.response
        return {"error": {"type": type(exc).__name__,
                          "status": error.get("OriginalStatusCode"),
                          "message": error.get("OriginalMessage")
                          or error.get("Error", {}).get("Message")}}


def wait_answering(predictor, body, timeout: float = 240.0) -> None:
    """Until ``body`` gets an answer: deploy() returns once /ping is 200, and the DLC's /ping
    says 200 before its workers have loaded the model (they answer 503 until then)."""
    deadline = time.monotonic() + timeout
    while "ok" not in (got := answer(predictor, body)):
        if time.monotonic() > deadline:
            raise RuntimeError(f"no answer within {timeout:.0f} s: {got}")
        time.sleep(1)


def runtime_session(endpoint_url: str) -> sagemaker.Session:
    """A Session whose runtime client is boto3's, pointed at our server: the calls and the
    wire format are exactly those made to SageMaker, only the host differs."""
    boto_session = boto3.Session(region_name=os.environ["AWS_DEFAULT_REGION"])
    runtime = boto_session.client("sagemaker-runtime", endpoint_url=endpoint_url)
    return sagemaker.Session(boto_session=boto_session, sagemaker_runtime_client=runtime,
                             sagemaker_config=SDK_CONFIG)


def run_runtime(job: dict) -> dict:
    session = runtime_session(job["endpoint_url"])
    predictors = {
        # What a user writes for an endpoint that already exists.
        "Predictor+JSON": Predictor(ENDPOINT, sagemaker_session=session,
                                    serializer=JSONSerializer(),
                                    deserializer=JSONDeserializer()),
        # What HuggingFaceModel.deploy() returns in the aws-samples notebook.
        "HuggingFacePredictor": HuggingFacePredictor(ENDPOINT, sagemaker_session=session),
    }
    return {"predictors": list(predictors),
            "answers": [[answer(p, body) for body in job["requests"]]
                        for p in predictors.values()]}


def _local_model(job: dict, session):
    """Model for our image; HuggingFaceModel for the DLC-equivalent one (the aws-samples
    notebook's class; an image_uri spares it the version lookup)."""
    from sagemaker.huggingface import HuggingFaceModel
    from sagemaker.model import Model

    common = {"image_uri": job["image"], "model_data": job["model_data"], "role": ROLE,
              "env": job.get("env") or {}, "sagemaker_session": session}
    if job.get("model_class") == "HuggingFaceModel":
        # A code_location bucket: deploy() resolves one before it sees that local code
        # uploads nothing, and finding the default bucket would call STS and S3.
        return HuggingFaceModel(code_location="s3://sagemaker-local-tests/code", **common)
    return Model(predictor_cls=Predictor, **common)


def run_local(job: dict) -> dict:
    import local_mode  # beside this file: local mode published on loopback only

    session = local_mode.session(job["port"], SDK_CONFIG)
    model = _local_model(job, session)
    predictor = model.deploy(initial_instance_count=1, instance_type="local",
                             endpoint_name=job.get("endpoint_name", ENDPOINT),
                             serializer=JSONSerializer(), deserializer=JSONDeserializer())
    try:
        if job.get("ready_body"):
            wait_answering(predictor, job["ready_body"])
        answers = [answer(predictor, body) for body in job["requests"]]
    finally:
        predictor.delete_model()  # first: it finds the model through the endpoint config
        predictor.delete_endpoint(delete_endpoint_config=True)
    return {"predictors": [f"{type(model).__name__}.deploy(local)"], "answers": [answers],
            "teardown": "deleted endpoint, endpoint config and model"}


def main() -> int:
    job = json.load(sys.stdin)
    run = {"runtime": run_runtime, "local": run_local}[job["mode"]]
    json.dump(run(job), ANSWER_OUT)
    return 0


if __name__ == "__main__":
    sys.exit(main())
