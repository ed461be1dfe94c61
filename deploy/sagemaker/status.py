"""``status``: an endpoint's state, model, image, capacity and autoscaling, one per line."""

from __future__ import annotations

from deploy import config as cfg
from deploy.errors import UserError
from deploy.sagemaker import autoscaling, resources
from deploy.sagemaker.aws import Aws, translate_errors


@translate_errors
def run_status(args) -> int:
    config = cfg.load(args)
    aws = Aws(config)
    sm = aws.client("sagemaker")
    current = resources.describe(sm, config.endpoint)
    if not current:
        raise UserError(f"endpoint {config.endpoint} does not exist in {aws.region}")
    rows = [("endpoint", config.endpoint), ("status", current["EndpointStatus"])]
    if current.get("FailureReason"):
        rows.append(("failure", current["FailureReason"]))
    rows.append(("config", current["EndpointConfigName"]))
    for variant in resources.config_variants(sm, current["EndpointConfigName"]):
        rows += _variant_rows(sm, variant)
    for v in current.get("ProductionVariants") or []:
        if "CurrentInstanceCount" in v:
            rows.append(("instances", f"{v['CurrentInstanceCount']} running"))
    target = autoscaling.scaling_of(aws, config.endpoint)
    rows.append(("autoscaling", f"{target['MinCapacity']}..{target['MaxCapacity']}" if target
                 else "off"))
    for key, value in rows:
        print(f"{key:<12} {value}")
    return 0 if current["EndpointStatus"] == "InService" else 1


def _variant_rows(sm, variant: dict) -> list[tuple[str, str]]:
    serverless = variant.get("ServerlessConfig")
    capacity = (f"serverless {serverless['MemorySizeInMB']} MB, max"
                f" {serverless['MaxConcurrency']} concurrent" if serverless else
                f"{variant.get('InitialInstanceCount')} x {variant.get('InstanceType')}")
    container = resources.model_of(sm, variant["ModelName"]).get("PrimaryContainer", {})
    return [("model", variant["ModelName"]), ("capacity", capacity),
            ("image", container.get("Image")), ("model data", container.get("ModelDataUrl"))]
