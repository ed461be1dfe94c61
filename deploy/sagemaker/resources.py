"""SageMaker resources one at a time: describe, create, list ours, delete.

Creating and deleting go through here so that every failure can name what exists
(``inventory``) and nothing half-made is left behind without saying so.
"""

from __future__ import annotations

from botocore.exceptions import BotoCoreError, ClientError

from deploy.errors import UserError
from deploy.sagemaker import capture, container_env, isolation, metrics_config, names
from deploy.sagemaker.aws import error_code, error_message, is_missing

VARIANT = "AllTraffic"


def describe(sm, endpoint: str) -> dict | None:
    return described(sm.describe_endpoint, "DescribeEndpoint", endpoint, EndpointName=endpoint)


def described(call, operation: str, name: str, **kwargs) -> dict | None:
    """``call``'s description, or None when the resource does not exist; any other error
    is one line naming ``operation`` and ``name``."""
    try:
        return call(**kwargs)
    except ClientError as exc:
        if is_missing(exc):
            return None
        raise UserError(f"{operation} {name}: {error_code(exc)}: {error_message(exc)}"
                        ) from None


def create_model(sm, config, name: str, image: str, model_data: str, isolated: bool,
                 region: str, *, metrics: bool = False) -> None:
    sm.create_model(**model_request(config, name, image, model_data, isolated, region,
                                    metrics=metrics))


def model_request(config, name: str | None, image: str, model_data: str, isolated: bool,
                  region: str, *, metrics: bool = False) -> dict:
    """CreateModel's arguments (a CloudFormation template's too); ``metrics``: name our
    image's Prometheus endpoint (an endpoint's model, not a job's)."""
    scrape = (metrics_config.container_metrics(bool(config.image), config.metrics_frequency)
              if metrics else {})
    return dict(
        ModelName=name,
        PrimaryContainer={"Image": image, **model_data_fields(model_data),
                          "Environment": container_env.complete(
                              config.env, region, config.deploy_mode.container_defaults()),
                          **scrape},
        ExecutionRoleArn=config.role,
        EnableNetworkIsolation=isolation.network_isolation(config, isolated),
        Tags=names.resource_tags(config),
        **isolation.vpc_config(config),
    )


def model_data_fields(uri: str) -> dict:
    """A container's model data: a prefix (ending in /) of uncompressed files, or a
    model.tar.gz."""
    if uri.endswith("/"):
        return {"ModelDataSource": {"S3DataSource": {
            "S3Uri": uri, "S3DataType": "S3Prefix", "CompressionType": "None"}}}
    return {"ModelDataUrl": uri}


def model_data_of(container: dict) -> str | None:
    """The model data a described container runs: its model.tar.gz or its prefix."""
    source = container.get("ModelDataSource", {}).get("S3DataSource", {})
    return container.get("ModelDataUrl") or source.get("S3Uri")


def create_endpoint_config(sm, config, name: str, model: str, current: dict | None) -> None:
    sm.create_endpoint_config(**endpoint_config_request(config, name, model, current))


def endpoint_config_request(config, name: str | None, model, current: dict | None) -> dict:
    """CreateEndpointConfig's arguments (a CloudFormation template's too)."""
    mode = config.deploy_mode
    return dict(
        EndpointConfigName=name,
        ProductionVariants=[{"VariantName": VARIANT, **mode.variant(config, model, current)}],
        Tags=names.resource_tags(config), **mode.extra_config(config),
        **isolation.volume_key(config), **capture.endpoint_config(config),
        **(metrics_config.endpoint_metrics(config.metrics_frequency)
           if mode.detailed_metrics else {}))


def inventory(sm, endpoint: str, made: list[str]) -> str:
    """One line naming what exists now, so nothing is left behind silently."""
    current = describe(sm, endpoint)
    state = (f"endpoint {endpoint} is {current['EndpointStatus']} on"
             f" {current['EndpointConfigName']}" if current
             else f"endpoint {endpoint} does not exist")
    made_text = f"; created by this run: {', '.join(made)}" if made else ""
    return f"{state}{made_text}; `make delete ENDPOINT={endpoint}` removes them all"


def our_names(sm, operation: str, key: str, field: str, endpoint: str,
              pattern=None) -> list[str]:
    """Names this tool made for ``endpoint`` (``names.ours`` unless ``pattern``)."""
    pattern = pattern or names.ours(endpoint)
    found = []
    for page in sm.get_paginator(operation).paginate(NameContains=names.base(endpoint)):
        found += [item[field] for item in page.get(key, []) if pattern.match(item[field])]
    return found


def config_variants(sm, name: str) -> list[dict]:
    try:
        return sm.describe_endpoint_config(EndpointConfigName=name)["ProductionVariants"]
    except ClientError as exc:
        if is_missing(exc):
            return []
        raise


def model_of(sm, name: str) -> dict:
    try:
        return sm.describe_model(ModelName=name)
    except ClientError as exc:
        if is_missing(exc):
            return {}
        raise


def delete(call, **kwargs) -> str:
    """"deleted", "already gone" or "failed (...)": for a line of the delete report."""
    try:
        call(**kwargs)
        return "deleted"
    except ClientError as exc:
        if is_missing(exc):
            return "already gone"
        return f"failed ({error_code(exc)}: {error_message(exc)})"


def quietly(call, **kwargs) -> None:
    """Best-effort clean-up where the caller already reports the outcome."""
    try:
        call(**kwargs)
    except (ClientError, BotoCoreError):
        pass
