"""Guarded updates: SageMaker's blue/green and rolling deployments, with baking periods and
automatic rollback on CloudWatch alarms ("deployment guardrails").

A plain update starts a whole new fleet and shifts all traffic to it as soon as it passes
/ping. With ``BAKE_SECONDS`` (or ``ROLLOUT=canary|linear|rolling``), ``deploy`` sends
UpdateEndpoint a DeploymentConfig instead:

- ``all-at-once``: all traffic moves, then SageMaker watches the alarms for the bake time
  before it stops the old instances;
- ``canary``: ``ROLLOUT_STEP`` % of the capacity takes traffic first, for the bake time,
  then the rest;
- ``linear``: traffic moves in steps of ``ROLLOUT_STEP`` %, each baked;
- ``rolling``: ``ROLLOUT_STEP`` % of the instances are replaced at a time, each batch
  baked, old instances stopped as new ones take over: no second fleet, so an update of a
  GPU endpoint needs a batch of spare instances, not twice the endpoint.

If an alarm fires during any of it, SageMaker sends every request back to the old instances
and the update ends as a rollback, which ``deploy`` reports. The alarms are ours, made or
refreshed before the update: ``<endpoint>-rollback-errors`` (the endpoint's 5xx answers per
minute, ``ROLLBACK_ERRORS``) and, with ``ROLLBACK_P99_MS``, ``<endpoint>-rollback-latency``
(the model's p99 latency over two minutes), plus any alarms named in ``ROLLBACK_ALARMS``.
Both fleets report under the same variant, so the alarms see old and new instances alike.

An inference component is updated by UpdateInferenceComponent, whose default is blue/green
too: a whole second set of copies starts before traffic moves, so the endpoint needs room
for twice the copies. ``ROLLOUT=rolling`` replaces ``ROLLOUT_STEP`` % of the copies at a
time instead (SageMaker's RollingUpdatePolicy), each batch baked ``BAKE_SECONDS`` under the
same alarms, here on the component's own metrics (``<component>-component-rollback-*``).
"""

from __future__ import annotations

from botocore.exceptions import BotoCoreError, ClientError

from deploy.errors import UserError

# Blue/green traffic shifting modes, by their TrafficRoutingConfiguration type.
ROLLOUTS = {"all-at-once": "ALL_AT_ONCE", "canary": "CANARY", "linear": "LINEAR"}
ENDPOINT_ROLLOUTS = (*ROLLOUTS, "rolling")
COMPONENT_ROLLOUTS = ("all-at-once", "rolling")
LOWEST_STEP = {"canary": 1, "linear": 10, "rolling": 5}  # % of capacity; 50 the highest
DEFAULT_BAKE = 600          # seconds, for canary, linear and rolling when BAKE_SECONDS is unset
DEFAULT_STEP = {"canary": 10, "linear": 25, "rolling": 25}  # % of capacity (of copies)
# RollingUpdatePolicy.MaximumExecutionTimeoutInSeconds's range.
ROLLING_TIMEOUT = (600, 28800)
MAX_WAIT = 3600             # SageMaker's limit on WaitIntervalInSeconds and the final bake
MAX_ALARMS = 10             # AutoRollbackConfiguration.Alarms
NAMESPACE = "AWS/SageMaker"


def bake_seconds(config) -> int:
    if config.bake_seconds is not None:
        return config.bake_seconds
    return 0 if config.rollout == "all-at-once" else DEFAULT_BAKE


def step_percent(config) -> int | None:
    if config.rollout == "all-at-once":
        return None
    return config.rollout_step or DEFAULT_STEP[config.rollout]


def guarded(config) -> bool:
    """Whether an update goes through the guardrails: an endpoint's when it bakes, a
    component's when it rolls."""
    if config.deploy_mode.component:
        return config.rollout == "rolling"
    return bake_seconds(config) > 0


def validate(config) -> None:
    """AWS's limits and ours, named, before any AWS call."""
    name = config.name
    bake = bake_seconds(config)
    if config.deploy_mode.component:
        _validate_component(config, bake)
    elif config.rollout not in ENDPOINT_ROLLOUTS:
        raise UserError(f"{name('rollout')} must be one of {', '.join(ENDPOINT_ROLLOUTS)},"
                        f" not {config.rollout!r}")
    if not 0 <= bake <= MAX_WAIT:
        raise UserError(f"{name('bake_seconds')} must be 0..{MAX_WAIT}, not {bake}")
    if config.rollout in LOWEST_STEP and not config.deploy_mode.component:
        _validate_shifting(config, bake)
    if config.rollback_errors < 1:
        raise UserError(f"{name('rollback_errors')} must be at least 1")
    if config.rollback_p99_ms is not None and config.rollback_p99_ms <= 0:
        raise UserError(f"{name('rollback_p99_ms')} must be > 0")
    if guarded(config) and len(alarm_names(config)) > MAX_ALARMS:
        raise UserError(f"at most {MAX_ALARMS} rollback alarms, ours included;"
                        f" {name('rollback_alarms')} names too many")


def _validate_component(config, bake: int) -> None:
    name = config.name
    if config.rollout not in COMPONENT_ROLLOUTS:
        raise UserError(f"{name('rollout')} for an inference component must be one of"
                        f" {', '.join(COMPONENT_ROLLOUTS)}, not {config.rollout!r} (canary and"
                        " linear shift an endpoint's traffic)")
    if config.rollout == "all-at-once" and bake:
        raise UserError(f"an inference component's update is guarded by"
                        f" {name('rollout')}=rolling; {name('bake_seconds')} alone does not"
                        " apply to it")
    step, low = step_percent(config), LOWEST_STEP["rolling"]
    if step is not None and not low <= step <= 50:
        raise UserError(f"{name('rollout_step')} must be {low}..50 % of the copies for"
                        f" rolling, not {step}")


def copies_per_batch(config, copies: int) -> int:
    """Copies replaced per step: ROLLOUT_STEP % of them, at least one; SageMaker takes 5% to
    50% of the copy count, so a component needs two copies to roll."""
    name = config.name
    if copies < 2:
        # With autoscaling, the copies are the ones it reached: COPIES does not set them.
        fix = (f"set {name('min_copies')}=2 or more (autoscaling has it at {copies} now)"
               if config.max_copies else f"set {name('copies')}=2 or more")
        raise UserError(f"{name('rollout')}=rolling replaces at most half of the copies at a"
                        f" time: {config.component} runs {copies}; {fix}, or update it all at"
                        f" once (unset {name('rollout')}; that needs room for a second copy)")
    # Rounded up, so the batch is never under SageMaker's 5%; never over half.
    return min(max(1, -(-copies * step_percent(config) // 100)), copies // 2)


def component_deployment_config(config, copies: int) -> dict:
    """UpdateInferenceComponent's DeploymentConfig for ROLLOUT=rolling."""
    batch = copies_per_batch(config, copies)
    timeout = _rolling_timeout(config, component_rollout_seconds(config, copies))
    return {"RollingUpdatePolicy": {
                "MaximumBatchSize": {"Type": "COPY_COUNT", "Value": batch},
                "WaitIntervalInSeconds": bake_seconds(config),
                "MaximumExecutionTimeoutInSeconds": timeout},
            **_auto_rollback(config)}


def component_rollout_seconds(config, copies: int) -> int:
    """The longest a component's rolling update bakes: every batch, beyond starting its
    copies (rollout_seconds is an endpoint's)."""
    batches = -(-copies // copies_per_batch(config, copies))
    return bake_seconds(config) * batches


def _validate_shifting(config, bake: int) -> None:
    name = config.name
    if bake == 0:
        raise UserError(f"{name('rollout')}={config.rollout} shifts traffic in baked steps:"
                        f" {name('bake_seconds')} must be > 0")
    if config.deploy_mode.serverless:
        raise UserError(f"{name('rollout')}={config.rollout} needs instances; a serverless"
                        " endpoint updates all at once (BAKE_SECONDS still guards it)")
    if config.instance_count < 2:
        raise UserError(f"{name('rollout')}={config.rollout} moves traffic in parts of the"
                        f" instances: {name('instance_count')} must be at least 2")
    low = LOWEST_STEP[config.rollout]
    step = step_percent(config)
    if not low <= step <= 50:
        raise UserError(f"{name('rollout_step')} must be {low}..50 % of the capacity for"
                        f" {config.rollout}, not {step}")


def alarm_owner(config) -> str:
    """What our alarm names start with: the endpoint, or the component being updated."""
    if config.deploy_mode.component:
        return component_owner(config.component)
    return config.endpoint


def component_owner(component: str) -> str:
    # Components and endpoints are named apart; their alarms must not collide.
    return f"{component}-component"


def alarm_names(config) -> list[str]:
    owner = alarm_owner(config)
    ours = [errors_alarm(owner)]
    if config.rollback_p99_ms is not None:
        ours.append(latency_alarm(owner))
    theirs = [a.strip() for a in (config.rollback_alarms or "").split(",") if a.strip()]
    return ours + [a for a in theirs if a not in ours]


def errors_alarm(owner: str) -> str:
    return f"{owner}-rollback-errors"


def latency_alarm(owner: str) -> str:
    return f"{owner}-rollback-latency"


def _watched(config) -> list[dict]:
    """The dimensions of the metrics the alarms watch: the component's own, or the
    endpoint variant's (where both fleets report during a blue/green update)."""
    from deploy.sagemaker import resources  # deploy.config imports this module

    if config.deploy_mode.component:
        return [{"Name": "InferenceComponentName", "Value": config.component}]
    return [{"Name": "EndpointName", "Value": config.endpoint},
            {"Name": "VariantName", "Value": resources.VARIANT}]


def alarm_requests(config) -> list[dict]:
    """PutMetricAlarm requests for our alarms: no data (no traffic) is not a breach."""
    from deploy.sagemaker import names  # deploy.config imports this module

    owner = alarm_owner(config)
    common = {"Namespace": NAMESPACE, "Period": 60, "TreatMissingData": "notBreaching",
              "Dimensions": _watched(config), "Tags": names.resource_tags(config)}
    requests = [{**common, "AlarmName": errors_alarm(owner),
                 "AlarmDescription": "rolls back an update of the reranker endpoint when it"
                                     " answers 5xx",
                 "MetricName": "Invocation5XXErrors", "Statistic": "Sum",
                 "EvaluationPeriods": 1, "Threshold": float(config.rollback_errors),
                 "ComparisonOperator": "GreaterThanOrEqualToThreshold"}]
    if config.rollback_p99_ms is not None:
        requests.append({**common, "AlarmName": latency_alarm(owner),
                         "AlarmDescription": "rolls back an update of the reranker endpoint"
                                             " when its p99 model latency rises",
                         "MetricName": "ModelLatency", "ExtendedStatistic": "p99",
                         "EvaluationPeriods": 2, "DatapointsToAlarm": 2,
                         # ModelLatency is in microseconds.
                         "Threshold": float(config.rollback_p99_ms) * 1000,
                         "ComparisonOperator": "GreaterThanThreshold"})
    return requests


def deployment_config(config) -> dict:
    """UpdateEndpoint's DeploymentConfig for the configured rollout."""
    bake = bake_seconds(config)
    alarms = _auto_rollback(config)
    if config.rollout == "rolling":
        # Old instances go as new ones come, a batch at a time: no second fleet to find
        # room for, which matters most for GPU instances.
        return {"RollingUpdatePolicy": {
                    "MaximumBatchSize": {"Type": "CAPACITY_PERCENT",
                                         "Value": step_percent(config)},
                    "WaitIntervalInSeconds": bake,
                    "MaximumExecutionTimeoutInSeconds": _rolling_timeout(
                        config, rollout_seconds(config))},
                **alarms}
    routing = {"Type": ROLLOUTS[config.rollout], "WaitIntervalInSeconds": bake}
    step = step_percent(config)
    if config.rollout == "canary":
        routing["CanarySize"] = {"Type": "CAPACITY_PERCENT", "Value": step}
    elif config.rollout == "linear":
        routing["LinearStepSize"] = {"Type": "CAPACITY_PERCENT", "Value": step}
    return {"BlueGreenUpdatePolicy": {"TrafficRoutingConfiguration": routing,
                                      "TerminationWaitInSeconds": bake},
            **alarms}


def _auto_rollback(config) -> dict:
    """The DeploymentConfig part that rolls an update back when one of the alarms fires."""
    return {"AutoRollbackConfiguration": {"Alarms": [{"AlarmName": a}
                                                     for a in alarm_names(config)]}}


def _rolling_timeout(config, baking: int) -> int:
    """MaximumExecutionTimeoutInSeconds: the wait plus every batch's bake, in AWS's range."""
    return min(max(config.wait_timeout + baking, ROLLING_TIMEOUT[0]), ROLLING_TIMEOUT[1])


def rollout_seconds(config) -> int:
    """The longest a guarded update bakes, beyond starting the new instances."""
    if not guarded(config):
        return 0
    batches = -(-100 // (step_percent(config) or 100))
    steps = {"all-at-once": 1, "canary": 2, "linear": batches, "rolling": batches}
    return bake_seconds(config) * (steps[config.rollout] + 1)


def put_alarms(aws, config) -> None:
    """Our alarms, before anything else of the update is created; one line if it fails."""
    from deploy.sagemaker.aws import error_code, error_message  # it imports deploy.config

    try:
        ensure_alarms(aws, config)
    except (ClientError, BotoCoreError) as exc:
        raise UserError(f"putting the rollback alarms failed: {error_code(exc)}:"
                        f" {error_message(exc)} (nothing else was created)") from None


def ensure_alarms(aws, config) -> list[str]:
    """Check that the named alarms exist, then put ours; the alarm names."""
    cloudwatch = aws.client("cloudwatch")
    ours = [request["AlarmName"] for request in alarm_requests(config)]
    theirs = [name for name in alarm_names(config) if name not in ours]
    if theirs:
        found = cloudwatch.describe_alarms(AlarmNames=theirs,
                                           AlarmTypes=["MetricAlarm", "CompositeAlarm"])
        known = {a["AlarmName"] for kind in ("MetricAlarms", "CompositeAlarms")
                 for a in found.get(kind, [])}
        missing = [name for name in theirs if name not in known]
        if missing:
            raise UserError(f"{config.name('rollback_alarms')}: no CloudWatch alarm named"
                            f" {missing[0]!r} in this region (nothing was created)")
    for request in alarm_requests(config):
        cloudwatch.put_metric_alarm(**request)
    return alarm_names(config)


def describe(config, copies: int = 0) -> str:
    """One line for the update message (``copies``: a component's, when rolling)."""
    bake = bake_seconds(config)
    if config.rollout == "rolling" and config.deploy_mode.component:
        how = f"{copies_per_batch(config, copies)} of {copies} copies at a time"
    else:
        how = {"all-at-once": "all traffic at once",
               "canary": f"a {step_percent(config)}% canary first",
               "linear": f"steps of {step_percent(config)}%",
               "rolling": f"{step_percent(config)}% of the instances replaced at a time"
               }[config.rollout]
    return (f"{how}, each baked {bake} s; rolls back if any of"
            f" {', '.join(alarm_names(config))} fires")


def alarm_states(aws, owner: str) -> dict[str, str]:
    """{alarm: OK | ALARM | INSUFFICIENT_DATA} for our rollback alarms of ``owner`` (an
    endpoint, or ``component_owner(component)``)."""
    found = aws.client("cloudwatch").describe_alarms(
        AlarmNames=[errors_alarm(owner), latency_alarm(owner)]).get("MetricAlarms", [])
    return {a["AlarmName"]: a["StateValue"] for a in sorted(found, key=lambda a: a["AlarmName"])}


def remove_alarms(aws, owner: str) -> str:
    """Our rollback alarms of ``owner``, for ``delete``: "deleted", "none", or "failed
    (...)" (an identity without CloudWatch rights still deletes the endpoint)."""
    from deploy.sagemaker.aws import error_code, error_message  # it imports deploy.config

    try:
        found = list(alarm_states(aws, owner))
        if found:
            aws.client("cloudwatch").delete_alarms(AlarmNames=found)
    except (ClientError, BotoCoreError) as exc:
        return f"failed ({error_code(exc)}: {error_message(exc)})"
    return "deleted" if found else "none"
