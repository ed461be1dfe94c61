"""``cloudformation``: the endpoint ``deploy`` would make, as a CloudFormation template, for
teams whose infrastructure lives in stacks.

The template's resources are built from the same requests ``deploy`` sends (model, endpoint
config, rollback alarms and DeploymentConfig, autoscaling target and policies), so both
paths make the same endpoint.  CloudFormation names the model and endpoint config itself: a
changed template replaces them and updates the endpoint in place (blue/green, guarded when
ROLLOUT is set).  The archive is uploaded to S3 as for ``deploy`` (or MODEL_DATA= names it).

    make cloudformation ROLE=... REGION=eu-west-1 ENDPOINT=reranker MAX_CAPACITY=4
    aws cloudformation deploy --template-file build/cloudformation/reranker.json \\
        --stack-name reranker
"""

from __future__ import annotations

import json

from deploy import config as cfg
from deploy import outputs
from deploy.paths import BUILD_DIR
from deploy.sagemaker import autoscaling, guardrails, names, resources
from deploy.sagemaker.aws import Aws, translate_errors
from deploy.sagemaker.endpoints import require_role
from deploy.sagemaker.model_source import check_source, model_data_for, resolve_image

# Inference components: `deploy` (moto cannot run AWS::SageMaker::InferenceComponent).
MODES = ("realtime", "serverless", "async")


def get_att(resource: str, attribute: str) -> dict:
    return {"Fn::GetAtt": [resource, attribute]}


@translate_errors
def run_template(args) -> int:
    config = cfg.load(args, container=True, modes_allowed=MODES)
    require_role(config, "cloudformation")
    out = outputs.check_file(args.out or BUILD_DIR / "cloudformation"
                             / f"{config.endpoint}.json", "--out")  # before the upload
    aws = Aws(config)
    check_source(aws, config)
    model_data, isolated = model_data_for(aws, config)
    body, notes = template(config, aws.region, model_data, isolated,
                           resolve_image(config, aws.region))
    outputs.write_text(out, json.dumps(body, indent=2) + "\n", "--out")
    for note in notes:
        print(f"note: {note}")
    print(f"wrote {out}; create or update the stack with:\n  aws cloudformation deploy"
          f" --template-file {out} --stack-name {config.endpoint} --region {aws.region}")
    return 0


def template(config, region: str, model_data: str, isolated: bool, image: str
             ) -> tuple[dict, list[str]]:
    """(the template, notes on what it cannot say)."""
    mode = config.deploy_mode
    model = resources.model_request(config, None, image, model_data, isolated, region,
                                     metrics=mode.detailed_metrics)
    notes = []
    if model["PrimaryContainer"].pop("ContainerMetricsConfig", None):
        notes.append("CloudFormation's AWS::SageMaker::Model has no ContainerMetricsConfig"
                     " yet: the stack's endpoint publishes SageMaker's metrics, not the"
                     " container's own (deploy with `make deploy` for those)")
    endpoint_config = resources.endpoint_config_request(
        config, None, get_att("Model", "ModelName"), None)
    body = {
        "AWSTemplateFormatVersion": "2010-09-09",
        "Description": f"Reranker endpoint {config.endpoint} ({config.mode}), as"
                       " `python -m deploy deploy` makes it",
        "Resources": {
            "Model": _resource("AWS::SageMaker::Model", model),
            "EndpointConfig": _resource("AWS::SageMaker::EndpointConfig", endpoint_config),
            **_endpoint(config),
            **_scaling(config),
        },
        "Outputs": {"EndpointName": {"Value": get_att("Endpoint", "EndpointName")}},
    }
    return body, notes


def _resource(kind: str, request: dict, **extra) -> dict:
    """A resource from an API request: CloudFormation names it when the request's name is
    None, and nothing in it may be empty."""
    properties = {k: v for k, v in request.items() if v is not None and v != []}
    return {"Type": kind, "Properties": properties, **extra}


def _endpoint(config) -> dict:
    endpoint = {"EndpointName": config.endpoint,
                "EndpointConfigName": get_att("EndpointConfig", "EndpointConfigName"),
                "Tags": names.resource_tags(config)}
    if not guardrails.guarded(config):
        return {"Endpoint": _resource("AWS::SageMaker::Endpoint", endpoint)}
    # Our alarms go in the stack too, before the endpoint whose updates they guard.
    alarms = {f"RollbackAlarm{i}": _resource("AWS::CloudWatch::Alarm", request)
              for i, request in enumerate(guardrails.alarm_requests(config))}
    endpoint["DeploymentConfig"] = guardrails.deployment_config(config)
    return {**alarms, "Endpoint": _resource("AWS::SageMaker::Endpoint", endpoint,
                                            DependsOn=sorted(alarms))}


def _scaling(config) -> dict:
    if not autoscaling.scales(config):
        return {}
    out = {
        "ScalableTarget": _resource("AWS::ApplicationAutoScaling::ScalableTarget",
                                    autoscaling.target_request(config), DependsOn="Endpoint"),
        "ScalingPolicy": _policy(autoscaling.tracking_request(config)),
    }
    if config.scale_to_zero:
        out["WakePolicy"] = _policy(autoscaling.wake_policy_request(
            config.endpoint, config.scale_out_cooldown))
        alarm = autoscaling.wake_alarm_request(config.endpoint, "", names.resource_tags(config))
        alarm["AlarmActions"] = [{"Ref": "WakePolicy"}]
        out["WakeAlarm"] = _resource("AWS::CloudWatch::Alarm", alarm)
    return out


def _policy(request: dict) -> dict:
    """A PutScalingPolicy request as a resource on the stack's target (which says the
    namespace, resource and dimension)."""
    kept = {k: v for k, v in request.items()
            if k not in ("ServiceNamespace", "ResourceId", "ScalableDimension")}
    return _resource("AWS::ApplicationAutoScaling::ScalingPolicy",
                     {**kept, "ScalingTargetId": {"Ref": "ScalableTarget"}})
