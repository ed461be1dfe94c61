"""The SDK's local mode (LocalSession, instance_type="local") with three changes for tests.

- The SDK publishes the serving container's port as "PORT:8080", on every interface of the
  host; our rules allow loopback only, so its docker-compose service is given
  "127.0.0.1:PORT:8080" instead.  Nothing else of the compose file changes.
- Its containers carry a label (RERANK_SDK_LABEL from the environment), so the test that
  started the driver can find and remove them by id, whatever happens to the driver.
- ``deploy()`` then waits for the endpoint by sleeping its 30-second poll before the first
  status call, where local mode's endpoint is InService already (create_endpoint returns
  only once /ping says 200): the poll is 1 second here.  The calls are the same.

Runs in .venv-sagemaker (tests/sdk/predictor_client.py imports it).
"""

from __future__ import annotations

import os
import tempfile

import boto3
from sagemaker.local import LocalSession, entities
from sagemaker.local.image import _SageMakerContainer

LABEL = "reranker.test.sdk"


class LoopbackContainer(_SageMakerContainer):
    """The SDK's container runner, its serving port published on 127.0.0.1 only."""

    def _create_docker_host(self, host, environment, optml_subdirs, command, volumes):
        config = super()._create_docker_host(host, environment, optml_subdirs, command,
                                             volumes)
        config["ports"] = [f"127.0.0.1:{spec}" for spec in config.get("ports", [])]
        return config


class FastPollLocalSession(LocalSession):
    """LocalSession whose wait for an endpoint polls every second instead of every 30."""

    def wait_for_endpoint(self, endpoint, poll=1, live_logging=False):
        return super().wait_for_endpoint(endpoint, poll=min(poll, 1), live_logging=live_logging)


def session(port: int, sdk_config: dict) -> LocalSession:
    """A LocalSession for ``port`` that calls no AWS service: region and credentials come
    from the environment, the model from a file:// URL, SDK defaults from ``sdk_config``."""
    entities._SageMakerContainer = LoopbackContainer  # what _LocalEndpoint.serve builds
    boto_session = boto3.Session(region_name=os.environ["AWS_DEFAULT_REGION"])
    local = FastPollLocalSession(boto_session=boto_session, sagemaker_config=sdk_config)
    local.config = {"local": {
        "local_code": True,
        "serving_port": port,
        "container_root": tempfile.mkdtemp(prefix="sdk-local-"),
        "container_config": {"labels": {LABEL: os.environ["RERANK_SDK_LABEL"]}},
    }}
    return local
