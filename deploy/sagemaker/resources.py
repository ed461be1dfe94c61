"""SageMaker resources one at a time: describe, create, list ours, delete.

Creating and deleting go through here so that every failure can name what exists
(``inventory``) and nothing half-made is left behind without saying so.  What is "ours" is
decided by the ``reranker-endpoint`` tag and by what endpoints reference, never by a name
alone: names are cut to 40 characters (names.base), so two endpoints can share them.
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
                 region: str, *, metrics: bool = False, component: str | None = None) -> None:
    """CreateModel; ``component``: the inference component it is made for, tagged."""
    request = model_request(config, name, image, model_data, isolated, region, metrics=metrics)
    if component:
        request["Tags"] = [*request["Tags"], {"Key": names.COMPONENT_TAG, "Value": component}]
    sm.create_model(**request)


def model_request(config, name: str | None, image: str, model_data: str, isolated: bool,
                  region: str, *, metrics: bool = False) -> dict:
    """CreateModel's arguments (a CloudFormation template's too); ``metrics``: name our
    image's Prometheus endpoint (an endpoint's model, not a job's)."""
    scrape = (metrics_config.container_metrics(bool(config.image), config.metrics_frequency,
                                               config.env) if metrics else {})
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


def model_data_uris(description: dict) -> set[str]:
    """Every model data a described model's containers run."""
    containers = [description.get("PrimaryContainer") or {}, *description.get("Containers", [])]
    return {uri for uri in map(model_data_of, containers) if uri}


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


def inventory(sm, endpoint: str, made: list[str], updating: bool = False) -> str:
    """One line naming what exists now, so nothing is left behind silently; an update's
    leftovers are pruned by the next update, never by deleting the endpoint that serves."""
    current = describe(sm, endpoint)
    state = (f"endpoint {endpoint} is {current['EndpointStatus']} on"
             f" {current['EndpointConfigName']}" if current
             else f"endpoint {endpoint} does not exist")
    made_text = f"; created by this run: {', '.join(made)}" if made else ""
    if updating and current:
        return (f"{state}{made_text}; the next successful `make deploy ENDPOINT={endpoint}`"
                " prunes them (`make delete` would delete the endpoint too)")
    return f"{state}{made_text}; `make delete ENDPOINT={endpoint}` removes them all"


LISTED = {
    "list_endpoint_configs": ("EndpointConfigs", "EndpointConfigName", "EndpointConfigArn"),
    "list_models": ("Models", "ModelName", "ModelArn"),
}


def named(sm, operation: str, prefix: str, *patterns) -> dict[str, str]:
    """{name: ARN} of the configs or models named like ``patterns``: the tool made them for
    some endpoint with this name prefix, not necessarily this one (``claim`` decides)."""
    key, field, arn = LISTED[operation]
    found = {}
    for page in sm.get_paginator(operation).paginate(NameContains=prefix):
        found.update({item[field]: item[arn] for item in page.get(key, [])
                      if any(p.match(item[field]) for p in patterns)})
    return found


def tags_of(sm, arn: str) -> dict[str, str] | None:
    """A resource's tags; None when it was deleted since it was listed."""
    tags = {}
    try:
        for page in sm.get_paginator("list_tags").paginate(ResourceArn=arn):
            tags.update({t["Key"]: t["Value"] for t in page.get("Tags", [])})
    except ClientError as exc:
        if is_missing(exc):
            return None
        raise UserError(f"ListTags {arn}: {error_code(exc)}: {error_message(exc)}") from None
    return tags


def served_configs(description: dict | None) -> set[str]:
    """The endpoint configs an endpoint uses: its own, and the one an update moves it to."""
    if not description:
        return set()
    pending = (description.get("PendingDeploymentSummary") or {}).get("EndpointConfigName")
    return {description["EndpointConfigName"], *([pending] if pending else [])}


def models_in(sm, config: str) -> set[str]:
    """The models an endpoint config's variants, shadow ones too, serve."""
    return {v["ModelName"] for v in variants_of(sm, config) if v.get("ModelName")}


def variants_of(sm, config: str) -> list[dict]:
    """An endpoint config's variants, shadow ones too; none when it is gone."""
    described = described_config(sm, config) or {}
    return described.get("ProductionVariants", []) + described.get("ShadowProductionVariants", [])


def described_config(sm, name: str) -> dict | None:
    return described(sm.describe_endpoint_config, "DescribeEndpointConfig", name,
                     EndpointConfigName=name)


class Rivals:
    """The other endpoints whose names cut to ``names.base`` are this one's: what the tool
    made for them is named like what it made for this one.  Looked up only when needed."""

    def __init__(self, sm, endpoint: str):
        self.sm, self.endpoint = sm, endpoint
        self._names: list[str] | None = None
        self._serving: dict[str, str] | None = None

    def endpoints(self) -> list[str]:
        if self._names is None:
            cut = names.base(self.endpoint)
            pages = self.sm.get_paginator("list_endpoints").paginate(NameContains=cut)
            self._names = sorted(e["EndpointName"] for page in pages
                                 for e in page.get("Endpoints", [])
                                 if e["EndpointName"] != self.endpoint
                                 and names.base(e["EndpointName"]) == cut)
        return self._names

    def serving(self) -> dict[str, str]:
        """{endpoint config or model: the rival endpoint that serves it}."""
        if self._serving is None:
            self._serving = {}
            for rival in self.endpoints():
                for config in served_configs(describe(self.sm, rival)):
                    self._serving[config] = rival
                    self._serving.update(dict.fromkeys(models_in(self.sm, config), rival))
        return self._serving


def claim(sm, found: dict[str, str], endpoint: str, rivals: Rivals, what: str
          ) -> tuple[set[str], dict[str, str]]:
    """Which of ``found`` (named like ours) the tool made for ``endpoint``: those tagged for
    it, and untagged ones (made before it tagged) only while no rival is named alike.  The
    others are kept: {"<what> <name>": "kept (why)"}."""
    ours, kept = set(), {}
    for name, arn in sorted(found.items()):
        tags = tags_of(sm, arn)
        if tags is None:
            continue
        owner = tags.get(names.TAG)
        if owner == endpoint or (owner is None and not rivals.endpoints()):
            ours.add(name)
        elif owner:
            kept[f"{what} {name}"] = f"kept (tagged for endpoint {owner})"
        else:
            rival = rivals.endpoints()[0]
            kept[f"{what} {name}"] = (f"kept (untagged, and endpoint {rival} has the same"
                                      " 40-character name prefix)")
    return ours, kept


def endpoint_resources(sm, endpoint: str, current: dict | None, *model_patterns
                       ) -> tuple[set[str], set[str], dict[str, str]]:
    """The endpoint configs the tool made for ``endpoint`` (the ones it serves, those tagged
    for it) and, given ``model_patterns`` (names.ours, names.batch_models), its models
    (those tagged for it, those its configs name); and what is named like them but kept,
    with why.  Nothing a rival endpoint serves is ever ours."""
    cut, rivals = names.base(endpoint), Rivals(sm, endpoint)
    found = {"endpoint config": named(sm, "list_endpoint_configs", cut, names.ours(endpoint)),
             "model": named(sm, "list_models", cut, *model_patterns) if model_patterns else {}}
    configs, kept = claim(sm, found["endpoint config"], endpoint, rivals, "endpoint config")
    configs |= served_configs(current)
    models, kept_models = claim(sm, found["model"], endpoint, rivals, "model")
    if model_patterns:
        models |= {model for config in configs for model in models_in(sm, config)}
    kept.update(kept_models)
    for label in [f"endpoint config {c}" for c in configs] + [f"model {m}" for m in models]:
        kept.pop(label, None)  # what the endpoint serves is its own, tagged or not
    if any(found.values()):  # names matched: a rival may share them
        _spare(rivals.serving(), configs, "endpoint config", kept)
        _spare(rivals.serving(), models, "model", kept)
    return configs, models, kept


def _spare(serving: dict[str, str], group: set[str], what: str, kept: dict) -> None:
    for name in sorted(group & serving.keys()):
        group.discard(name)
        kept[f"{what} {name}"] = f"kept (endpoint {serving[name]} serves it)"


def made_for_components(variants: list[dict]) -> bool:
    """An endpoint config for inference components: its variants name an instance type but
    no model."""
    return bool(variants) and all("ModelName" not in v for v in variants)


def config_variants(sm, name: str) -> list[dict]:
    return endpoint_config(sm, name)["ProductionVariants"]


def endpoint_config(sm, name: str) -> dict:
    """DescribeEndpointConfig; one without variants when it is gone."""
    try:
        return sm.describe_endpoint_config(EndpointConfigName=name)
    except ClientError as exc:
        if is_missing(exc):
            return {"ProductionVariants": []}
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
