"""Creating or updating an endpoint without downtime.

Every deploy creates a new model and a new endpoint config (named ``<endpoint>-<UTC time>-
<hash>``) and then creates the endpoint or moves it to the new config with UpdateEndpoint, so
the old instances serve until the new ones are InService; a guarded update
(deploy.sagemaker.guardrails) shifts traffic in baked steps and rolls back on alarms.
Failures name the resources that exist; nothing half-made is left behind without saying so.
"""

from __future__ import annotations

import sys

from botocore.exceptions import BotoCoreError, ClientError

from deploy.errors import UserError
from deploy.sagemaker import autoscaling, guardrails, names, resources
from deploy.sagemaker.aws import Aws, error_code, error_message
from deploy.sagemaker.model_source import model_data_for, resolve_image
from deploy.sagemaker.waiter import SETTLING, WaitFailed, wait_in_service


def deploy(aws: Aws, config, *, wait: bool = True) -> dict:
    """Create or update; returns the final DescribeEndpoint (or the accepted request)."""
    sm = aws.client("sagemaker")
    current = resources.describe(sm, config.endpoint)
    check_updatable(config.endpoint, current)
    check_kind(sm, config, current)
    guard = _guard(aws, config) if current else {}
    model_data, isolation = model_data_for(aws, config)
    image = resolve_image(config, aws.region)
    name = names.stamped(config.endpoint, model_data, image, config.mode,
                         config.instance_type, config.instance_count, config.memory_mb,
                         config.max_concurrency, config.provisioned_concurrency,
                         sorted(config.env.items()))
    made = create_resources(sm, config, name, image, model_data, isolation, aws.region,
                            current, alarms=_our_alarms(config) if guard else [])
    saved = point_endpoint(aws, config, name, current, made, guard)
    if not wait:
        if config.max_capacity:
            print("autoscaling is configured after InService: without waiting it is not;"
                  " run `make deploy` again once `make status` says InService")
        return {"EndpointName": config.endpoint, "EndpointConfigName": name}
    try:
        # A guarded update bakes on top of starting the instances.
        timeout = config.wait_timeout + (guardrails.rollout_seconds(config) if current else 0)
        final = wait_in_service(sm, config.endpoint, name, timeout, config.poll_seconds)
        autoscaling.configure(aws, config)
    except (ClientError, BotoCoreError) as exc:
        raise UserError(f"{error_code(exc)}: {error_message(exc)};"
                        f" {resources.inventory(sm, config.endpoint, made)}") from None
    except WaitFailed as exc:
        # A rolled-back update serves the old config again, with its autoscaling.
        note = autoscaling.restore(aws, saved)
        where = resources.inventory(sm, config.endpoint, made, updating=bool(current))
        raise WaitFailed(f"{exc}; {where}{note}") from None
    except KeyboardInterrupt:
        if saved:  # the update goes on without us: say what it took off
            print(f"note: {autoscaling.lifted(saved)}", file=sys.stderr)
        raise
    if current:
        prune(sm, config.endpoint, keep={name, current["EndpointConfigName"]})
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


def check_kind(sm, config, current: dict | None) -> None:
    """Refuses, before anything is made, an update SageMaker would refuse only after our
    model and config exist: an endpoint that hosts inference components takes components,
    and an update can neither add nor remove AsyncInferenceConfig."""
    if not current:
        return
    name = current["EndpointConfigName"]
    described = resources.described(sm.describe_endpoint_config, "DescribeEndpointConfig",
                                    name, EndpointConfigName=name) or {}
    endpoint, mode = config.endpoint, config.name("mode")
    if resources.made_for_components(described.get("ProductionVariants") or []):
        raise UserError(f"endpoint {endpoint} hosts inference components: deploy onto it with"
                        f" {mode}=component and a {config.name('component')}, or pick another"
                        f" {config.name('endpoint')}")
    # DescribeEndpoint says so too, where the config has been deleted by hand.
    was_async = "AsyncInferenceConfig" in described or "AsyncInferenceConfig" in current
    if was_async != (config.mode == "async"):
        kind = "an async" if was_async else "a real-time or serverless"
        raise UserError(f"endpoint {endpoint} is {kind} endpoint and SageMaker cannot update"
                        f" it to {mode}={config.mode}: pick another {config.name('endpoint')},"
                        f" or `make delete ENDPOINT={endpoint}` first")


def create_resources(sm, config, name, image, model_data, isolation, region, current,
                     alarms: list[str] = ()) -> list[str]:
    """This run's model and endpoint config (same name); on failure neither is left.  The
    list names what this run made for a failure report, first the rollback ``alarms`` it
    put (they stay: they are the endpoint's, and `make delete` removes them)."""
    made = [f"rollback alarms {', '.join(alarms)}"] if alarms else []
    try:
        resources.create_model(sm, config, name, image, model_data, isolation, region,
                               metrics=config.deploy_mode.detailed_metrics)
        made.append(f"model {name}")
        resources.create_endpoint_config(sm, config, name, name, current)
        made.append(f"endpoint config {name}")
    except (ClientError, BotoCoreError) as exc:
        if f"model {name}" in made:  # before any endpoint points at it, it can simply go
            resources.quietly(sm.delete_model, ModelName=name)
        left = (f"only the rollback alarms {', '.join(alarms)} were put" if alarms
                else "nothing was left behind")
        raise UserError(f"{error_code(exc)}: {error_message(exc)} ({left})") from None
    return made


def _our_alarms(config) -> list[str]:
    """The alarms a guarded update puts (not the user's ROLLBACK_ALARMS, which it only
    reads)."""
    return [request["AlarmName"] for request in guardrails.alarm_requests(config)]


def point_endpoint(aws: Aws, config, name: str, current, made: list[str],
                   guard: dict | None = None) -> dict | None:
    """CreateEndpoint, or UpdateEndpoint to the new config (with ``guard``'s
    DeploymentConfig); returns the autoscaling it lifted."""
    sm = aws.client("sagemaker")
    saved = None
    try:
        if current:
            # AWS asks to deregister a scaling target before updating its endpoint.
            saved = _lift_scaling(aws, config.endpoint)
            sm.update_endpoint(EndpointName=config.endpoint, EndpointConfigName=name,
                               **(guard or {}))
            print(f"updating {config.endpoint} to {name} (old instances keep serving"
                  + (f"; {guardrails.describe(config)})" if guard else ")"))
        else:
            sm.create_endpoint(EndpointName=config.endpoint, EndpointConfigName=name,
                               Tags=names.resource_tags(config))
            print(f"creating {config.endpoint} with {name}")
    except (ClientError, BotoCoreError) as exc:
        note = autoscaling.restore(aws, saved)
        action = "UpdateEndpoint" if current else "CreateEndpoint"
        where = resources.inventory(sm, config.endpoint, made, updating=bool(current))
        raise UserError(f"{action} failed: {error_code(exc)}: {error_message(exc)}; {where}"
                        f"{note}") from None
    return saved


def _lift_scaling(aws: Aws, endpoint: str) -> dict | None:
    """``autoscaling.remove``; an identity that may not read autoscaling goes on with a
    note (an endpoint that autoscales then has its update refused by SageMaker)."""
    try:
        return autoscaling.remove(aws, endpoint)
    except autoscaling.Unreadable as exc:
        print(f"note: the autoscaling of {endpoint} was not checked ({exc}); if it"
              " autoscales, SageMaker refuses the update until it is deregistered")
        return None


def _guard(aws: Aws, config) -> dict:
    """UpdateEndpoint's DeploymentConfig argument, its alarms put first (before anything
    else is created); {} when unguarded."""
    if not guardrails.guarded(config):
        return {}
    guardrails.put_alarms(aws, config)
    return {"DeploymentConfig": guardrails.deployment_config(config)}


def prune(sm, endpoint: str, keep: set[str]) -> None:
    """After a successful update: drop older configs/models of this endpoint (keep previous);
    only what resources.endpoint_resources says is this endpoint's, never a namesake's."""
    try:
        configs, models, _ = resources.endpoint_resources(sm, endpoint, None,
                                                          names.ours(endpoint))
        keep_models = {model for config in keep for model in resources.models_in(sm, config)}
    except (ClientError, BotoCoreError, UserError) as exc:
        # The update has succeeded: older configs and models are only clutter.
        print(f"older endpoint configs and models were not pruned ({exc})")
        return
    for name in configs - keep:
        resources.quietly(sm.delete_endpoint_config, EndpointConfigName=name)
    for name in models - keep_models:
        resources.quietly(sm.delete_model, ModelName=name)
