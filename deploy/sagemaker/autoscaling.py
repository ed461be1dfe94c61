"""Application Auto Scaling for an endpoint's variant: target tracking on the mode's metric.

AWS asks to deregister a scaling target before its endpoint is updated, so ``remove``
returns what it took and ``restore`` puts it back when the update it made room for fails.

An async endpoint may scale to zero instances (``SCALE_TO_ZERO=1``), as AWS documents it:
the backlog-per-instance target cannot wake an endpoint that has no instance, so an alarm
on ``HasBacklogWithoutCapacity`` triggers a step-scaling policy that adds one.
"""

from __future__ import annotations

from botocore.exceptions import BotoCoreError, ClientError

from deploy.sagemaker import names
from deploy.sagemaker.aws import error_code, error_message
from deploy.sagemaker.resources import VARIANT, quietly

DIMENSION = "sagemaker:variant:DesiredInstanceCount"
WAKE_POLICY = "scale-out-from-zero"


def resource_id(endpoint: str) -> str:
    return f"endpoint/{endpoint}/variant/{VARIANT}"


def wake_alarm(endpoint: str) -> str:
    return f"{endpoint}-{WAKE_POLICY}"


def wake_policy_request(endpoint: str, cooldown: int) -> dict:
    """One instance more as soon as the wake alarm fires."""
    return {"PolicyName": wake_alarm(endpoint), "ServiceNamespace": "sagemaker",
            "ResourceId": resource_id(endpoint), "ScalableDimension": DIMENSION,
            "PolicyType": "StepScaling", "StepScalingPolicyConfiguration": {
                "AdjustmentType": "ChangeInCapacity", "MetricAggregationType": "Average",
                "Cooldown": cooldown,
                "StepAdjustments": [{"MetricIntervalLowerBound": 0, "ScalingAdjustment": 1}]}}


def wake_alarm_request(endpoint: str, policy_arn: str, tags: list[dict] | None = None) -> dict:
    """PutMetricAlarm for the wake alarm; ``tags``: the endpoint's (TAGS, and ours)."""
    return {"AlarmName": wake_alarm(endpoint), **({"Tags": tags} if tags else {}),
            "AlarmDescription": f"requests wait for {endpoint}, which has no instance: add one",
            "AlarmActions": [policy_arn], "Namespace": "AWS/SageMaker",
            "MetricName": "HasBacklogWithoutCapacity",
            "Dimensions": [{"Name": "EndpointName", "Value": endpoint}],
            "Statistic": "Average", "Period": 60, "EvaluationPeriods": 2,
            "DatapointsToAlarm": 2, "Threshold": 1.0,
            "ComparisonOperator": "GreaterThanOrEqualToThreshold",
            "TreatMissingData": "missing"}


def lowest(config) -> int:
    """The fewest instances autoscaling keeps."""
    if config.scale_to_zero:
        return 0
    return config.min_capacity or config.instance_count


def target_request(config) -> dict:
    """RegisterScalableTarget's arguments (a CloudFormation template's too)."""
    return {"ServiceNamespace": "sagemaker", "ResourceId": resource_id(config.endpoint),
            "ScalableDimension": DIMENSION, "MinCapacity": lowest(config),
            "MaxCapacity": config.max_capacity}


def tracking_request(config) -> dict:
    """PutScalingPolicy's arguments for target tracking on the mode's metric."""
    return {"PolicyName": f"{config.endpoint}-target-tracking", "ServiceNamespace": "sagemaker",
            "ResourceId": resource_id(config.endpoint), "ScalableDimension": DIMENSION,
            "PolicyType": "TargetTrackingScaling",
            "TargetTrackingScalingPolicyConfiguration": {
                "TargetValue": config.deploy_mode.scaling_target(config),
                "ScaleInCooldown": config.scale_in_cooldown,
                "ScaleOutCooldown": config.scale_out_cooldown,
                **config.deploy_mode.scaling_metric(config)}}


def scales(config) -> bool:
    return bool(config.max_capacity) and config.deploy_mode.scaling_metric(config) is not None


def configure(aws, config) -> None:
    """Target tracking on the mode's metric (invocations, or backlog per instance)."""
    if not scales(config):
        return
    aas = aws.client("application-autoscaling")
    aas.register_scalable_target(**target_request(config))
    aas.put_scaling_policy(**tracking_request(config))
    if config.scale_to_zero:
        _put_wake(aws, config.endpoint, config.scale_out_cooldown, names.resource_tags(config))
    low = lowest(config)
    print(f"autoscaling {low}..{config.max_capacity} instances, target {target_words(config)}"
          + (" (scales to zero, wakes on the first waiting request)" if low == 0 else ""))


def target_words(config) -> str:
    """What the policy holds, in words: its value and the metric's unit."""
    mode = config.deploy_mode
    return f"{mode.scaling_target(config):g} {mode.scaling_unit(config)}"


def _put_wake(aws, endpoint: str, cooldown: int, tags: list[dict] | None = None) -> None:
    arn = aws.client("application-autoscaling").put_scaling_policy(
        **wake_policy_request(endpoint, cooldown))["PolicyARN"]
    aws.client("cloudwatch").put_metric_alarm(**wake_alarm_request(endpoint, arn, tags))


class Unreadable(Exception):
    """This identity may not read Application Auto Scaling (it needs those rights only when
    an endpoint autoscales): callers carry on and say what was not checked."""


def scaling_of(aws, endpoint: str) -> dict | None:
    aas = aws.client("application-autoscaling")
    try:
        targets = aas.describe_scalable_targets(ServiceNamespace="sagemaker",
                                                ResourceIds=[resource_id(endpoint)],
                                                ScalableDimension=DIMENSION)["ScalableTargets"]
    except ClientError as exc:
        if error_code(exc) in ("AccessDeniedException", "AccessDenied"):
            raise Unreadable(f"{error_code(exc)}: {error_message(exc)}") from None
        raise
    return targets[0] if targets else None


def tracking_of(aws, endpoint: str) -> str | None:
    """The target-tracking policy in a few words ("<metric> at <value>"), or None."""
    policies = aws.client("application-autoscaling").describe_scaling_policies(
        ServiceNamespace="sagemaker", ResourceId=resource_id(endpoint),
        ScalableDimension=DIMENSION)["ScalingPolicies"]
    for policy in policies:
        tracking = policy.get("TargetTrackingScalingPolicyConfiguration")
        if tracking:
            spec = (tracking.get("PredefinedMetricSpecification")
                    or tracking.get("CustomizedMetricSpecification") or {})
            metric = spec.get("PredefinedMetricType") or spec.get("MetricName")
            return f"{metric} at {tracking['TargetValue']:g}"
    return None


def remove(aws, endpoint: str) -> dict | None:
    """Policies, then the target; returns what was there (for ``restore``) or None."""
    target = scaling_of(aws, endpoint)
    if not target:
        return None
    aas = aws.client("application-autoscaling")
    rid = resource_id(endpoint)
    policies = aas.describe_scaling_policies(ServiceNamespace="sagemaker", ResourceId=rid,
                                             ScalableDimension=DIMENSION)["ScalingPolicies"]
    for policy in policies:
        quietly(aas.delete_scaling_policy, PolicyName=policy["PolicyName"],
                ServiceNamespace="sagemaker", ResourceId=rid, ScalableDimension=DIMENSION)
    quietly(aas.deregister_scalable_target, ServiceNamespace="sagemaker", ResourceId=rid,
            ScalableDimension=DIMENSION)
    # The wake alarm's action names the policy just deleted.
    quietly(aws.client("cloudwatch").delete_alarms, AlarmNames=[wake_alarm(endpoint)])
    return {"target": target, "policies": policies, "endpoint": endpoint}


def restore(aws, saved: dict | None) -> str:
    """Put back what ``remove`` took when the update it made room for failed; returns what
    to add to the failure's message ("" when all is back)."""
    if not saved:
        return ""
    aas = aws.client("application-autoscaling")
    target = saved["target"]
    keys = {"ServiceNamespace": "sagemaker", "ResourceId": target["ResourceId"],
            "ScalableDimension": DIMENSION}
    try:
        aas.register_scalable_target(MinCapacity=target["MinCapacity"],
                                     MaxCapacity=target["MaxCapacity"], **keys)
    except (ClientError, BotoCoreError) as exc:
        why = f"{error_code(exc)}: {error_message(exc)}" if isinstance(exc, ClientError) else exc
        return f"; autoscaling could not be put back ({why}): {lifted(saved)}"
    for policy in saved["policies"]:
        tracking = policy.get("TargetTrackingScalingPolicyConfiguration")
        if tracking:
            quietly(aas.put_scaling_policy, PolicyName=policy["PolicyName"],
                    PolicyType="TargetTrackingScaling",
                    TargetTrackingScalingPolicyConfiguration=tracking, **keys)
        elif policy["PolicyName"] == wake_alarm(saved["endpoint"]):
            cooldown = policy["StepScalingPolicyConfiguration"].get("Cooldown", 60)
            quietly(_put_wake, aws=aws, endpoint=saved["endpoint"], cooldown=cooldown,
                    tags=names.tags(saved["endpoint"]))
    return ""


def lifted(saved: dict) -> str:
    """What an update took off while it ran, and how to get it back."""
    target = saved["target"]
    return (f"the autoscaling of {saved['endpoint']} ({target['MinCapacity']}.."
            f"{target['MaxCapacity']} instances) was lifted for the update; `make deploy` again"
            " once `make status` says InService registers it anew")
