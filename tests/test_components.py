"""Inference components: requests checked against botocore's service model, control flow
with a Stubber-driven real boto3 client, scaling policies and alarms against moto.

moto 5.2.5 implements none of Create/Describe/Update/Delete/ListInferenceComponents, fails
on an endpoint config without ModelName (HTTP 500), and refuses the scalable dimension
``sagemaker:inference-component:DesiredCopyCount`` in Register/Describe/Deregister-
ScalableTarget (its enum is older than botocore's).  So:
- against moto's server: CreateModel with ContainerMetricsConfig, PutScalingPolicy (target
  tracking and step scaling on the component's resource id), DescribeScalingPolicies,
  DeleteScalingPolicy, PutMetricAlarm / DescribeAlarms / DeleteAlarms;
- against the service model only (botocore validates every request a real client sends,
  a Stubber's included, before the stub answers): CreateEndpointConfig for components,
  CreateEndpoint, Create/Update/Describe/Delete/ListInferenceComponents,
  RegisterScalableTarget / DeregisterScalableTarget.
"""

from __future__ import annotations

import dataclasses
from datetime import datetime, timezone

import boto3
import botocore.session
import pytest
from botocore.stub import ANY, Stubber
from botocore.validate import ParamValidator

import test_deploy_moto as moto_tests
from deploy import config as cfg
from deploy.errors import UserError
from deploy.sagemaker import component_scaling, components, guardrails, names, resources
from deploy.sagemaker.waiter import WaitFailed

moto_url = moto_tests.moto_url
aws = moto_tests.aws

ROLE = "arn:aws:iam::123456789012:role/reranker-sagemaker"
IMAGE = "123456789012.dkr.ecr.us-east-1.amazonaws.com/reranker:1"
DATA = "s3://models/rerankers/minilm/abc/model.tar.gz"
NOW = datetime(2026, 12, 4, tzinfo=timezone.utc)
ARN = "arn:aws:sagemaker:us-east-1:123456789012:resource/x"  # long enough for every ARN shape


def component_config(**changes) -> cfg.DeployConfig:
    values = dict(mode="component", endpoint="search", component="minilm-en", role=ROLE,
                  image=IMAGE, model_data=DATA, instance_type="ml.g5.xlarge", copies=1,
                  component_memory_mb=4096, cpu_cores=2.0, min_instances=0, max_instances=2,
                  min_copies=0, max_copies=3, poll_seconds=0.0, wait_timeout=5)
    values.update(changes)
    return cfg.DeployConfig(**values)


def valid(service: str, operation: str, params: dict) -> None:
    model = botocore.session.get_session().get_service_model(service)
    report = ParamValidator().validate(params, model.operation_model(operation).input_shape)
    assert not report.has_errors(), report.generate_report()


# --- the requests, checked against botocore's service model ---------------------------------

def test_endpoint_config_for_components_matches_the_service_model():
    config = component_config()
    request = components.endpoint_config_request(config, "search-cfg")
    valid("sagemaker", "CreateEndpointConfig", request)
    variant = request["ProductionVariants"][0]
    assert "ModelName" not in variant and request["ExecutionRoleArn"] == ROLE
    assert variant["ManagedInstanceScaling"] == {"Status": "ENABLED", "MinInstanceCount": 0,
                                                 "MaxInstanceCount": 2}
    assert variant["RoutingConfig"] == {"RoutingStrategy": "LEAST_OUTSTANDING_REQUESTS"}
    assert variant["InitialInstanceCount"] == 1  # an endpoint starts with one instance
    assert request["MetricsConfig"]["EnableDetailedObservability"] is True


def test_an_endpoint_for_components_is_made_in_the_vpc_and_isolated():
    """Its instances come before any model, so their network is the endpoint config's."""
    config = component_config(subnets="subnet-0123456789abcdef0",
                              security_groups="sg-0123456789abcdef0")
    request = components.endpoint_config_request(config, "search-cfg")
    valid("sagemaker", "CreateEndpointConfig", request)
    assert request["VpcConfig"] == {"Subnets": ["subnet-0123456789abcdef0"],
                                    "SecurityGroupIds": ["sg-0123456789abcdef0"]}
    assert request["EnableNetworkIsolation"] is True
    # A first component whose model needs the network (requirements from PyPI) gets it.
    assert components.endpoint_config_request(
        config, "search-cfg", isolated=False)["EnableNetworkIsolation"] is False


def test_a_component_in_another_vpc_than_its_endpoint_is_refused_before_anything():
    fake = StubbedAws()
    config = component_config(subnets="subnet-0123456789abcdef0",
                              security_groups="sg-0123456789abcdef0")
    sm = fake.sm()
    sm.add_response("describe_endpoint", endpoint_description("search-cfg"))
    sm.add_response("describe_endpoint_config", config_description("search-cfg"))
    in_vpc = config_description("search-cfg")
    in_vpc["VpcConfig"] = {"Subnets": ["subnet-0fedcba9876543210"],
                           "SecurityGroupIds": ["sg-0123456789abcdef0"]}
    sm.add_response("describe_endpoint_config", in_vpc)
    with pytest.raises(UserError, match="runs in subnets subnet-0fedcba9876543210, and its"
                                        " components run in its network"):
        components.deploy(fake, config)
    fake.done()  # nothing was created: the Stubber would have refused it


def test_component_specification_per_instance_kind():
    gpu = components.component_specification(component_config(), "m", "ml.g5.xlarge")
    assert gpu["ComputeResourceRequirements"] == {
        "MinMemoryRequiredInMb": 4096, "NumberOfCpuCoresRequired": 2.0,
        "NumberOfAcceleratorDevicesRequired": 1}
    cpu = components.component_specification(component_config(cpu_cores=None), "m",
                                             "ml.m5.xlarge")
    assert cpu["ComputeResourceRequirements"] == {"MinMemoryRequiredInMb": 4096}
    valid("sagemaker", "CreateInferenceComponent", {
        "InferenceComponentName": "c", "EndpointName": "e", "VariantName": "AllTraffic",
        "Specification": gpu, "RuntimeConfig": {"CopyCount": 1}})


def test_scaling_requests_match_the_service_models():
    config = component_config()
    valid("application-autoscaling", "RegisterScalableTarget",
          component_scaling.target_request(config))
    tracking = component_scaling.tracking_request(config)
    valid("application-autoscaling", "PutScalingPolicy", tracking)
    valid("application-autoscaling", "PutScalingPolicy", component_scaling.step_request(config))
    valid("cloudwatch", "PutMetricAlarm", component_scaling.alarm_request(config, "arn:x"))
    enum = (botocore.session.get_session().get_service_model("application-autoscaling")
            .shape_for("MetricType").enum)
    assert set(component_scaling.METRICS.values()) <= set(enum)
    assert tracking["ResourceId"] == "inference-component/minilm-en"


@pytest.mark.parametrize("changes, words", [
    ({"component": None}, "needs a component name (--component)"),
    ({"component": "bad_name"}, "--component 'bad_name' is not valid"),
    ({"copies": 0}, "copies must be at least 1"),
    ({"cpu_cores": 0.1}, "--cpu-cores"),
    ({"accelerators": 1, "instance_type": "ml.m5.xlarge"}, "GPU instance type"),
    ({"accelerators": 0}, "accelerators must be at least 1"),
    ({"component_memory_mb": 64}, "--component-memory-mb"),
    ({"min_instances": 3, "max_instances": 2}, "--min-instances <= --max-instances"),
    ({"min_copies": 4, "max_copies": 3}, "--min-copies <= --max-copies"),
    ({"copies": 5}, "within --min-copies..--max-copies"),
    ({"scale_metric": "latency"}, "--scale-metric"),
    ({"target_per_copy": 0.0}, "--target-per-copy"),
    ({"metrics_frequency": 45}, "--metrics-frequency"),
])
def test_bad_component_settings_fail_in_one_line(changes, words):
    with pytest.raises(UserError) as exc:
        cfg.validate(component_config(**changes))
    assert words in str(exc.value) and "\n" not in str(exc.value)


# --- control flow with a Stubber-driven real boto3 client --------------------------------

class StubbedAws:
    """What the deploy code asks of deploy.sagemaker.aws.Aws, with stubbed real clients."""

    region = "us-east-1"

    def __init__(self):
        self.clients, self.stubs = {}, {}
        for name in ("sagemaker", "application-autoscaling", "cloudwatch", "s3"):
            client = boto3.client(name, region_name=self.region, aws_access_key_id="x",
                                  aws_secret_access_key="x")
            self.clients[name], self.stubs[name] = client, Stubber(client)
            self.stubs[name].activate()

    def client(self, name):
        return self.clients[name]

    def sm(self) -> Stubber:
        return self.stubs["sagemaker"]

    def done(self):
        for stub in self.stubs.values():
            stub.assert_no_pending_responses()


def missing(stub: Stubber, method: str, what: str) -> None:
    stub.add_client_error(method, service_error_code="ValidationException",
                          service_message=f"Could not find {what}", http_status_code=400)


def endpoint_description(config_name: str, status: str = "InService") -> dict:
    return {"EndpointName": "search", "EndpointArn": ARN,
            "EndpointConfigName": config_name, "EndpointStatus": status,
            "CreationTime": NOW, "LastModifiedTime": NOW}


def config_description(name: str, model: str | None = None) -> dict:
    # As deploy creates it for our image on a GPU (tests/test_host_ami.py).
    variant = {"VariantName": "AllTraffic", "InstanceType": "ml.g5.xlarge",
               "InferenceAmiVersion": "al2023-ami-sagemaker-inference-gpu-4-1"}
    if model:
        variant["ModelName"] = model
    return {"EndpointConfigName": name, "EndpointConfigArn": ARN,
            "ProductionVariants": [variant], "CreationTime": NOW}


def component_description(name: str, status: str = "InService", reason: str | None = None
                          ) -> dict:
    out = {"InferenceComponentName": name, "InferenceComponentArn": ARN,
           "EndpointName": "search", "EndpointArn": ARN,
           "InferenceComponentStatus": status, "CreationTime": NOW, "LastModifiedTime": NOW,
           "RuntimeConfig": {"DesiredCopyCount": 1, "CurrentCopyCount": 1}}
    if reason:
        out["FailureReason"] = reason
    return out


def expect_model(stub: Stubber, component: str = "minilm-en") -> None:
    """CreateModel for ``component``, tagged with its endpoint and with itself."""
    stub.add_response("create_model", {"ModelArn": ARN}, {
        "ModelName": ANY, "ExecutionRoleArn": ROLE, "EnableNetworkIsolation": True,
        "Tags": [{"Key": names.TAG, "Value": "search"},
                 {"Key": names.COMPONENT_TAG, "Value": component}],
        "PrimaryContainer": {
            "Image": IMAGE, "ModelDataUrl": DATA, "Environment": ANY,
            "ContainerMetricsConfig": {"MetricsEndpoints": [
                {"MetricsEndpointPath": "/metrics", "MetricPublishFrequencyInSeconds": 60}]}}})


def expect_component(stub: Stubber, config) -> None:
    stub.add_response("create_inference_component", {"InferenceComponentArn": ARN}, {
        "InferenceComponentName": config.component, "EndpointName": "search",
        "VariantName": "AllTraffic", "RuntimeConfig": {"CopyCount": config.copies},
        "Specification": {"ModelName": ANY, "StartupParameters": ANY,
                          "ComputeResourceRequirements": {
                              "MinMemoryRequiredInMb": 4096, "NumberOfCpuCoresRequired": 2.0,
                              "NumberOfAcceleratorDevicesRequired": 1}},
        "Tags": ANY})
    stub.add_response("describe_inference_component", component_description(config.component))


def expect_scaling(fake: StubbedAws, config) -> None:
    aas, cw = fake.stubs["application-autoscaling"], fake.stubs["cloudwatch"]
    aas.add_response("register_scalable_target", {},
                     component_scaling.target_request(config))
    aas.add_response("put_scaling_policy", {"PolicyARN": ARN},
                     component_scaling.tracking_request(config))
    aas.add_response("put_scaling_policy", {"PolicyARN": "arn:step"},
                     component_scaling.step_request(config))
    cw.add_response("put_metric_alarm", {}, component_scaling.alarm_request(config, "arn:step"))
    cw.add_response("describe_alarms", {"MetricAlarms": []},
                    {"AlarmNames": [f"{config.component}-scale-out-from-zero"]})


def test_component_joins_an_existing_endpoint(capsys):
    fake, config = StubbedAws(), component_config(max_copies=0)
    sm = fake.sm()
    sm.add_response("describe_endpoint", endpoint_description("search-cfg"))
    sm.add_response("describe_endpoint_config", config_description("search-cfg"))
    sm.add_response("describe_endpoint_config", config_description("search-cfg"))
    missing(sm, "describe_inference_component", "inference component minilm-en")
    expect_model(sm)
    expect_component(sm, config)  # no endpoint config, no endpoint: it exists
    final = components.deploy(fake, config)
    assert final["InferenceComponentStatus"] == "InService"
    fake.done()
    out = capsys.readouterr().out
    assert "InService on search" in out
    assert "creating component minilm-en on search: 1 copy, each 4096 MB, 2 CPU cores, 1 GPU" in out


def test_instance_bounds_given_for_an_existing_endpoint_are_said_to_be_kept(capsys):
    fake = StubbedAws()
    config = dataclasses.replace(component_config(max_copies=0, max_instances=4),
                                 explicit=frozenset({"max_instances"}))
    sm = fake.sm()
    sm.add_response("describe_endpoint", endpoint_description("search-cfg"))
    sm.add_response("describe_endpoint_config", config_description("search-cfg"))
    scaled = config_description("search-cfg")
    scaled["ProductionVariants"][0]["ManagedInstanceScaling"] = {
        "Status": "ENABLED", "MinInstanceCount": 0, "MaxInstanceCount": 2}
    sm.add_response("describe_endpoint_config", scaled)
    missing(sm, "describe_inference_component", "inference component minilm-en")
    expect_model(sm)
    expect_component(sm, config)
    components.deploy(fake, config)
    fake.done()
    assert ("note: endpoint search keeps its own instance bounds (0..2); --min-instances and"
            " --max-instances shape only a new endpoint") in capsys.readouterr().out


def test_new_endpoint_waits_for_in_service_before_placing(capsys, monkeypatch):
    fake, config = StubbedAws(), component_config()
    sm = fake.sm()
    monkeypatch.setattr(components.names, "stamped", lambda base, *spec: f"{base}-stamp")
    missing(sm, "describe_endpoint", "endpoint search")
    missing(sm, "describe_inference_component", "inference component minilm-en")
    expect_model(sm)
    sm.add_response("create_endpoint_config", {"EndpointConfigArn": ARN},
                    components.endpoint_config_request(config, "search-stamp"))
    sm.add_response("create_endpoint", {"EndpointArn": ARN}, {
        "EndpointName": "search", "EndpointConfigName": "search-stamp", "Tags": ANY})
    sm.add_response("describe_endpoint", endpoint_description("search-stamp", "Creating"))
    sm.add_response("describe_endpoint", endpoint_description("search-stamp"))
    expect_component(sm, config)
    expect_scaling(fake, config)
    components.deploy(fake, config)
    fake.done()
    out = capsys.readouterr().out
    assert "creating search for inference components" in out and "scales to zero" in out


def expect_running_component(sm: Stubber, monkeypatch, copies: int) -> None:
    """What an update reads first: the endpoint, its config, the component at ``copies``;
    this run's model is named ``minilm-en-ic-new``."""
    monkeypatch.setattr(components.names, "stamped", lambda base, *spec: f"{base}-new")
    sm.add_response("describe_endpoint", endpoint_description("search-cfg"))
    sm.add_response("describe_endpoint_config", config_description("search-cfg"))
    sm.add_response("describe_endpoint_config", config_description("search-cfg"))
    running = component_description("minilm-en")
    running["RuntimeConfig"] = {"DesiredCopyCount": copies, "CurrentCopyCount": copies}
    sm.add_response("describe_inference_component", running)


def test_update_keeps_the_copies_autoscaling_reached_and_prunes_models(capsys, monkeypatch):
    fake, config = StubbedAws(), component_config(copies=1, min_copies=0, max_copies=6)
    sm = fake.sm()
    expect_running_component(sm, monkeypatch, copies=3)
    expect_model(sm)
    sm.add_response("update_inference_component", {"InferenceComponentArn": ARN}, {
        "InferenceComponentName": "minilm-en", "RuntimeConfig": {"CopyCount": 3},
        "Specification": components.component_specification(config, "minilm-en-ic-new",
                                                             "ml.g5.xlarge")})
    sm.add_response("describe_inference_component", component_description("minilm-en"))
    expect_scaling(fake, config)
    old = "minilm-en-ic-20261201-120000-abcdef"
    sm.add_response("list_models", {"Models": [
        {"ModelName": name, "ModelArn": ARN, "CreationTime": NOW}
        for name in (old, "minilm-en-ic-new")]}, {"NameContains": "minilm-en-ic"})
    # No other component shares the name's prefix, and the old model is tagged for this
    # endpoint: it is this one's.
    sm.add_response("list_inference_components", {"InferenceComponents": []},
                    {"NameContains": "minilm-en"})
    sm.add_response("list_tags", {"Tags": [{"Key": names.TAG, "Value": config.endpoint}]},
                    {"ResourceArn": ARN})
    sm.add_response("delete_model", {}, {"ModelName": old})
    components.deploy(fake, config)
    fake.done()
    assert "updating component minilm-en to minilm-en-ic-new" in capsys.readouterr().out


def test_models_of_an_endpoint_named_like_a_components_models_are_never_its():
    """An endpoint named ``minilm-en-ic`` names its own models ``minilm-en-ic-<stamp>``, as
    component minilm-en names its: its tag keeps them out of the component's delete."""
    fake = StubbedAws()
    sm = fake.sm()
    theirs, mine = "minilm-en-ic-20261201-120000-abcdef", "minilm-en-ic-20261202-120000-abcdef"
    sm.add_response("list_models", {"Models": [
        {"ModelName": name, "ModelArn": f"{ARN}/{name}", "CreationTime": NOW}
        for name in (theirs, mine)]}, {"NameContains": "minilm-en-ic"})
    sm.add_response("list_inference_components", {"InferenceComponents": []},
                    {"NameContains": "minilm-en"})
    sm.add_response("list_tags", {"Tags": [{"Key": names.TAG, "Value": "minilm-en-ic"}]},
                    {"ResourceArn": f"{ARN}/{theirs}"})
    sm.add_response("list_tags", {"Tags": [{"Key": names.TAG, "Value": "search"}]},
                    {"ResourceArn": f"{ARN}/{mine}"})
    ours, kept = components.models_of(fake.clients["sagemaker"], "search", "minilm-en")
    fake.done()
    assert ours == {mine}
    assert kept == {f"model {theirs}": "kept (tagged for endpoint minilm-en-ic)"}


def rolling_update(fake: StubbedAws, config, monkeypatch, serving: str) -> None:
    """A component of 4 copies updated with ROLLOUT=rolling; the update ends serving
    ``serving``."""
    sm, cw = fake.sm(), fake.stubs["cloudwatch"]
    expect_running_component(sm, monkeypatch, copies=4)
    for request in guardrails.alarm_requests(config):  # the alarms come first
        cw.add_response("put_metric_alarm", {}, request)
    expect_model(sm)
    sm.add_response("update_inference_component", {"InferenceComponentArn": ARN}, {
        "InferenceComponentName": "minilm-en", "RuntimeConfig": {"CopyCount": 4},
        "Specification": ANY, "DeploymentConfig": {
            "RollingUpdatePolicy": {
                "MaximumBatchSize": {"Type": "COPY_COUNT", "Value": 2},
                "WaitIntervalInSeconds": 120, "MaximumExecutionTimeoutInSeconds": 600},
            "AutoRollbackConfiguration": {"Alarms": [
                {"AlarmName": "minilm-en-component-rollback-errors"},
                {"AlarmName": "minilm-en-component-rollback-latency"}]}}})
    final = component_description("minilm-en")
    final["Specification"] = {"ModelName": serving}
    sm.add_response("describe_inference_component", final)


def test_rolling_update_replaces_copies_in_batches_under_alarms(capsys, monkeypatch):
    fake = StubbedAws()
    config = component_config(max_copies=0, copies=4, rollout="rolling",
                              rollout_step=50, bake_seconds=120, rollback_p99_ms=300.0,
                              wait_timeout=60)
    cfg.validate(config)
    rolling_update(fake, config, monkeypatch, serving="minilm-en-ic-new")
    sm = fake.sm()
    expect_scaling_removal(fake, "minilm-en")  # COPIES fixed: no autoscaling
    sm.add_response("list_models", {"Models": []}, {"NameContains": "minilm-en-ic"})
    components.deploy(fake, config)
    fake.done()
    out = capsys.readouterr().out
    assert "2 of 4 copies at a time, each baked 120 s" in out
    assert "rolls back if any of minilm-en-component-rollback-errors" in out
    # The alarms watch the component's own metrics.
    dimensions = [r["Dimensions"] for r in guardrails.alarm_requests(config)]
    assert dimensions == [[{"Name": "InferenceComponentName", "Value": "minilm-en"}]] * 2


def test_rolled_back_update_says_so_and_drops_its_model(monkeypatch):
    fake = StubbedAws()
    config = component_config(max_copies=0, copies=4, rollout="rolling",
                              rollout_step=50, bake_seconds=120, rollback_p99_ms=300.0,
                              wait_timeout=60)
    rolling_update(fake, config, monkeypatch, serving="minilm-en-ic-old")
    expect_scaling_removal(fake, "minilm-en")  # COPIES fixed: no autoscaling
    fake.sm().add_response("delete_model", {}, {"ModelName": "minilm-en-ic-new"})
    with pytest.raises(UserError) as exc:
        components.deploy(fake, config)
    fake.done()  # the old models were not pruned: the component still serves one
    text = str(exc.value)
    assert "rolled back" in text and "still serves minilm-en-ic-old" in text
    assert "minilm-en-ic-new was deleted" in text


def test_rolling_one_copy_is_refused_before_anything_is_made():
    fake = StubbedAws()
    config = component_config(max_copies=0, rollout="rolling")
    sm = fake.sm()
    sm.add_response("describe_endpoint", endpoint_description("search-cfg"))
    sm.add_response("describe_endpoint_config", config_description("search-cfg"))
    sm.add_response("describe_endpoint_config", config_description("search-cfg"))
    sm.add_response("describe_inference_component", component_description("minilm-en"))
    with pytest.raises(UserError, match="runs 1; set --copies=2 or more"):
        components.deploy(fake, config)
    fake.done()  # no alarm, no model, no update


def test_turning_autoscaling_off_removes_it(monkeypatch):
    fake, config = StubbedAws(), component_config(max_copies=0)
    calls = []
    monkeypatch.setattr(component_scaling, "remove",
                        lambda aws, name: calls.append(name) or "deleted")
    components.settle_scaling(fake, config, existing=component_description("minilm-en"))
    components.settle_scaling(fake, config, existing=None)
    assert calls == ["minilm-en"]


def test_autoscaling_that_cannot_be_removed_after_an_update_is_a_note(monkeypatch, capsys):
    fake, config = StubbedAws(), component_config(max_copies=0)
    monkeypatch.setattr(component_scaling, "remove",
                        lambda aws, name: "failed (AccessDeniedException: no)")
    components.settle_scaling(fake, config, existing=component_description("minilm-en"))
    assert "note: autoscaling of minilm-en was not checked or removed: failed (Access" in \
        capsys.readouterr().out


def test_endpoint_serving_a_model_directly_is_refused_before_anything():
    fake, config = StubbedAws(), component_config()
    sm = fake.sm()
    sm.add_response("describe_endpoint", endpoint_description("plain-cfg"))
    sm.add_response("describe_endpoint_config", config_description("plain-cfg", model="m"))
    with pytest.raises(UserError, match="serves a model directly"):
        components.deploy(fake, config)
    fake.done()  # and nothing else was called: a Stubber refuses unexpected calls


def test_a_plain_deploy_onto_an_endpoint_of_components_is_refused_before_anything():
    """The other way round: MODE=component forgotten on an endpoint that hosts components."""
    from deploy.sagemaker import rollout

    fake = StubbedAws()
    config = component_config(mode="realtime", component=None, min_copies=None,
                              max_copies=None)
    sm = fake.sm()
    sm.add_response("describe_endpoint", endpoint_description("search-cfg"))
    sm.add_response("describe_endpoint_config", config_description("search-cfg"))
    with pytest.raises(UserError, match="hosts inference components: deploy onto it with"
                                        " --mode=component"):
        rollout.deploy(fake, config)
    fake.done()


def test_failed_component_names_what_exists(monkeypatch):
    fake, config = StubbedAws(), component_config(max_copies=0)
    sm = fake.sm()
    sm.add_response("describe_endpoint", endpoint_description("search-cfg"))
    sm.add_response("describe_endpoint_config", config_description("search-cfg"))
    sm.add_response("describe_endpoint_config", config_description("search-cfg"))
    missing(sm, "describe_inference_component", "inference component minilm-en")
    expect_model(sm)
    sm.add_response("create_inference_component", {"InferenceComponentArn": ARN})
    sm.add_response("describe_inference_component", component_description(
        "minilm-en", "Failed", "CUDA out of memory"))
    with pytest.raises(WaitFailed) as exc:
        components.deploy(fake, config)
    text = str(exc.value)
    assert "CUDA out of memory" in text and "inference component minilm-en" in text
    assert "COMPONENT=minilm-en" in text


def expect_scaling_removal(fake: StubbedAws, name: str) -> None:
    keys = {"ServiceNamespace": "sagemaker", "ResourceId": f"inference-component/{name}",
            "ScalableDimension": "sagemaker:inference-component:DesiredCopyCount"}
    aas, cw = fake.stubs["application-autoscaling"], fake.stubs["cloudwatch"]
    aas.add_response("describe_scaling_policies", {"ScalingPolicies": []}, keys)
    cw.add_response("describe_alarms", {"MetricAlarms": []},
                    {"AlarmNames": [f"{name}-component-scale-out-from-zero",
                                    f"{name}-scale-out-from-zero"]})
    aas.add_response("deregister_scalable_target", {}, keys)


def expect_component_removal(fake: StubbedAws, name: str, other: list[str],
                             scaling_denied: bool = False) -> None:
    sm = fake.sm()
    sm.add_response("describe_endpoint", endpoint_description("search-cfg"))
    sm.add_response("describe_endpoint_config", config_description("search-cfg"))
    sm.add_response("describe_inference_component", component_description(name))
    if scaling_denied:
        fake.stubs["application-autoscaling"].add_client_error(
            "describe_scaling_policies", service_error_code="AccessDeniedException",
            service_message="not authorized to perform DescribeScalingPolicies")
    else:
        expect_scaling_removal(fake, name)
    fake.stubs["cloudwatch"].add_response("describe_alarms", {"MetricAlarms": []}, {"AlarmNames": [
        f"{name}-component-rollback-errors", f"{name}-component-rollback-latency"]})
    sm.add_response("delete_inference_component", {}, {"InferenceComponentName": name})
    missing(sm, "describe_inference_component", f"inference component {name}")
    sm.add_response("list_models", {"Models": []}, {"NameContains": f"{name}-ic"})
    sm.add_response("list_inference_components", {"InferenceComponents": [
        {"InferenceComponentName": n, "InferenceComponentArn": ARN,
         "EndpointName": "search", "EndpointArn": ARN, "VariantName": "AllTraffic",
         "InferenceComponentStatus": "InService", "CreationTime": NOW,
         "LastModifiedTime": NOW} for n in [name, *other]]},
        {"EndpointNameEquals": "search"})


def expect_endpoint_removal(sm: Stubber) -> None:
    """The last component gone: the endpoint "search" and its one config are deleted."""
    sm.add_response("describe_endpoint", endpoint_description("search-cfg"))
    sm.add_response("list_endpoint_configs", {"EndpointConfigs": []}, {"NameContains": "search"})
    sm.add_response("delete_endpoint", {}, {"EndpointName": "search"})
    sm.add_response("delete_endpoint_config", {}, {"EndpointConfigName": "search-cfg"})


def test_delete_keeps_an_endpoint_other_components_use():
    fake = StubbedAws()
    expect_component_removal(fake, "minilm-en", other=["bge-m3"])
    results = dict(components.delete(fake, "search", "minilm-en", poll=0))
    fake.done()  # no DeleteEndpoint was sent: the Stubber would have refused it
    assert results["endpoint search"] == "kept (1 other components: bge-m3)"
    assert results["inference component minilm-en"] == "deleted"


def test_delete_without_autoscaling_rights_still_deletes_the_component():
    """A component that never scaled needs no autoscaling rights to be deleted: the report
    says what could not be checked, and the command fails naming it, after the delete."""
    fake = StubbedAws()
    expect_component_removal(fake, "minilm-en", other=["bge-m3"], scaling_denied=True)
    results = dict(components.delete(fake, "search", "minilm-en", poll=0))
    fake.done()
    assert results["component autoscaling"].startswith("failed (AccessDeniedException")
    assert results["inference component minilm-en"] == "deleted"


def test_a_refused_delete_keeps_the_models_and_endpoint_and_says_why():
    """No wait for a component that stays: the report names SageMaker's answer."""
    fake = StubbedAws()
    sm = fake.sm()
    sm.add_response("describe_endpoint", endpoint_description("search-cfg"))
    sm.add_response("describe_endpoint_config", config_description("search-cfg"))
    sm.add_response("describe_inference_component", component_description("minilm-en"))
    expect_scaling_removal(fake, "minilm-en")
    fake.stubs["cloudwatch"].add_response("describe_alarms", {"MetricAlarms": []})
    sm.add_client_error("delete_inference_component", "AccessDeniedException",
                        "not authorized to perform DeleteInferenceComponent")
    results = dict(components.delete(fake, "search", "minilm-en", poll=0))
    fake.done()  # no model or endpoint was deleted: the Stubber would have refused it
    assert results["inference component minilm-en"].startswith(
        "failed (AccessDeniedException: not authorized")
    assert results["models and endpoint of minilm-en"].startswith("kept")


@pytest.mark.parametrize("before,after", [
    ("Creating", ["Creating", "InService"]),  # a deploy --no-wait: waited for, then deleted
    ("Failed", None),  # reads Failed just after the delete: its old state, not the delete's
])
def test_delete_of_a_component_still_changing_or_failed(before, after):
    fake = StubbedAws()
    sm = fake.sm()
    sm.add_response("describe_endpoint", endpoint_description("search-cfg"))
    sm.add_response("describe_endpoint_config", config_description("search-cfg"))
    sm.add_response("describe_inference_component", component_description("minilm-en", before))
    for status in after or []:
        sm.add_response("describe_inference_component",
                        component_description("minilm-en", status))
    expect_scaling_removal(fake, "minilm-en")
    fake.stubs["cloudwatch"].add_response("describe_alarms", {"MetricAlarms": []})
    sm.add_response("delete_inference_component", {}, {"InferenceComponentName": "minilm-en"})
    if before == "Failed":
        sm.add_response("describe_inference_component",
                        component_description("minilm-en", "Failed", "CUDA out of memory"))
    missing(sm, "describe_inference_component", "inference component minilm-en")
    sm.add_response("list_models", {"Models": []}, {"NameContains": "minilm-en-ic"})
    sm.add_response("list_inference_components", {"InferenceComponents": []},
                    {"EndpointNameEquals": "search"})
    expect_endpoint_removal(sm)
    results = dict(components.delete(fake, "search", "minilm-en", poll=0))
    fake.done()
    assert results["inference component minilm-en"] == "deleted"
    assert results["endpoint search"] == "deleted"


def test_delete_of_the_last_component_removes_the_endpoint():
    fake = StubbedAws()
    expect_component_removal(fake, "minilm-en", other=[])
    sm = fake.sm()
    expect_endpoint_removal(sm)
    results = dict(components.delete(fake, "search", "minilm-en", poll=0))
    fake.done()
    assert results["endpoint search"] == "deleted"


def test_a_component_name_never_deletes_a_plain_endpoint():
    fake = StubbedAws()
    sm = fake.sm()
    sm.add_response("describe_endpoint", endpoint_description("plain-cfg"))
    sm.add_response("describe_endpoint_config", config_description("plain-cfg", model="m"))
    with pytest.raises(UserError, match="serves a model directly and has no inference"):
        components.delete(fake, "search", "typo", poll=0)
    fake.done()


def test_delete_without_component_names_the_components():
    fake = StubbedAws()
    fake.sm().add_response("list_inference_components", {"InferenceComponents": [
        {"InferenceComponentName": "bge-m3", "InferenceComponentArn": ARN,
         "EndpointName": "search", "EndpointArn": ARN, "VariantName": "AllTraffic",
         "InferenceComponentStatus": "InService", "CreationTime": NOW,
         "LastModifiedTime": NOW}]}, {"EndpointNameEquals": "search"})
    with pytest.raises(UserError, match="hosts inference components \\(bge-m3\\)"):
        components.refuse_if_hosting(fake.client("sagemaker"), "search")


def test_component_status_without_autoscaling_rights_says_so():
    from deploy.sagemaker import status

    fake = StubbedAws()
    fake.stubs["application-autoscaling"].add_client_error(
        "describe_scalable_targets", "AccessDeniedException", "not authorized")
    assert status._component_scaling_words(fake, "minilm-en") == (
        "unreadable (AccessDeniedException)")
    fake.done()


def test_the_stubbed_client_still_validates_requests():
    """Why a Stubber test also checks the request against the service model."""
    from botocore.exceptions import ParamValidationError

    fake = StubbedAws()
    fake.sm().add_response("create_inference_component", {"InferenceComponentArn": ARN})
    with pytest.raises(ParamValidationError):
        fake.client("sagemaker").create_inference_component(
            InferenceComponentName="c", EndpointName="e",
            Specification={"ComputeResourceRequirements": {"MinMemoryRequiredInMb": 64}},
            RuntimeConfig={"CopyCount": 1})


# --- against moto's server ------------------------------------------------------------------

class MotoAws:
    region = moto_tests.REGION

    def __init__(self, client):
        self._client = client

    def client(self, name):
        return self._client(name)


def test_scaling_policies_and_alarm_against_moto(aws):
    config = component_config()
    fake = MotoAws(aws)
    component_scaling.put_policies(fake, config)
    keys = {"ServiceNamespace": "sagemaker", "ResourceId": "inference-component/minilm-en",
            "ScalableDimension": component_scaling.DIMENSION}
    policies = aws("application-autoscaling").describe_scaling_policies(**keys)
    kinds = {p["PolicyName"]: p["PolicyType"] for p in policies["ScalingPolicies"]}
    assert kinds == {"minilm-en-target-tracking": "TargetTrackingScaling",
                     "minilm-en-scale-out-from-zero": "StepScaling"}
    step_arn = next(p["PolicyARN"] for p in policies["ScalingPolicies"]
                    if p["PolicyType"] == "StepScaling")
    alarm = aws("cloudwatch").describe_alarms(
        AlarmNames=["minilm-en-component-scale-out-from-zero"])["MetricAlarms"][0]
    assert alarm["MetricName"] == "NoCapacityInvocationFailures"
    assert alarm["AlarmActions"] == [step_arn]
    assert alarm["Dimensions"] == [{"Name": "InferenceComponentName", "Value": "minilm-en"}]
    assert component_scaling.remove(fake, "minilm-en") == "deleted"
    assert not aws("application-autoscaling").describe_scaling_policies(**keys)[
        "ScalingPolicies"]
    assert not aws("cloudwatch").describe_alarms(
        AlarmNames=["minilm-en-component-scale-out-from-zero"])["MetricAlarms"]


def test_an_async_endpoint_named_like_the_component_keeps_its_wake_alarm_against_moto(aws):
    """Alarm names are account-wide: the endpoint's ``<name>-scale-out-from-zero`` is not
    the component's, and deleting the component leaves it; an alarm of the component under
    that older name goes with the component."""
    from deploy.sagemaker import autoscaling

    cloudwatch = aws("cloudwatch")
    endpoint_alarm = autoscaling.wake_alarm_request("minilm-en", "arn:policy",
                                                    names.tags("minilm-en"))
    cloudwatch.put_metric_alarm(**endpoint_alarm)
    config = component_config()
    fake = MotoAws(aws)
    component_scaling.put_policies(fake, config)
    ours = cloudwatch.describe_alarms(AlarmNames=[component_scaling.alarm_name("minilm-en")])
    arn = ours["MetricAlarms"][0]["AlarmArn"]
    assert {"Key": names.TAG, "Value": "search"} in cloudwatch.list_tags_for_resource(
        ResourceARN=arn)["Tags"]
    assert component_scaling.remove(fake, "minilm-en") == "deleted"
    left = cloudwatch.describe_alarms()["MetricAlarms"]
    assert [a["AlarmName"] for a in left] == ["minilm-en-scale-out-from-zero"]
    assert left[0]["Dimensions"] == [{"Name": "EndpointName", "Value": "minilm-en"}]
    cloudwatch.delete_alarms(AlarmNames=["minilm-en-scale-out-from-zero"])
    older = {**component_scaling.alarm_request(config, "arn:step"),
             "AlarmName": "minilm-en-scale-out-from-zero"}
    cloudwatch.put_metric_alarm(**older)
    component_scaling.put_policies(fake, config)  # a redeploy: one alarm, the new name
    assert [a["AlarmName"] for a in cloudwatch.describe_alarms()["MetricAlarms"]] == [
        component_scaling.alarm_name("minilm-en")]
    cloudwatch.put_metric_alarm(**older)
    component_scaling.remove(fake, "minilm-en")
    assert not cloudwatch.describe_alarms()["MetricAlarms"]


def test_turning_scale_to_zero_off_removes_its_wake_against_moto(aws):
    """MIN_COPIES 0 then 1 on a redeploy: the alarm and step policy that added a copy on a
    request finding none are gone, the tracking policy stays."""
    fake = MotoAws(aws)
    component_scaling.put_policies(fake, component_config(min_copies=0))
    component_scaling.put_policies(fake, component_config(min_copies=1))
    policies = aws("application-autoscaling").describe_scaling_policies(
        ServiceNamespace="sagemaker", ResourceId="inference-component/minilm-en",
        ScalableDimension=component_scaling.DIMENSION)["ScalingPolicies"]
    assert [p["PolicyName"] for p in policies] == ["minilm-en-target-tracking"]
    assert not aws("cloudwatch").describe_alarms()["MetricAlarms"]


def test_no_alarm_without_scale_to_zero_against_moto(aws):
    fake = MotoAws(aws)
    component_scaling.put_policies(fake, component_config(min_copies=1))
    assert not aws("cloudwatch").describe_alarms()["MetricAlarms"]


def test_component_model_names_the_metrics_endpoint_against_moto(aws):
    config = component_config()
    sm = aws("sagemaker")
    resources.create_model(sm, config, "minilm-en-1", IMAGE, DATA, True, "us-east-1",
                           metrics=True)
    container = sm.describe_model(ModelName="minilm-en-1")["PrimaryContainer"]
    assert container["ContainerMetricsConfig"] == {"MetricsEndpoints": [
        {"MetricsEndpointPath": "/metrics", "MetricPublishFrequencyInSeconds": 60}]}
    dlc = dataclasses.replace(config, image=None)
    resources.create_model(sm, dlc, "minilm-en-2", IMAGE, DATA, True, "us-east-1",
                           metrics=True)
    assert "ContainerMetricsConfig" not in sm.describe_model(
        ModelName="minilm-en-2")["PrimaryContainer"]


# --- the command line, wired to the same code --------------------------------------------

@pytest.fixture()
def clean_env(monkeypatch, tmp_path):
    import os

    for key in list(os.environ):
        if key.startswith(("AWS_", "DEPLOY_", "RERANK_", "SERVE_")):
            monkeypatch.delenv(key)
    monkeypatch.chdir(tmp_path)


def test_cli_refuses_bad_component_settings_in_one_line(clean_env, capsys):
    from deploy.__main__ import main

    code = main(["deploy", "--mode", "component", "--component", "minilm-en", "--role", ROLE,
                 "--model-data", DATA, "--instance-type", "ml.m5.xlarge", "--accelerators",
                 "1"])
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert code == 2 and len(err) == 1 and "needs a GPU instance type" in err[0]


def test_cli_delete_of_one_component_keeps_the_shared_endpoint(clean_env, capsys, monkeypatch):
    from deploy.__main__ import main
    from deploy.sagemaker import teardown

    fake = StubbedAws()
    fake.sm().add_response("list_models", {"Models": []}, {"NameContains": "minilm-en-ic"})
    expect_component_removal(fake, "minilm-en", other=["bge-m3"])
    monkeypatch.setattr(teardown, "Aws", lambda config: fake)
    monkeypatch.setenv("DEPLOY_POLL_SECONDS", "0")
    code = main(["delete", "--endpoint", "search", "--component", "minilm-en"])
    out = capsys.readouterr().out
    assert code == 0 and "kept (1 other components: bge-m3)" in out
    fake.done()


def test_cli_delete_of_a_shared_endpoint_names_its_components(clean_env, capsys, monkeypatch):
    from deploy.__main__ import main
    from deploy.sagemaker import teardown

    fake = StubbedAws()
    sm = fake.sm()
    sm.add_response("describe_endpoint", endpoint_description("search-cfg"))
    sm.add_response("describe_endpoint_config", config_description("search-cfg"))
    sm.add_response("list_inference_components", {"InferenceComponents": [
        {"InferenceComponentName": "bge-m3", "InferenceComponentArn": ARN,
         "EndpointName": "search", "EndpointArn": ARN, "VariantName": "AllTraffic",
         "InferenceComponentStatus": "InService", "CreationTime": NOW,
         "LastModifiedTime": NOW}]}, {"EndpointNameEquals": "search"})
    monkeypatch.setattr(teardown, "Aws", lambda config: fake)
    assert main(["delete", "--endpoint", "search"]) == 2
    assert "hosts inference components (bge-m3)" in capsys.readouterr().err
    fake.done()  # no DeleteEndpoint


def test_cli_status_lists_the_components(clean_env, capsys, monkeypatch):
    from deploy.__main__ import main
    from deploy.sagemaker import status

    fake = StubbedAws()
    sm = fake.sm()
    sm.add_response("describe_endpoint", endpoint_description("search-cfg"))
    sm.add_response("describe_endpoint_config", config_description("search-cfg"))
    sm.add_response("describe_endpoint_config", config_description("search-cfg"))
    sm.add_response("list_inference_components", {"InferenceComponents": [
        {"InferenceComponentName": "minilm-en", "InferenceComponentArn": ARN,
         "EndpointName": "search", "EndpointArn": ARN, "VariantName": "AllTraffic",
         "InferenceComponentStatus": "InService", "CreationTime": NOW,
         "LastModifiedTime": NOW}]}, {"EndpointNameEquals": "search"})
    sm.add_response("describe_inference_component", component_description("minilm-en"))
    monkeypatch.setattr(status, "Aws", lambda config: fake)
    assert main(["status", "--endpoint", "search"]) == 0
    out = capsys.readouterr().out
    assert "inference components on ml.g5.xlarge" in out
    assert "minilm-en: InService, 1/1 copies" in out
    fake.done()


def test_cli_status_of_one_component_shows_its_rollback_alarms(clean_env, capsys,
                                                                monkeypatch):
    from deploy.__main__ import main
    from deploy.sagemaker import status

    fake = StubbedAws()
    sm, cw = fake.sm(), fake.stubs["cloudwatch"]
    sm.add_response("describe_endpoint", endpoint_description("search-cfg"))
    sm.add_response("describe_endpoint_config", config_description("search-cfg"))
    sm.add_response("describe_endpoint_config", config_description("search-cfg"))
    sm.add_response("list_inference_components", {"InferenceComponents": []},
                    {"EndpointNameEquals": "search"})
    running = component_description("minilm-en")
    running["Specification"] = {"ModelName": "minilm-en-ic-new"}
    sm.add_response("describe_inference_component", running)
    sm.add_response("describe_model", {
        "ModelName": "minilm-en-ic-new", "ModelArn": ARN, "CreationTime": NOW,
        "PrimaryContainer": {"Image": IMAGE, "ModelDataUrl": DATA}})
    fake.stubs["application-autoscaling"].add_response(
        "describe_scalable_targets", {"ScalableTargets": []})
    cw.add_response("describe_alarms", {"MetricAlarms": [
        {"AlarmName": "minilm-en-component-rollback-errors", "StateValue": "ALARM"}]},
        {"AlarmNames": ["minilm-en-component-rollback-errors",
                        "minilm-en-component-rollback-latency"]})
    fake.stubs["s3"].add_client_error("get_object", service_error_code="AccessDenied",
                                      http_status_code=403)
    monkeypatch.setattr(status, "Aws", lambda config: fake)
    main(["status", "--endpoint", "search", "--component", "minilm-en"])
    out = capsys.readouterr().out
    assert IMAGE in out and DATA in out
    assert "manifest     not read (AccessDenied)" in out  # said, not an error
    assert "rollback     minilm-en-component-rollback-errors ALARM" in out
    fake.done()


def test_client_names_the_component():
    import io

    from botocore.response import StreamingBody

    from deploy.client import RerankClient

    session = boto3.Session(aws_access_key_id="x", aws_secret_access_key="x",
                            region_name="us-east-1")
    client = RerankClient("search", session=session, inference_component="minilm-en")
    body = b'{"results": [{"index": 0, "relevance_score": 0.9}]}'
    with Stubber(client.runtime) as stub:
        stub.add_response("invoke_endpoint", {"Body": StreamingBody(io.BytesIO(body),
                                                                    len(body))},
                          {"EndpointName": "search", "InferenceComponentName": "minilm-en",
                           "Body": ANY, "ContentType": "application/json",
                           "Accept": "application/json"})
        assert client.rerank("q", ["d"])[0]["relevance_score"] == 0.9
    with pytest.raises(ValueError, match="inference components"):
        client.rerank_async("q", ["d"], input_location="s3://b/in/")


def test_make_variables_reach_component_settings(clean_env, capsys, monkeypatch):
    from deploy.__main__ import main

    for key, value in {"MODE": "component", "COMPONENT": "minilm-en", "COPIES": "4",
                       "MIN_COPIES": "0", "MAX_COPIES": "3", "ROLE": ROLE,
                       "MODEL_DATA": DATA}.items():
        monkeypatch.setenv(key, value)
    assert main(["--make-variables", "deploy", "--print-trust-policy"]) == 2
    assert "error: COPIES (4) must lie within MIN_COPIES..MAX_COPIES" in capsys.readouterr().err
    monkeypatch.setenv("COPIES", "2")
    assert main(["--make-variables", "deploy", "--print-trust-policy"]) == 0
