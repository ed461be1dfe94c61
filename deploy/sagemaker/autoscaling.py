"""Application Auto Scaling for an endpoint's variant: target tracking on the mode's metric.

AWS asks to deregister a scaling target before its endpoint is updated, so ``remove``
returns what it took and ``restore`` puts it back when the update it made room for fails.
"""

from __future__ import annotations

from deploy.sagemaker.resources import VARIANT, quietly

DIMENSION = "sagemaker:variant:DesiredInstanceCount"


def resource_id(endpoint: str) -> str:
    return f"endpoint/{endpoint}/variant/{VARIANT}"


def configure(aws, config) -> None:
    """Target tracking on the mode's metric (invocations, or backlog per instance)."""
    metric = config.deploy_mode.scaling_metric(config)
    if not config.max_capacity or metric is None:
        return
    aas = aws.client("application-autoscaling")
    rid = resource_id(config.endpoint)
    low = config.min_capacity or config.instance_count
    aas.register_scalable_target(ServiceNamespace="sagemaker", ResourceId=rid,
                                 ScalableDimension=DIMENSION, MinCapacity=low,
                                 MaxCapacity=config.max_capacity)
    aas.put_scaling_policy(
        PolicyName=f"{config.endpoint}-target-tracking", ServiceNamespace="sagemaker",
        ResourceId=rid, ScalableDimension=DIMENSION, PolicyType="TargetTrackingScaling",
        TargetTrackingScalingPolicyConfiguration={
            "TargetValue": float(config.target_invocations),
            "ScaleInCooldown": config.scale_in_cooldown,
            "ScaleOutCooldown": config.scale_out_cooldown, **metric})
    print(f"autoscaling {low}..{config.max_capacity} instances, target"
          f" {config.target_invocations} per instance")


def scaling_of(aws, endpoint: str) -> dict | None:
    aas = aws.client("application-autoscaling")
    targets = aas.describe_scalable_targets(ServiceNamespace="sagemaker",
                                            ResourceIds=[resource_id(endpoint)],
                                            ScalableDimension=DIMENSION)["ScalableTargets"]
    return targets[0] if targets else None


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
    return {"target": target, "policies": policies}


def restore(aws, saved: dict | None) -> None:
    """Put back what ``remove`` took when the update it made room for failed."""
    if not saved:
        return
    aas = aws.client("application-autoscaling")
    target = saved["target"]
    keys = {"ServiceNamespace": "sagemaker", "ResourceId": target["ResourceId"],
            "ScalableDimension": DIMENSION}
    quietly(aas.register_scalable_target, MinCapacity=target["MinCapacity"],
            MaxCapacity=target["MaxCapacity"], **keys)
    for policy in saved["policies"]:
        tracking = policy.get("TargetTrackingScalingPolicyConfiguration")
        if tracking:
            quietly(aas.put_scaling_policy, PolicyName=policy["PolicyName"],
                    PolicyType="TargetTrackingScaling",
                    TargetTrackingScalingPolicyConfiguration=tracking, **keys)
