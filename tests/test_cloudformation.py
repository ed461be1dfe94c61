"""``python -m deploy cloudformation``: the endpoint deploy makes, as a template.

Against moto's server with the real boto3 clients: the archive is uploaded as for deploy,
the template passes cfn-lint (AWS's CloudFormation linter, with its resource schemas), and
moto's CloudFormation creates the stack, whose model and endpoint config are compared
with what ``deploy`` itself creates for the same settings.  moto's CloudFormation makes
the SageMaker resources but not Application Auto Scaling or CloudWatch ones: those are
checked in the template, against cfn-lint's schemas.
"""

from __future__ import annotations

import json

import pytest
from cfnlint.api import ManualArgs
from cfnlint.api import lint as cfn_lint

import test_deploy_moto as moto_tests
from test_deploy_moto import BUCKET, ROLE, cli, deploy_args, one_error_line

moto_url = moto_tests.moto_url
aws = moto_tests.aws
archive_path = moto_tests.archive_path

pytestmark = pytest.mark.slow  # packages a model, runs moto's server


def template_args(archive_path, out, *extra):
    return ["cloudformation", *deploy_args(archive_path, *extra)[1:], "--out", out]


def lint(path) -> list[str]:
    """cfn-lint's errors and warnings (not its informational advice) for the regions the
    tests deploy to and a second one."""
    matches = cfn_lint(path.read_text(), config=ManualArgs(regions=["us-east-1", "eu-west-1"]))
    return [f"{m.rule.id} {m.message} ({m.path_string})" for m in matches
            if m.rule.id[0] in "EW"]


def test_realtime_template_lints_and_makes_what_deploy_makes(aws, archive_path, capsys,
                                                             tmp_path):
    out = tmp_path / "rr.json"
    extra = ["--instance-type", "ml.g4dn.xlarge", "--instance-count", "2", "--max-capacity", "3",
             "--target-invocations", "250", "--rollout", "canary", "--rollback-p99-ms",
             "400", "--tags", "team=search", "--env", "RERANK_MAX_LENGTH=256"]
    code, printed, err = cli(capsys, *template_args(archive_path, out, *extra))
    assert code == 0, err
    assert "aws cloudformation deploy --template-file" in printed
    assert lint(out) == []
    body = json.loads(out.read_text())
    kinds = {name: r["Type"] for name, r in body["Resources"].items()}
    assert kinds == {"Model": "AWS::SageMaker::Model",
                     "EndpointConfig": "AWS::SageMaker::EndpointConfig",
                     "RollbackAlarm0": "AWS::CloudWatch::Alarm",
                     "RollbackAlarm1": "AWS::CloudWatch::Alarm",
                     "Endpoint": "AWS::SageMaker::Endpoint",
                     "ScalableTarget": "AWS::ApplicationAutoScaling::ScalableTarget",
                     "ScalingPolicy": "AWS::ApplicationAutoScaling::ScalingPolicy"}
    endpoint = body["Resources"]["Endpoint"]["Properties"]
    assert endpoint["EndpointName"] == "rr"
    assert endpoint["DeploymentConfig"]["AutoRollbackConfiguration"]["Alarms"] == [
        {"AlarmName": "rr-rollback-errors"}, {"AlarmName": "rr-rollback-latency"}]
    scaling = body["Resources"]["ScalingPolicy"]["Properties"]
    assert scaling["TargetTrackingScalingPolicyConfiguration"]["TargetValue"] == 250.0
    assert body["Resources"]["ScalableTarget"]["Properties"]["MaxCapacity"] == 3

    # The stack, made by moto's CloudFormation, against what deploy makes.
    cfn, sm = aws("cloudformation"), aws("sagemaker")
    cfn.create_stack(StackName="rr", TemplateBody=out.read_text())
    assert cfn.describe_stacks(StackName="rr")["Stacks"][0]["StackStatus"] == "CREATE_COMPLETE"
    stacked = {r.get("LogicalResourceId"): r.get("PhysicalResourceId")
               for r in cfn.list_stack_resources(StackName="rr")["StackResourceSummaries"]}
    from_stack = _model_and_config(sm, stacked["Model"].split("/")[-1],
                                   stacked["EndpointConfig"].split("/")[-1])
    assert cli(capsys, *deploy_args(archive_path, *extra))[0] == 0
    deployed = sm.describe_endpoint(EndpointName="rr")["EndpointConfigName"]
    model = sm.describe_endpoint_config(EndpointConfigName=deployed)[
        "ProductionVariants"][0]["ModelName"]
    assert from_stack == _model_and_config(sm, model, deployed)


def _model_and_config(sm, model: str, config: str) -> tuple[dict, dict]:
    container = sm.describe_model(ModelName=model)["PrimaryContainer"]
    variant = sm.describe_endpoint_config(EndpointConfigName=config)["ProductionVariants"][0]
    variant.pop("ModelName")
    return ({k: container[k] for k in ("Image", "ModelDataUrl", "Environment")}, variant)


@pytest.mark.parametrize("extra, kinds", [
    (["--mode", "serverless", "--memory-mb", "4096", "--max-concurrency", "10",
      "--provisioned-concurrency", "2"], set()),
    (["--mode", "async", "--instance-type", "ml.g4dn.xlarge",
      "--async-output", f"s3://{BUCKET}/out/", "--max-capacity", "2", "--scale-to-zero", "1",
      "--subnets", "subnet-0abc1234", "--security-groups", "sg-0abc1234",
      "--kms-key", "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"],
     {"ScalableTarget", "ScalingPolicy", "WakePolicy", "WakeAlarm"}),
    # Real-time scaling on the 10-second concurrency metric (cfn-lint knows its enum).
    (["--max-capacity", "3", "--target-concurrency", "4"], {"ScalableTarget", "ScalingPolicy"}),
    # A rolling update: a batch of instances at a time, under the rollback alarm.
    (["--instance-count", "4", "--rollout", "rolling", "--bake-seconds", "60"],
     {"RollbackAlarm0"}),
])
def test_serverless_and_async_templates_lint(aws, archive_path, capsys, tmp_path, extra,
                                             kinds):
    out = tmp_path / "t.json"
    code, _, err = cli(capsys, *template_args(archive_path, out, *extra))
    assert code == 0, err
    assert lint(out) == []
    body = json.loads(out.read_text())
    assert set(body["Resources"]) == {"Model", "EndpointConfig", "Endpoint"} | kinds
    if "rolling" in extra:
        policy = body["Resources"]["Endpoint"]["Properties"]["DeploymentConfig"][
            "RollingUpdatePolicy"]
        assert policy["MaximumBatchSize"] == {"Type": "CAPACITY_PERCENT", "Value": 25}
    if "--target-concurrency" in extra:
        tracking = body["Resources"]["ScalingPolicy"]["Properties"][
            "TargetTrackingScalingPolicyConfiguration"]
        assert tracking["TargetValue"] == 4.0
        assert tracking["PredefinedMetricSpecification"]["PredefinedMetricType"] == \
            "SageMakerVariantConcurrentRequestsPerModelHighResolution"
    aws("cloudformation").create_stack(StackName="t", TemplateBody=out.read_text())


def test_modes_it_does_not_cover_and_a_missing_role(aws, archive_path, capsys, tmp_path):
    out = tmp_path / "t.json"
    code, _, err = cli(capsys, *template_args(archive_path, out, "--mode", "component"))
    assert code == 2 and "must be one of realtime, serverless, async" in one_error_line(err)
    code, _, err = cli(capsys, "cloudformation", "--archive", archive_path, "--bucket", BUCKET,
                       "--out", out)
    assert code == 2 and "ROLE" in one_error_line(err).upper()
    assert not out.exists()
    assert ROLE  # the role the other tests pass
