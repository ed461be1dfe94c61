"""Application Auto Scaling for an inference component: copies follow the load, down to zero.

The scalable target is the component's copy count (``inference-component/<name>``,
``sagemaker:inference-component:DesiredCopyCount``); a target-tracking policy keeps a
predefined per-copy metric at ``target_per_copy``.  Scale to zero (``min_copies`` 0) needs
one more piece, as AWS documents it ("Scale an endpoint to zero instances"): once no copy
is left, nothing reports per-copy load, so a request that finds no capacity is counted in
CloudWatch as ``NoCapacityInvocationFailures`` and an alarm on it triggers a step-scaling
policy that adds one copy.
"""

from __future__ import annotations

from botocore.exceptions import BotoCoreError, ClientError

from deploy.errors import UserError
from deploy.sagemaker import guardrails, names
from deploy.sagemaker.resources import quietly

NAMESPACE = "sagemaker"
DIMENSION = "sagemaker:inference-component:DesiredCopyCount"
# Application Auto Scaling's predefined metric types (its MetricType enum in botocore).
METRICS = {
    "concurrency": "SageMakerInferenceComponentConcurrentRequestsPerCopyHighResolution",
    "invocations": "SageMakerInferenceComponentInvocationsPerCopy",
}
NO_CAPACITY_METRIC = "NoCapacityInvocationFailures"


def resource_id(component: str) -> str:
    return f"inference-component/{component}"


def alarm_name(component: str) -> str:
    """Named as guardrails names a component's alarms: an async endpoint named like the
    component has ``<endpoint>-scale-out-from-zero``, and alarm names are account-wide."""
    return f"{guardrails.component_owner(component)}-scale-out-from-zero"


def _older_alarm_name(component: str) -> str:
    """What the alarm was named before (the endpoint's wake alarm name): deleted with the
    component when it watches this component."""
    return f"{component}-scale-out-from-zero"


def _wake_alarms(cloudwatch, component: str) -> list[str]:
    """The wake alarms of ``component`` under either name (one of the same name watching
    something else is not its)."""
    found = cloudwatch.describe_alarms(AlarmNames=[
        alarm_name(component), _older_alarm_name(component)])["MetricAlarms"]
    return [a["AlarmName"] for a in found if _watches(a, component)]


def _watches(alarm: dict, component: str) -> bool:
    return {"Name": "InferenceComponentName", "Value": component} in alarm.get("Dimensions", [])


def validate(config) -> None:
    name = config.name
    if config.scale_metric not in METRICS:
        raise UserError(f"{name('scale_metric')} must be one of {', '.join(METRICS)}, not"
                        f" {config.scale_metric!r}")
    if not config.max_copies:
        return
    if config.min_copies < 0 or config.max_copies < max(1, config.min_copies):
        raise UserError(f"copies must satisfy 0 <= {name('min_copies')} <="
                        f" {name('max_copies')} and {name('max_copies')} >= 1 (got"
                        f" {config.min_copies}..{config.max_copies})")
    if not config.min_copies <= config.copies <= config.max_copies:
        raise UserError(f"{name('copies')} ({config.copies}) must lie within"
                        f" {name('min_copies')}..{name('max_copies')}"
                        f" ({config.min_copies}..{config.max_copies})")
    if not config.target_per_copy > 0:
        raise UserError(f"{name('target_per_copy')} must be above 0, not"
                        f" {config.target_per_copy}")


def target_request(config) -> dict:
    return {"ServiceNamespace": NAMESPACE, "ResourceId": resource_id(config.component),
            "ScalableDimension": DIMENSION, "MinCapacity": config.min_copies,
            "MaxCapacity": config.max_copies}


def tracking_request(config) -> dict:
    return {"PolicyName": f"{config.component}-target-tracking", **_keys(config.component),
            "PolicyType": "TargetTrackingScaling",
            "TargetTrackingScalingPolicyConfiguration": {
                "TargetValue": float(config.target_per_copy),
                "PredefinedMetricSpecification": {
                    "PredefinedMetricType": METRICS[config.scale_metric]},
                "ScaleInCooldown": config.scale_in_cooldown,
                "ScaleOutCooldown": config.scale_out_cooldown}}


def step_request(config) -> dict:
    """One copy more as soon as the alarm fires (the metric is >= its threshold)."""
    return {"PolicyName": f"{config.component}-scale-out-from-zero",
            **_keys(config.component), "PolicyType": "StepScaling",
            "StepScalingPolicyConfiguration": {
                "AdjustmentType": "ChangeInCapacity", "MetricAggregationType": "Maximum",
                "Cooldown": config.scale_out_cooldown,
                "StepAdjustments": [{"MetricIntervalLowerBound": 0, "ScalingAdjustment": 1}]}}


def alarm_request(config, policy_arn: str) -> dict:
    return {"AlarmName": alarm_name(config.component),
            "AlarmDescription": f"a request found no copy of {config.component}: add one",
            "AlarmActions": [policy_arn], "Namespace": "AWS/SageMaker",
            "MetricName": NO_CAPACITY_METRIC,
            "Dimensions": [{"Name": "InferenceComponentName", "Value": config.component}],
            "Statistic": "Sum", "Period": 60, "EvaluationPeriods": 1, "Threshold": 1.0,
            "ComparisonOperator": "GreaterThanOrEqualToThreshold",
            "TreatMissingData": "missing", "Tags": names.resource_tags(config)}


def configure(aws, config) -> None:
    """Register the copy count, track the metric, and wake from zero when min_copies is 0."""
    if not config.max_copies:
        return
    aas = aws.client("application-autoscaling")
    aas.register_scalable_target(**target_request(config))
    put_policies(aws, config)
    print(f"autoscaling {config.min_copies}..{config.max_copies} copies of"
          f" {config.component}, target {config.target_per_copy:g} {config.scale_metric}"
          " per copy" + (" (scales to zero)" if config.min_copies == 0 else ""))


def put_policies(aws, config) -> None:
    """The policies (and for scale to zero the alarm) on a registered target."""
    aas = aws.client("application-autoscaling")
    aas.put_scaling_policy(**tracking_request(config))
    cloudwatch = aws.client("cloudwatch")
    if config.min_copies == 0:
        arn = aas.put_scaling_policy(**step_request(config))["PolicyARN"]
        cloudwatch.put_metric_alarm(**alarm_request(config, arn))
        _drop_older_alarm(cloudwatch, config.component)
    else:
        _drop_wake(aas, cloudwatch, config)


def _drop_wake(aas, cloudwatch, config) -> None:
    """Scale to zero turned off (MIN_COPIES above 0 on a redeploy): its alarm and step
    policy would still add a copy on every request that finds none, so they go."""
    alarms = _wake_alarms(cloudwatch, config.component)
    if alarms:
        quietly(cloudwatch.delete_alarms, AlarmNames=alarms)
    quietly(aas.delete_scaling_policy, PolicyName=step_request(config)["PolicyName"],
            **_keys(config.component))


def _drop_older_alarm(cloudwatch, component: str) -> None:
    """The alarm this component had under its older name (its step policy's action too),
    which would otherwise add a second copy on each wake: deleted once the new one is put."""
    older = _older_alarm_name(component)
    found = cloudwatch.describe_alarms(AlarmNames=[older])["MetricAlarms"]
    if any(_watches(alarm, component) for alarm in found):
        quietly(cloudwatch.delete_alarms, AlarmNames=[older])


def scaling_of(aws, component: str) -> dict | None:
    targets = aws.client("application-autoscaling").describe_scalable_targets(
        ServiceNamespace=NAMESPACE, ResourceIds=[resource_id(component)],
        ScalableDimension=DIMENSION)["ScalableTargets"]
    return targets[0] if targets else None


def remove(aws, component: str) -> str:
    """Alarm, policies, target: "deleted", "none" or "failed (...)" for the delete report (an
    identity without autoscaling or CloudWatch rights, as for a component that never
    scaled, still deletes the component, and is told what it could not check)."""
    from deploy.sagemaker.aws import error_code, error_message  # it imports deploy.config

    aas = aws.client("application-autoscaling")
    cloudwatch = aws.client("cloudwatch")
    try:
        policies = aas.describe_scaling_policies(**_keys(component))["ScalingPolicies"]
        alarms = _wake_alarms(cloudwatch, component)
    except (ClientError, BotoCoreError) as exc:
        return f"failed ({error_code(exc)}: {error_message(exc)})"
    if alarms:
        quietly(cloudwatch.delete_alarms, AlarmNames=alarms)
    for policy in policies:
        quietly(aas.delete_scaling_policy, PolicyName=policy["PolicyName"], **_keys(component))
    quietly(aas.deregister_scalable_target, **_keys(component))
    return "deleted" if policies or alarms else "none"


def _keys(component: str) -> dict:
    return {"ServiceNamespace": NAMESPACE, "ResourceId": resource_id(component),
            "ScalableDimension": DIMENSION}
