"""MetricsConfig on new endpoint configs and ContainerMetricsConfig on our image's model.

moto 5.2.5 accepts MetricsConfig in CreateEndpointConfig but does not store it
(DescribeEndpointConfig leaves it out), so the request itself is captured as the real
client sends it (botocore has validated it against the service model by then) and moto's
acceptance is checked; ContainerMetricsConfig moto stores and returns.
"""

from __future__ import annotations

import pytest

import test_deploy_moto as moto_tests
from deploy import config as cfg
from deploy.errors import UserError
from deploy.sagemaker import metrics_config, resources

moto_url = moto_tests.moto_url
aws = moto_tests.aws


def sent(sm, operation: str) -> list[dict]:
    captured: list[dict] = []
    sm.meta.events.register(f"provide-client-params.sagemaker.{operation}",
                            lambda params, **_: captured.append(dict(params)))
    return captured


@pytest.mark.parametrize("mode, expected", [
    ("realtime", {"EnableEnhancedMetrics": True, "EnableDetailedObservability": True,
                  "MetricPublishFrequencyInSeconds": 30}),
    ("serverless", None),
    ("async", None),
])
def test_new_endpoint_configs_carry_metrics_config(aws, mode, expected):
    sm = aws("sagemaker")
    config = cfg.DeployConfig(mode=mode, role=moto_tests.ROLE, metrics_frequency=30,
                              instance_type="ml.g4dn.xlarge", async_output="s3://b/out/")
    resources.create_model(sm, config, "m", "1.dkr.ecr.us-east-1.amazonaws.com/x:1",
                           "s3://b/k.tar.gz", True, "us-east-1")
    requests = sent(sm, "CreateEndpointConfig")
    resources.create_endpoint_config(sm, config, "ec", "m", None)
    assert requests[0].get("MetricsConfig") == expected
    assert sm.describe_endpoint_config(EndpointConfigName="ec")["ProductionVariants"]


def test_frequency_is_one_the_api_accepts():
    assert metrics_config.endpoint_metrics(300)["MetricsConfig"][
        "MetricPublishFrequencyInSeconds"] == 300
    with pytest.raises(UserError, match="10, 30, 60"):
        metrics_config.endpoint_metrics(90)
    assert metrics_config.endpoint_metrics(60, serverless=True) == {}


def test_only_our_image_names_its_metrics_path():
    ours = metrics_config.container_metrics(True)["ContainerMetricsConfig"]
    assert ours["MetricsEndpoints"][0]["MetricsEndpointPath"] == "/metrics"
    assert metrics_config.container_metrics(False) == {}  # the DLC: SageMaker knows its path


def test_a_moved_or_disabled_metrics_path_is_what_sagemaker_is_told():
    moved = metrics_config.container_metrics(True, 60, {"SERVE_METRICS_PATH": "/server/m"})
    assert moved["ContainerMetricsConfig"]["MetricsEndpoints"][0]["MetricsEndpointPath"] == \
        "/server/m"
    for off in ("0", "false", "OFF"):
        assert metrics_config.container_metrics(True, 60, {"SERVE_METRICS": off}) == {}
