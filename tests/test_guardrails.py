"""Guarded endpoint updates (ROLLOUT, BAKE_SECONDS, ROLLBACK_*): the settings' limits, the
DeploymentConfig and alarms as botocore's service model takes them, and a whole `deploy`
update against moto's server.

moto 5.2.5 has no UpdateEndpoint (HTTP 500; see test_deploy_moto.py), so the update is
followed up to that call: the alarms are put on moto's CloudWatch and read back, and the
UpdateEndpoint request is captured as the real client sends it (botocore has validated it
against the service model by then).
"""

from __future__ import annotations

import json

import pytest
from botocore.validate import ParamValidator

import test_deploy_moto as moto_tests
from deploy import config as cfg
from deploy.errors import UserError
from deploy.sagemaker import aws as aws_module
from deploy.sagemaker import guardrails, iam
from test_deploy_moto import cli, deploy_args, one_error_line

moto_url = moto_tests.moto_url
aws = moto_tests.aws
archive_path = moto_tests.archive_path


def config(**values) -> cfg.DeployConfig:
    values = {"endpoint": "rr", "instance_type": "ml.m5.xlarge", **values}
    made = cfg.DeployConfig(**values)
    cfg.validate(made)
    return made


def service_errors(operation: str, params: dict, service: str = "sagemaker") -> str:
    import botocore.session

    model = botocore.session.get_session().get_service_model(service)
    report = ParamValidator().validate(params, model.operation_model(operation).input_shape)
    return report.generate_report()


@pytest.mark.parametrize("values,needle", [
    ({"rollout": "blue-green"}, "must be one of all-at-once, canary, linear"),
    ({"bake_seconds": 4000}, "0..3600"),
    ({"rollout": "canary"}, "INSTANCE_COUNT must be at least 2"),
    ({"rollout": "canary", "instance_count": 2, "bake_seconds": 0}, "must be > 0"),
    ({"rollout": "linear", "instance_count": 4, "rollout_step": 5}, "10..50"),
    ({"rollout": "canary", "instance_count": 4, "rollout_step": 60}, "1..50"),
    ({"rollout": "canary", "mode": "serverless"}, "needs instances"),
    ({"bake_seconds": 300, "mode": "component", "component": "c"},
     "guarded by ROLLOUT=rolling"),
    ({"rollout": "canary", "mode": "component", "component": "c"},
     "must be one of all-at-once, rolling"),
    ({"rollout": "rolling", "mode": "component", "component": "c", "rollout_step": 60},
     "5..50 % of the copies"),
    ({"rollout": "rolling"}, "INSTANCE_COUNT must be at least 2"),
    ({"rollout": "rolling", "instance_count": 4, "rollout_step": 4}, "5..50"),
    ({"rollout": "rolling", "mode": "serverless"}, "needs instances"),
    ({"bake_seconds": 300, "rollback_errors": 0}, "ROLLBACK_ERRORS must be at least 1"),
    ({"bake_seconds": 300, "rollback_p99_ms": -1.0}, "ROLLBACK_P99_MS must be > 0"),
    ({"bake_seconds": 300, "rollback_alarms": ",".join(f"a{i}" for i in range(10))},
     "at most 10"),
])
def test_impossible_rollouts_are_refused_before_any_call(values, needle):
    with pytest.raises(UserError, match=needle.replace(".", r"\.")):
        config(make_names=True, **values)


def test_an_unguarded_update_is_the_plain_one():
    plain = config()
    assert not guardrails.guarded(plain) and guardrails.rollout_seconds(plain) == 0
    assert not guardrails.guarded(config(bake_seconds=0))


@pytest.mark.parametrize("values,routing", [
    ({"bake_seconds": 300},
     {"Type": "ALL_AT_ONCE", "WaitIntervalInSeconds": 300}),
    ({"rollout": "canary", "instance_count": 2},
     {"Type": "CANARY", "WaitIntervalInSeconds": 600,
      "CanarySize": {"Type": "CAPACITY_PERCENT", "Value": 10}}),
    ({"rollout": "linear", "instance_count": 4, "rollout_step": 50, "bake_seconds": 120},
     {"Type": "LINEAR", "WaitIntervalInSeconds": 120,
      "LinearStepSize": {"Type": "CAPACITY_PERCENT", "Value": 50}}),
])
def test_deployment_config_is_what_update_endpoint_takes(values, routing):
    guarded = config(rollback_p99_ms=250.0, rollback_alarms="team-pager, rr-rollback-errors",
                     **values)
    deployment = guardrails.deployment_config(guarded)
    policy = deployment["BlueGreenUpdatePolicy"]
    assert policy["TrafficRoutingConfiguration"] == routing
    assert policy["TerminationWaitInSeconds"] == routing["WaitIntervalInSeconds"]
    assert deployment["AutoRollbackConfiguration"]["Alarms"] == [
        {"AlarmName": "rr-rollback-errors"}, {"AlarmName": "rr-rollback-latency"},
        {"AlarmName": "team-pager"}]
    assert service_errors("UpdateEndpoint", {"EndpointName": "rr", "EndpointConfigName": "c",
                                             "DeploymentConfig": deployment}) == ""
    for request in guardrails.alarm_requests(guarded):
        assert service_errors("PutMetricAlarm", request, "cloudwatch") == ""


def test_the_wait_covers_every_baked_step():
    assert guardrails.rollout_seconds(config(bake_seconds=300)) == 600
    assert guardrails.rollout_seconds(config(rollout="canary", instance_count=2)) == 1800
    assert guardrails.rollout_seconds(config(rollout="linear", instance_count=4,
                                             bake_seconds=100)) == 500
    assert guardrails.rollout_seconds(config(rollout="rolling", instance_count=4,
                                             bake_seconds=100)) == 500


def test_a_rolling_update_replaces_instances_in_batches():
    rolling = config(rollout="rolling", instance_count=4, bake_seconds=120,
                     rollback_p99_ms=250.0)
    deployment = guardrails.deployment_config(rolling)
    assert deployment["RollingUpdatePolicy"] == {
        "MaximumBatchSize": {"Type": "CAPACITY_PERCENT", "Value": 25},
        "WaitIntervalInSeconds": 120,
        # The wait (1800 s) and five bakes of 120 s.
        "MaximumExecutionTimeoutInSeconds": 2400}
    assert "BlueGreenUpdatePolicy" not in deployment
    assert deployment["AutoRollbackConfiguration"]["Alarms"] == [
        {"AlarmName": "rr-rollback-errors"}, {"AlarmName": "rr-rollback-latency"}]
    assert service_errors("UpdateEndpoint", {"EndpointName": "rr", "EndpointConfigName": "c",
                                             "DeploymentConfig": deployment}) == ""
    assert "25% of the instances replaced at a time" in guardrails.describe(rolling)


def test_the_execution_role_may_read_exactly_the_rollback_alarms():
    guarded = config(bake_seconds=300, rollback_alarms="team-pager",
                     role=moto_tests.ROLE, bucket="bkt")
    policy = iam.role_policy(guarded, "eu-west-1", "1.dkr.ecr.eu-west-1.amazonaws.com/x:1")
    statement = next(s for s in policy["Statement"] if s.get("Sid") == "RollbackAlarms")
    assert statement["Action"] == "cloudwatch:DescribeAlarms"
    assert statement["Resource"] == [
        "arn:aws:cloudwatch:eu-west-1:123456789012:alarm:rr-rollback-errors",
        "arn:aws:cloudwatch:eu-west-1:123456789012:alarm:team-pager"]
    plain = iam.role_policy(config(role=moto_tests.ROLE, bucket="bkt"), "eu-west-1",
                            "1.dkr.ecr.eu-west-1.amazonaws.com/x:1")
    assert "RollbackAlarms" not in json.dumps(plain)
    rolling = config(mode="component", component="bge", rollout="rolling",
                     role=moto_tests.ROLE, bucket="bkt")
    policy = iam.role_policy(rolling, "eu-west-1", "1.dkr.ecr.eu-west-1.amazonaws.com/x:1")
    statement = next(s for s in policy["Statement"] if s.get("Sid") == "RollbackAlarms")
    assert statement["Resource"] == [
        "arn:aws:cloudwatch:eu-west-1:123456789012:alarm:bge-component-rollback-errors"]


@pytest.mark.parametrize("copies,step,batch", [
    (2, 50, 1), (3, 50, 1), (20, 10, 2), (21, 5, 2), (39, 5, 2), (40, 5, 2), (4, 25, 1)])
def test_a_rolling_batch_is_within_5_and_50_percent_of_the_copies(copies, step, batch):
    """SageMaker takes 5% to 50% of the copy count: rounded up, never over half."""
    rolling = config(mode="component", component="bge", rollout="rolling", rollout_step=step,
                     copies=copies, max_copies=0)
    assert guardrails.copies_per_batch(rolling, copies) == batch
    assert 0.05 <= batch / copies <= 0.5


def test_rolling_a_component_autoscaled_to_one_copy_names_min_copies():
    rolling = config(mode="component", component="bge", rollout="rolling", copies=1,
                     min_copies=0, max_copies=4)
    with pytest.raises(UserError, match="min-copies=2 or more .autoscaling has it at 1 now"):
        guardrails.copies_per_batch(rolling, 1)


def test_a_rolling_component_update_matches_the_service_models():
    rolling = config(mode="component", component="bge", rollout="rolling", rollout_step=10,
                     bake_seconds=60, rollback_p99_ms=200.0, copies=20, max_copies=0)
    deployment = guardrails.component_deployment_config(rolling, copies=20)
    assert deployment["RollingUpdatePolicy"]["MaximumBatchSize"] == {
        "Type": "COPY_COUNT", "Value": 2}
    assert not service_errors("UpdateInferenceComponent", {
        "InferenceComponentName": "bge", "DeploymentConfig": deployment})
    for request in guardrails.alarm_requests(rolling):
        assert request["Dimensions"] == [{"Name": "InferenceComponentName", "Value": "bge"}]
        assert not service_errors("PutMetricAlarm", request, "cloudwatch")
    # Ten batches of 60 s on top of the wait, within SageMaker's range for the timeout.
    assert guardrails.component_rollout_seconds(rolling, 20) == 600
    assert deployment["RollingUpdatePolicy"]["MaximumExecutionTimeoutInSeconds"] == 2400


@pytest.fixture()
def sent_updates(monkeypatch):
    """UpdateEndpoint requests as the deploy tool's real clients send them."""
    captured: list[dict] = []
    real = aws_module.session

    def observed(settings):
        session = real(settings)
        session.events.register("provide-client-params.sagemaker.UpdateEndpoint",
                                lambda params, **_: captured.append(dict(params)))
        return session

    monkeypatch.setattr(aws_module, "session", observed)
    return captured


@pytest.mark.slow  # packages a model, runs moto's server
def test_a_guarded_update_puts_its_alarms_then_asks_for_the_canary(
        aws, archive_path, capsys, sent_updates):
    assert cli(capsys, *deploy_args(archive_path, "--instance-count", "2"))[0] == 0
    assert sent_updates == []  # a new endpoint has nothing to guard
    code, _, err = cli(capsys, *deploy_args(archive_path, "--instance-count", "2",
                                            "--rollout", "canary", "--bake-seconds", "300",
                                            "--rollback-p99-ms", "250"))
    assert code == 2 and "UpdateEndpoint failed" in one_error_line(err)  # moto: see top
    (update,) = sent_updates
    routing = update["DeploymentConfig"]["BlueGreenUpdatePolicy"]["TrafficRoutingConfiguration"]
    assert routing["Type"] == "CANARY" and routing["WaitIntervalInSeconds"] == 300
    alarms = {a["AlarmName"]: a for a in aws("cloudwatch").describe_alarms(
        AlarmNamePrefix="rr-rollback")["MetricAlarms"]}
    assert set(alarms) == {"rr-rollback-errors", "rr-rollback-latency"}
    errors = alarms["rr-rollback-errors"]
    assert (errors["Namespace"], errors["MetricName"], errors["Threshold"]) == (
        "AWS/SageMaker", "Invocation5XXErrors", 5.0)
    assert {d["Name"]: d["Value"] for d in errors["Dimensions"]} == {
        "EndpointName": "rr", "VariantName": "AllTraffic"}
    assert alarms["rr-rollback-latency"]["Threshold"] == 250_000.0  # microseconds
    code, out, _ = cli(capsys, "status", "--endpoint", "rr")
    assert "rollback     rr-rollback-errors OK, rr-rollback-latency OK" in out  # moto says OK
    code, out, _ = cli(capsys, "delete", "--endpoint", "rr")
    assert code == 0 and "deleted       rollback alarms" in out
    assert aws("cloudwatch").describe_alarms(AlarmNamePrefix="rr-")["MetricAlarms"] == []


@pytest.mark.slow  # packages a model, runs moto's server
def test_a_rolling_update_is_asked_for_with_its_alarm(aws, archive_path, capsys,
                                                      sent_updates):
    assert cli(capsys, *deploy_args(archive_path, "--instance-count", "2"))[0] == 0
    code, _, err = cli(capsys, *deploy_args(archive_path, "--instance-count", "2",
                                            "--rollout", "rolling", "--bake-seconds", "60"))
    assert code == 2 and "UpdateEndpoint failed" in one_error_line(err)  # moto: see top
    (update,) = sent_updates
    policy = update["DeploymentConfig"]["RollingUpdatePolicy"]
    assert policy["MaximumBatchSize"] == {"Type": "CAPACITY_PERCENT", "Value": 25}
    assert policy["WaitIntervalInSeconds"] == 60
    assert update["DeploymentConfig"]["AutoRollbackConfiguration"] == {
        "Alarms": [{"AlarmName": "rr-rollback-errors"}]}
    assert [a["AlarmName"] for a in aws("cloudwatch").describe_alarms(
        AlarmNamePrefix="rr-rollback")["MetricAlarms"]] == ["rr-rollback-errors"]


@pytest.mark.slow  # packages a model, runs moto's server
def test_a_missing_alarm_stops_the_update_before_anything_is_made(
        aws, archive_path, capsys, sent_updates):
    assert cli(capsys, *deploy_args(archive_path))[0] == 0
    sm = aws("sagemaker")
    before = sm.list_endpoint_configs()["EndpointConfigs"]
    code, _, err = cli(capsys, *deploy_args(archive_path, "--bake-seconds", "60",
                                            "--rollback-alarms", "no-such-alarm"))
    line = one_error_line(err)
    assert code == 2 and "no CloudWatch alarm named 'no-such-alarm'" in line
    assert sent_updates == [] and sm.list_endpoint_configs()["EndpointConfigs"] == before
    assert aws("cloudwatch").describe_alarms()["MetricAlarms"] == []
    # An alarm that exists is taken.
    aws("cloudwatch").put_metric_alarm(
        AlarmName="team-pager", Namespace="AWS/SageMaker", MetricName="ModelLatency",
        Statistic="Average", Period=60, EvaluationPeriods=1, Threshold=1e6,
        ComparisonOperator="GreaterThanThreshold")
    code, _, err = cli(capsys, *deploy_args(archive_path, "--bake-seconds", "60",
                                            "--rollback-alarms", "team-pager"))
    assert code == 2 and "UpdateEndpoint failed" in one_error_line(err)  # moto: see top
    assert sent_updates[0]["DeploymentConfig"]["AutoRollbackConfiguration"] == {
        "Alarms": [{"AlarmName": "rr-rollback-errors"}, {"AlarmName": "team-pager"}]}


@pytest.mark.slow  # packages a model, runs moto's server
def test_status_and_delete_survive_an_identity_without_cloudwatch(aws, archive_path, capsys,
                                                                   monkeypatch):
    """CloudWatch refusing (here: no such service at that URL) is a row, not a failure."""
    assert cli(capsys, *deploy_args(archive_path))[0] == 0
    real = aws_module.Aws.client

    def no_cloudwatch(self, service):
        if service == "cloudwatch":
            import boto3

            return boto3.client("cloudwatch", region_name="us-east-1",
                                endpoint_url="http://127.0.0.1:9")  # nothing listens
        return real(self, service)

    monkeypatch.setattr(aws_module.Aws, "client", no_cloudwatch)
    code, out, _ = cli(capsys, "status", "--endpoint", "rr")
    assert code == 0 and "rollback     alarms unreadable" in out
    code, out, _ = cli(capsys, "delete", "--endpoint", "rr")
    assert "failed" in out and "rollback alarms" in out
    assert "deleted       endpoint rr" in out
