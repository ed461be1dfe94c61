"""``deploy``, ``status``, ``delete``: a SageMaker endpoint for the packaged reranker.

Every deploy creates a new model and a new endpoint config (named ``<endpoint>-<UTC time>-
<hash>``) and then creates the endpoint or moves it to the new config with UpdateEndpoint, so
the old instances serve until the new ones are InService (no downtime).  Failures name
the resources that exist; nothing half-made is left behind without saying so.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from pathlib import Path

from botocore.exceptions import BotoCoreError, ClientError

from deploy import archive, iam, images
from deploy import config as cfg
from deploy.aws import Aws, error_code, error_message, is_missing, translate_errors
from deploy.errors import UserError

VARIANT = "AllTraffic"
DIMENSION = "sagemaker:variant:DesiredInstanceCount"
TAG = "reranker-endpoint"
SETTLING = ("Creating", "Updating", "SystemUpdating", "RollingBack")
BROKEN = ("Failed", "OutOfService", "UpdateRollbackFailed", "Deleting")
_DEPLOY_FIELDS = tuple(n for n in cfg.FIELDS if n not in ("endpoint_url", "s3_endpoint_url")) + (
    "endpoint_url", "s3_endpoint_url")
_AWS_FIELDS = ("endpoint", "region", "profile", "endpoint_url", "s3_endpoint_url")


class EndpointFailed(UserError):
    pass


def register(subparsers) -> None:
    p = subparsers.add_parser("deploy", help="create or update the SageMaker endpoint",
                              description=__doc__.splitlines()[0])
    cfg.add_arguments(p, _DEPLOY_FIELDS)
    cfg.add_env_argument(p)
    p.add_argument("--no-wait", dest="wait", action="store_false",
                   help="return once the request is accepted")
    p.add_argument("--print-role-policy", action="store_true",
                   help="print the execution role's least-privilege policy and exit")
    p.add_argument("--print-trust-policy", action="store_true",
                   help="print the execution role's trust policy and exit")
    p.set_defaults(func=run_deploy)

    s = subparsers.add_parser("status", help="show the endpoint, its model and autoscaling")
    cfg.add_arguments(s, _AWS_FIELDS)
    s.set_defaults(func=run_status)

    d = subparsers.add_parser("delete", help="remove endpoint, endpoint configs and models")
    cfg.add_arguments(d, _AWS_FIELDS)
    d.add_argument("--purge", action="store_true", help="also delete the model archives in S3")
    d.set_defaults(func=run_delete)


# ---------------------------------------------------------------- deploy


@translate_errors
def run_deploy(args) -> int:
    config = cfg.load(args, container=True)
    if args.print_trust_policy:
        print(json.dumps(iam.TRUST_POLICY, indent=2))
        return 0
    if args.print_role_policy:
        region = config.region or Aws(config).region
        print(json.dumps(iam.role_policy(config, region, resolve_image(config, region)),
                         indent=2))
        return 0
    if not config.role:
        raise UserError("set ROLE to the SageMaker execution role ARN (`python -m deploy deploy"
                        " --print-role-policy` prints the policy it needs)")
    aws = Aws(config)
    deploy(aws, config, wait=args.wait)
    return 0


def resolve_image(config: cfg.DeployConfig, region: str) -> str:
    if config.image:
        return config.image
    return images.dlc_image(region, config.instance_type,
                            serverless=config.mode == "serverless",
                            transformers_version=config.transformers_version,
                            pytorch_version=config.pytorch_version,
                            py_version=config.py_version)


def deploy(aws: Aws, config: cfg.DeployConfig, *, wait: bool = True) -> dict:
    """Create or update; returns the final DescribeEndpoint (or the accepted request)."""
    sm = aws.client("sagemaker")
    current = describe(sm, config.endpoint)
    check_updatable(config.endpoint, current)
    model_data, isolation = model_data_for(aws, config)
    image = resolve_image(config, aws.region)
    names = new_names(config, model_data, image)
    made = create_resources(sm, config, names, image, model_data, isolation, aws.region, current)
    saved = point_endpoint(aws, config, names, current, made)
    if not wait:
        if config.max_capacity:
            print("autoscaling is configured after InService: without waiting it is not;"
                  " run `make deploy` again once `make status` says InService")
        return {"EndpointName": config.endpoint, "EndpointConfigName": names["config"]}
    try:
        final = wait_in_service(sm, config.endpoint, names["config"], config.wait_timeout,
                                config.poll_seconds)
        configure_autoscaling(aws, config)
    except (ClientError, BotoCoreError) as exc:
        raise UserError(f"{error_code(exc)}: {error_message(exc)};"
                        f" {inventory(sm, config, made)}") from None
    except EndpointFailed as exc:
        restore_autoscaling(aws, saved)  # a rolled-back update serves the old config again
        raise EndpointFailed(f"{exc}; {inventory(sm, config, made)}") from None
    if current:
        prune(sm, config.endpoint, keep={names["config"], current["EndpointConfigName"]})
    print(f"{config.endpoint} is InService ({config.mode}, {image})")
    return final


def check_updatable(endpoint: str, current: dict | None) -> None:
    if current and current["EndpointStatus"] in SETTLING + ("Deleting",):
        raise UserError(f"endpoint {endpoint} is {current['EndpointStatus']}; wait until it"
                        " settles (`make status`) and deploy again")
    if current and current["EndpointStatus"] == "Failed":
        raise UserError(f"endpoint {endpoint} is Failed"
                        f" ({current.get('FailureReason', 'no reason given')}); a failed endpoint"
                        " cannot be updated: `make delete` it, then deploy again")


def create_resources(sm, config, names, image, model_data, isolation, region, current
                     ) -> list[str]:
    """This run's model and endpoint config; on failure neither is left behind."""
    made: list[str] = []
    try:
        create_model(sm, config, names["model"], image, model_data, isolation, region)
        made.append(f"model {names['model']}")
        create_endpoint_config(sm, config, names, current)
        made.append(f"endpoint config {names['config']}")
    except (ClientError, BotoCoreError) as exc:
        cleanup(sm, names, made)
        raise UserError(f"{error_code(exc)}: {error_message(exc)} (nothing was left behind)"
                        ) from None
    return made


def point_endpoint(aws: Aws, config, names: dict, current, made: list[str]) -> dict | None:
    """CreateEndpoint, or UpdateEndpoint to the new config; returns the autoscaling it lifted."""
    sm = aws.client("sagemaker")
    saved = None
    try:
        if current:
            # AWS asks to deregister a scaling target before updating its endpoint.
            saved = remove_autoscaling(aws, config.endpoint)
            sm.update_endpoint(EndpointName=config.endpoint, EndpointConfigName=names["config"])
            print(f"updating {config.endpoint} to {names['config']} (old instances keep serving)")
        else:
            sm.create_endpoint(EndpointName=config.endpoint, EndpointConfigName=names["config"],
                               Tags=[{"Key": TAG, "Value": config.endpoint}])
            print(f"creating {config.endpoint} with {names['config']}")
    except (ClientError, BotoCoreError) as exc:
        restore_autoscaling(aws, saved)
        action = "UpdateEndpoint" if current else "CreateEndpoint"
        where = inventory(sm, config, made)
        raise UserError(f"{action} failed: {error_code(exc)}: {error_message(exc)}; {where}"
                        ) from None
    return saved


def model_data_for(aws: Aws, config: cfg.DeployConfig) -> tuple[str, bool]:
    """The archive's S3 URI (uploading it if needed), and whether network isolation fits."""
    if config.model_data:
        return config.model_data, bool(config.network_isolation)
    from deploy.upload import upload

    path = Path(config.archive)
    uri = upload(aws, path)
    requirements = (archive.read_member(path, "code/requirements.txt") or b"").decode()
    needs_pypi = any(line.strip() and not line.lstrip().startswith("#")
                     for line in requirements.splitlines())
    if needs_pypi and config.network_isolation:
        print("code/requirements.txt lists packages the DLC must pip-install: deploying"
              " without network isolation")
    return uri, bool(config.network_isolation) and not needs_pypi


def new_names(config: cfg.DeployConfig, model_data: str, image: str) -> dict:
    """<endpoint>-<UTC yyyymmdd-hhmmss>-<hash of what is deployed>, at most 63 characters."""
    spec = json.dumps([model_data, image, config.mode, config.instance_type,
                       config.instance_count, config.memory_mb, config.max_concurrency,
                       sorted(config.env.items()), time.time_ns()])
    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime())
    digest = hashlib.sha256(spec.encode()).hexdigest()[:6]
    name = f"{config.endpoint[:40].rstrip('-')}-{stamp}-{digest}"
    return {"model": name, "config": name}


def ours(endpoint: str) -> re.Pattern:
    return re.compile(rf"^{re.escape(endpoint[:40].rstrip('-'))}-\d{{8}}-\d{{6}}-[0-9a-f]{{6}}$")


def container_env(config: cfg.DeployConfig, region: str) -> dict:
    env = {
        # The HF DLC's toolkit imports code/<SAGEMAKER_PROGRAM> from the unpacked model.
        "SAGEMAKER_PROGRAM": "inference.py",
        "SAGEMAKER_SUBMIT_DIRECTORY": "/opt/ml/model/code",
        "SAGEMAKER_CONTAINER_LOG_LEVEL": "20",
        "SAGEMAKER_REGION": region,
        # Everything is in the archive; never reach the hub from the endpoint.
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
    }
    env.update(config.env)
    return env


def create_model(sm, config, name: str, image: str, model_data: str, isolation: bool,
                 region: str) -> None:
    sm.create_model(
        ModelName=name,
        PrimaryContainer={"Image": image, "ModelDataUrl": model_data,
                          "Environment": container_env(config, region)},
        ExecutionRoleArn=config.role,
        EnableNetworkIsolation=isolation,
        Tags=[{"Key": TAG, "Value": config.endpoint}],
    )


def production_variant(config: cfg.DeployConfig, model: str, current: dict | None) -> dict:
    variant = {"VariantName": VARIANT, "ModelName": model}
    if config.mode == "serverless":
        variant["ServerlessConfig"] = {"MemorySizeInMB": config.memory_mb,
                                       "MaxConcurrency": config.max_concurrency}
        return variant
    count = config.instance_count
    if current and config.max_capacity:
        # Keep the capacity autoscaling had reached, within the new bounds, during the update.
        running = max((v.get("CurrentInstanceCount") or 0)
                      for v in current.get("ProductionVariants") or [{}])
        low = config.min_capacity or config.instance_count
        count = min(max(running, low), config.max_capacity)
    variant.update({"InstanceType": config.instance_type, "InitialInstanceCount": count,
                    "InitialVariantWeight": 1.0,
                    # Large models: time to download the archive and load before health checks.
                    "ModelDataDownloadTimeoutInSeconds": 1800,
                    "ContainerStartupHealthCheckTimeoutInSeconds": 900})
    return variant


def create_endpoint_config(sm, config: cfg.DeployConfig, names: dict, current) -> None:
    kwargs = {"EndpointConfigName": names["config"],
              "ProductionVariants": [production_variant(config, names["model"], current)],
              "Tags": [{"Key": TAG, "Value": config.endpoint}]}
    if config.mode == "async":
        output = {"S3OutputPath": config.async_output}
        if config.async_failure:
            output["S3FailurePath"] = config.async_failure
        topics = {k: v for k, v in (("SuccessTopic", config.sns_success),
                                    ("ErrorTopic", config.sns_error)) if v}
        if topics:
            output["NotificationConfig"] = topics
        kwargs["AsyncInferenceConfig"] = {
            "OutputConfig": output,
            "ClientConfig": {"MaxConcurrentInvocationsPerInstance":
                             config.async_max_invocations}}
    sm.create_endpoint_config(**kwargs)


def judge(description: dict, expected_config: str) -> bool:
    """True when done, False while settling; raises EndpointFailed with AWS's reason."""
    status = description["EndpointStatus"]
    reason = description.get("FailureReason") or "no reason given"
    if status in SETTLING:
        return False
    if status == "InService":
        if description.get("EndpointConfigName") != expected_config:
            raise EndpointFailed(f"the update to {expected_config} failed and SageMaker rolled"
                                 f" back to {description.get('EndpointConfigName')}: {reason}")
        return True
    raise EndpointFailed(f"endpoint {description.get('EndpointName')} is {status}: {reason}")


def wait_in_service(sm, endpoint: str, expected_config: str, timeout: float, poll: float
                    ) -> dict:
    from rich.console import Console

    started = time.monotonic()
    with Console(stderr=True).status(f"{endpoint}: waiting") as status:
        while True:
            description = sm.describe_endpoint(EndpointName=endpoint)
            elapsed = time.monotonic() - started
            status.update(f"{endpoint}: {description['EndpointStatus']}"
                          f" ({elapsed:.0f} s; usually 5-10 min)")
            if judge(description, expected_config):
                return description
            if elapsed > timeout:
                raise EndpointFailed(f"{endpoint} is still {description['EndpointStatus']}"
                                     f" after {timeout:.0f} s (`make status` shows progress)")
            time.sleep(poll)


def inventory(sm, config: cfg.DeployConfig, made: list[str]) -> str:
    """One line naming what exists now, so nothing is left behind silently."""
    current = describe(sm, config.endpoint)
    state = (f"endpoint {config.endpoint} is {current['EndpointStatus']} on"
             f" {current['EndpointConfigName']}" if current
             else f"endpoint {config.endpoint} does not exist")
    made_text = f"; created by this run: {', '.join(made)}" if made else ""
    return (f"{state}{made_text}; `make delete ENDPOINT={config.endpoint}` removes them all")


def cleanup(sm, names: dict, made: list[str]) -> None:
    """Before any endpoint points at them, this run's model/config can simply go."""
    if any(m.startswith("endpoint config") for m in made):
        _quietly(sm.delete_endpoint_config, EndpointConfigName=names["config"])
    if made:
        _quietly(sm.delete_model, ModelName=names["model"])


# ---------------------------------------------------------------- autoscaling


def resource_id(endpoint: str) -> str:
    return f"endpoint/{endpoint}/variant/{VARIANT}"


def configure_autoscaling(aws: Aws, config: cfg.DeployConfig) -> None:
    """Target tracking on invocations per instance (backlog per instance for async)."""
    if not config.max_capacity or config.mode == "serverless":
        return
    aas = aws.client("application-autoscaling")
    rid = resource_id(config.endpoint)
    low = config.min_capacity or config.instance_count
    aas.register_scalable_target(ServiceNamespace="sagemaker", ResourceId=rid,
                                 ScalableDimension=DIMENSION, MinCapacity=low,
                                 MaxCapacity=config.max_capacity)
    if config.mode == "async":
        metric = {"CustomizedMetricSpecification": {
            "MetricName": "ApproximateBacklogSizePerInstance", "Namespace": "AWS/SageMaker",
            "Dimensions": [{"Name": "EndpointName", "Value": config.endpoint}],
            "Statistic": "Average"}}
    else:
        metric = {"PredefinedMetricSpecification": {
            "PredefinedMetricType": "SageMakerVariantInvocationsPerInstance"}}
    aas.put_scaling_policy(
        PolicyName=f"{config.endpoint}-target-tracking", ServiceNamespace="sagemaker",
        ResourceId=rid, ScalableDimension=DIMENSION, PolicyType="TargetTrackingScaling",
        TargetTrackingScalingPolicyConfiguration={
            "TargetValue": float(config.target_invocations),
            "ScaleInCooldown": config.scale_in_cooldown,
            "ScaleOutCooldown": config.scale_out_cooldown, **metric})
    print(f"autoscaling {low}..{config.max_capacity} instances, target"
          f" {config.target_invocations} per instance")


def scaling_of(aws: Aws, endpoint: str) -> dict | None:
    aas = aws.client("application-autoscaling")
    targets = aas.describe_scalable_targets(ServiceNamespace="sagemaker",
                                            ResourceIds=[resource_id(endpoint)],
                                            ScalableDimension=DIMENSION)["ScalableTargets"]
    return targets[0] if targets else None


def remove_autoscaling(aws: Aws, endpoint: str) -> dict | None:
    """Policies, then the target; returns what was there (for restore_autoscaling) or None."""
    target = scaling_of(aws, endpoint)
    if not target:
        return None
    aas = aws.client("application-autoscaling")
    rid = resource_id(endpoint)
    policies = aas.describe_scaling_policies(ServiceNamespace="sagemaker", ResourceId=rid,
                                             ScalableDimension=DIMENSION)["ScalingPolicies"]
    for policy in policies:
        _quietly(aas.delete_scaling_policy, PolicyName=policy["PolicyName"],
                 ServiceNamespace="sagemaker", ResourceId=rid, ScalableDimension=DIMENSION)
    _quietly(aas.deregister_scalable_target, ServiceNamespace="sagemaker", ResourceId=rid,
             ScalableDimension=DIMENSION)
    return {"target": target, "policies": policies}


def restore_autoscaling(aws: Aws, saved: dict | None) -> None:
    """Put back what remove_autoscaling took when the update it made room for failed."""
    if not saved:
        return
    aas = aws.client("application-autoscaling")
    target = saved["target"]
    keys = {"ServiceNamespace": "sagemaker", "ResourceId": target["ResourceId"],
            "ScalableDimension": DIMENSION}
    _quietly(aas.register_scalable_target, MinCapacity=target["MinCapacity"],
             MaxCapacity=target["MaxCapacity"], **keys)
    for policy in saved["policies"]:
        config = policy.get("TargetTrackingScalingPolicyConfiguration")
        if config:
            _quietly(aas.put_scaling_policy, PolicyName=policy["PolicyName"],
                     PolicyType="TargetTrackingScaling",
                     TargetTrackingScalingPolicyConfiguration=config, **keys)


# ---------------------------------------------------------------- status / delete


def describe(sm, endpoint: str) -> dict | None:
    try:
        return sm.describe_endpoint(EndpointName=endpoint)
    except ClientError as exc:
        if is_missing(exc):
            return None
        raise UserError(f"DescribeEndpoint {endpoint}: {error_code(exc)}:"
                        f" {error_message(exc)}") from None


@translate_errors
def run_status(args) -> int:
    config = cfg.load(args)
    aws = Aws(config)
    sm = aws.client("sagemaker")
    current = describe(sm, config.endpoint)
    if not current:
        raise UserError(f"endpoint {config.endpoint} does not exist in {aws.region}")
    rows = [("endpoint", config.endpoint), ("status", current["EndpointStatus"])]
    if current.get("FailureReason"):
        rows.append(("failure", current["FailureReason"]))
    rows.append(("config", current["EndpointConfigName"]))
    for variant in _config_variants(sm, current["EndpointConfigName"]):
        rows.append(("model", variant["ModelName"]))
        serverless = variant.get("ServerlessConfig")
        rows.append(("capacity", f"serverless {serverless['MemorySizeInMB']} MB, max"
                     f" {serverless['MaxConcurrency']} concurrent" if serverless else
                     f"{variant.get('InitialInstanceCount')} x {variant.get('InstanceType')}"))
        container = _model(sm, variant["ModelName"]).get("PrimaryContainer", {})
        rows += [("image", container.get("Image")), ("model data", container.get("ModelDataUrl"))]
    for v in current.get("ProductionVariants") or []:
        if "CurrentInstanceCount" in v:
            rows.append(("instances", f"{v['CurrentInstanceCount']} running"))
    target = scaling_of(aws, config.endpoint)
    rows.append(("autoscaling", f"{target['MinCapacity']}..{target['MaxCapacity']}" if target
                 else "off"))
    for key, value in rows:
        print(f"{key:<12} {value}")
    return 0 if current["EndpointStatus"] == "InService" else 1


@translate_errors
def run_delete(args) -> int:
    config = cfg.load(args)
    aws = Aws(config)
    sm = aws.client("sagemaker")
    current = describe(sm, config.endpoint)
    configs = set(_our_names(sm, "list_endpoint_configs", "EndpointConfigs",
                             "EndpointConfigName", config.endpoint))
    if current:
        configs.add(current["EndpointConfigName"])
    models = set(_our_names(sm, "list_models", "Models", "ModelName", config.endpoint))
    for name in configs:
        models.update(v["ModelName"] for v in _config_variants(sm, name))
    data = {_model(sm, m).get("PrimaryContainer", {}).get("ModelDataUrl") for m in models}
    results = []
    results.append(("autoscaling", "deleted" if remove_autoscaling(aws, config.endpoint)
                    else "none"))
    results.append((f"endpoint {config.endpoint}",
                    _delete(sm.delete_endpoint, EndpointName=config.endpoint)))
    for name in sorted(configs):
        results.append((f"endpoint config {name}",
                        _delete(sm.delete_endpoint_config, EndpointConfigName=name)))
    for name in sorted(models):
        results.append((f"model {name}", _delete(sm.delete_model, ModelName=name)))
    if args.purge:
        for uri in sorted(u for u in data if u and u.startswith("s3://")):
            bucket, _, key = uri[5:].partition("/")
            results.append((uri, _delete(aws.client("s3").delete_object, Bucket=bucket,
                                         Key=key)))
    for what, outcome in results:
        print(f"{outcome:<13} {what}")
    failed = [w for w, o in results if o.startswith("failed")]
    if failed:
        raise UserError(f"could not delete {', '.join(failed)}")
    return 0


def prune(sm, endpoint: str, keep: set[str]) -> None:
    """After a successful update: drop older configs/models of this endpoint (keep previous)."""
    keep_models = {v["ModelName"] for c in keep for v in _config_variants(sm, c)}
    for name in _our_names(sm, "list_endpoint_configs", "EndpointConfigs",
                           "EndpointConfigName", endpoint):
        if name not in keep:
            _quietly(sm.delete_endpoint_config, EndpointConfigName=name)
    for name in _our_names(sm, "list_models", "Models", "ModelName", endpoint):
        if name not in keep_models:
            _quietly(sm.delete_model, ModelName=name)


def _our_names(sm, operation: str, key: str, field: str, endpoint: str) -> list[str]:
    pattern = ours(endpoint)
    names = []
    paginator = sm.get_paginator(operation)
    for page in paginator.paginate(NameContains=endpoint[:40].rstrip("-")):
        names += [item[field] for item in page.get(key, []) if pattern.match(item[field])]
    return names


def _config_variants(sm, name: str) -> list[dict]:
    try:
        return sm.describe_endpoint_config(EndpointConfigName=name)["ProductionVariants"]
    except ClientError as exc:
        if is_missing(exc):
            return []
        raise


def _model(sm, name: str) -> dict:
    try:
        return sm.describe_model(ModelName=name)
    except ClientError as exc:
        if is_missing(exc):
            return {}
        raise


def _delete(call, **kwargs) -> str:
    try:
        call(**kwargs)
        return "deleted"
    except ClientError as exc:
        if is_missing(exc):
            return "already gone"
        return f"failed ({error_code(exc)}: {error_message(exc)})"


def _quietly(call, **kwargs) -> None:
    """Best-effort clean-up where the caller already reports the outcome."""
    try:
        call(**kwargs)
    except (ClientError, BotoCoreError):
        pass
