"""``status``: an endpoint's state, model, image, capacity and autoscaling, and what the
model serves (its reranker.json: model id, max_length, prompt), one per line;
for an endpoint that hosts inference components, one line per component (and with
``--component`` that component's model, image and autoscaling)."""

from __future__ import annotations

from botocore.exceptions import BotoCoreError, ClientError

from deploy import config as cfg
from deploy.errors import UserError
from deploy.sagemaker import (
    autoscaling,
    capture,
    component_scaling,
    components,
    guardrails,
    resources,
    served_manifest,
)
from deploy.sagemaker.aws import Aws, error_code, translate_errors


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
    hosting = components.hosts_components(sm, current)
    if config.component and not hosting:
        raise UserError(f"endpoint {config.endpoint} serves a model directly; it has no"
                        f" inference component {config.component}")
    for variant in resources.config_variants(sm, current["EndpointConfigName"]):
        rows += (_component_variant_rows(variant) if hosting
                 else _variant_rows(aws, sm, variant))
    for v in current.get("ProductionVariants") or []:
        if "CurrentInstanceCount" in v:
            rows.append(("instances", f"{v['CurrentInstanceCount']} running"))
    if hosting:
        rows += components.status_rows(sm, config.endpoint)
        if config.component:
            rows += _component_rows(aws, sm, config.component)
    else:
        rows.append(("autoscaling", _scaling_words(aws, config.endpoint)))
        rows += _rollback_rows(aws, config.endpoint)
        rows += capture.status_rows(current)
    for key, value in rows:
        print(f"{key:<12} {value}")
    return 0 if current["EndpointStatus"] == "InService" else 1


def _scaling_words(aws, endpoint: str) -> str:
    try:
        target = autoscaling.scaling_of(aws, endpoint)
    except autoscaling.Unreadable as exc:
        return f"unreadable ({exc})"
    if not target:
        return "off"
    tracking = autoscaling.tracking_of(aws, endpoint)
    bounds = f"{target['MinCapacity']}..{target['MaxCapacity']} instances"
    return f"{bounds}, {tracking}" if tracking else bounds


def _rollback_rows(aws, endpoint: str) -> list[tuple[str, str]]:
    """Our rollback alarms and their state (ALARM during an update means a rollback); a
    status without CloudWatch rights says so instead of failing."""
    try:
        states = guardrails.alarm_states(aws, endpoint)
    except (ClientError, BotoCoreError) as exc:
        return [("rollback", f"alarms unreadable ({error_code(exc)})")]
    return [("rollback", ", ".join(f"{name} {state}" for name, state in states.items()))
            ] if states else []


def _variant_rows(aws, sm, variant: dict) -> list[tuple[str, str]]:
    container = resources.model_of(sm, variant["ModelName"]).get("PrimaryContainer", {})
    data = resources.model_data_of(container)
    return [("model", variant["ModelName"]), ("capacity", _capacity(variant)),
            ("image", container.get("Image")), ("model data", data),
            *served_manifest.rows(aws, data)]


def _capacity(variant: dict) -> str:
    serverless = variant.get("ServerlessConfig")
    if serverless:
        return (f"serverless {serverless['MemorySizeInMB']} MB, max"
                f" {serverless['MaxConcurrency']} concurrent")
    host = variant.get("InferenceAmiVersion")
    return (f"{variant.get('InitialInstanceCount')} x {variant.get('InstanceType')}"
            f"{' on ' + host if host else ''}")


def _component_variant_rows(variant: dict) -> list[tuple[str, str]]:
    scaling = variant.get("ManagedInstanceScaling") or {}
    span = (f", {scaling.get('MinInstanceCount')}..{scaling.get('MaxInstanceCount')}"
            " instances" if scaling.get("Status") == "ENABLED" else "")
    return [("capacity", f"inference components on {variant.get('InstanceType')}{span}")]


def _component_rows(aws, sm, component: str) -> list[tuple[str, str]]:
    found = components.describe_component(sm, component)
    if not found:
        raise UserError(f"inference component {component} does not exist")
    model = found.get("Specification", {}).get("ModelName")
    container = resources.model_of(sm, model).get("PrimaryContainer", {}) if model else {}
    data = resources.model_data_of(container)
    return [("image", container.get("Image")), ("model data", data),
            *served_manifest.rows(aws, data),
            ("autoscaling", _component_scaling_words(aws, component)),
            *_rollback_rows(aws, guardrails.component_owner(component))]


def _component_scaling_words(aws, component: str) -> str:
    try:
        target = component_scaling.scaling_of(aws, component)
    except (ClientError, BotoCoreError) as exc:  # an identity without autoscaling rights
        return f"unreadable ({error_code(exc)})"
    return f"{target['MinCapacity']}..{target['MaxCapacity']} copies" if target else "off"
