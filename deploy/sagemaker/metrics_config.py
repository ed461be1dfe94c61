"""What SageMaker publishes to CloudWatch for an endpoint: MetricsConfig and ContainerMetricsConfig.

MetricsConfig (CreateEndpointConfig) turns on enhanced metrics (utilization and invocations
per instance, and per container for inference components) and detailed observability:
SageMaker scrapes the container's Prometheus endpoint and publishes it.  Our image serves
``/metrics`` on port 8080, the path SageMaker scrapes by default; we still name it in
ContainerMetricsConfig (ContainerDefinition, and an inference component's container) so the
contract is written down where the model is defined, and a path moved with
``SERVE_METRICS_PATH`` in the container's environment is the one named (``SERVE_METRICS=0``:
none is named, there is nothing to scrape).  The HF DLC's path is chosen by
SageMaker itself ("for Deep Learning Containers the endpoint path is determined
automatically"), so for the DLC no ContainerMetricsConfig is sent.

Serverless endpoints get no MetricsConfig: AWS documents enhanced metrics and detailed
observability for real-time endpoints on instances (single-model and inference components)
only, and a serverless endpoint has no instance or container to report on.
"""

from __future__ import annotations

from deploy.errors import UserError
from reranker.envconfig import FALSE

METRICS_PATH = "/metrics"
# MetricPublishFrequencyInSeconds: the values the API accepts.
FREQUENCIES = (10, 30, 60, 120, 180, 240, 300)
DEFAULT_FREQUENCY = 60


def check_frequency(seconds: int, spelled: str = "metrics_frequency") -> None:
    if seconds not in FREQUENCIES:
        raise UserError(f"{spelled} must be one of {', '.join(map(str, FREQUENCIES))} seconds,"
                        f" not {seconds}")


def endpoint_metrics(frequency: int = DEFAULT_FREQUENCY, *, serverless: bool = False
                     ) -> dict:
    """CreateEndpointConfig's extra arguments: {"MetricsConfig": ...}, or {} for serverless."""
    check_frequency(frequency)
    if serverless:
        return {}
    return {"MetricsConfig": {"EnableEnhancedMetrics": True,
                              "EnableDetailedObservability": True,
                              "MetricPublishFrequencyInSeconds": frequency}}


def container_metrics(our_image: bool, frequency: int = DEFAULT_FREQUENCY,
                      env: dict | None = None) -> dict:
    """A container definition's extra keys: our image's Prometheus endpoint, where its
    environment ``env`` puts it; nothing for the DLC (SageMaker knows its path), nor when
    the environment turns the metrics off."""
    check_frequency(frequency)
    env = env or {}
    if not our_image or str(env.get("SERVE_METRICS", "")).strip().lower() in FALSE:
        return {}
    path = env.get("SERVE_METRICS_PATH") or METRICS_PATH
    return {"ContainerMetricsConfig": {"MetricsEndpoints": [
        {"MetricsEndpointPath": path, "MetricPublishFrequencyInSeconds": frequency}]}}
