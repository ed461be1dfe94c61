"""upload / deploy / status / delete against moto in server mode, with the real boto3 clients.

moto (5.2.5) runs as a real HTTP server on 127.0.0.1; our CLI reaches it through
DEPLOY_ENDPOINT_URL exactly as it reaches AWS.  What moto cannot do, and so is not tested
against a server here:
- UpdateEndpoint is not implemented (HTTP 500).  The update path is tested up to that call:
  a new model and endpoint config are created, autoscaling is restored when the call
  fails, and the error names every resource that exists.  The rollover itself (waiting for
  the new config, then pruning older ones) is checked with ``judge`` on DescribeEndpoint
  shapes, not against a server.
- Endpoints are InService at once; they never go Creating -> Failed, so the FailureReason
  path is likewise checked with ``judge`` on a recorded DescribeEndpoint shape.
- moto's instance-type list is older than AWS's (no ml.g5): the tests use ml.g4dn.xlarge.
- moto's CreateModel drops EnableNetworkIsolation (DescribeModel always says False), so the
  flag we send is not checked here.
"""

from __future__ import annotations

import hashlib
import json
import logging
import urllib.request

import boto3
import pytest

from deploy.__main__ import main
from deploy.errors import UserError
from deploy.package import archive
from deploy.sagemaker import images, served_manifest, waiter

REGION = "us-east-1"
ROLE = "arn:aws:iam::123456789012:role/reranker-sagemaker"
BUCKET = "models"


@pytest.fixture(scope="module")
def moto_url():
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture(scope="module")
def archive_path(bert_dir, tmp_path_factory):
    path = tmp_path_factory.mktemp("deploy") / "model.tar.gz"
    assert main(["package", str(bert_dir), "-o", str(path)]) == 0
    return path


@pytest.fixture()
def aws(moto_url, monkeypatch, tmp_path):
    """Fresh moto state, fake credentials, and our CLI pointed at the server."""
    request = urllib.request.Request(f"{moto_url}/moto-api/reset", method="POST")
    urllib.request.urlopen(request).close()
    for key in list(__import__("os").environ):
        if key.startswith(("AWS_", "DEPLOY_", "RERANKER_", "RERANK_", "SERVE_")):
            monkeypatch.delenv(key)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "2")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")  # never look for an instance role
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("DEPLOY_ENDPOINT_URL", moto_url)
    monkeypatch.setenv("DEPLOY_POLL_SECONDS", "0.01")
    monkeypatch.chdir(tmp_path)  # no reranker.toml unless a test writes one

    def client(name):
        return boto3.client(name, endpoint_url=moto_url, region_name=REGION)

    client("s3").create_bucket(Bucket=BUCKET)
    return client


def cli(capsys, *argv) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def deploy_args(archive_path, *extra):
    return ["deploy", "--archive", archive_path, "--bucket", BUCKET, "--role", ROLE,
            "--endpoint", "rr", *extra]


def one_error_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    return lines[0]


def test_upload_skips_same_sha256(aws, archive_path, bert_dir, capsys):
    code, out, _ = cli(capsys, "upload", "--archive", archive_path, "--bucket", BUCKET)
    assert code == 0
    uri = out.strip().splitlines()[-1]
    digest = hashlib.sha256(archive_path.read_bytes()).hexdigest()
    assert uri == f"s3://{BUCKET}/rerankers/{bert_dir.name}/{digest[:16]}/model.tar.gz"
    key = uri[len(f"s3://{BUCKET}/"):]
    head = aws("s3").head_object(Bucket=BUCKET, Key=key)
    assert head["Metadata"]["sha256"] == digest
    assert head["ContentLength"] == archive_path.stat().st_size
    code, out, _ = cli(capsys, "upload", "--archive", archive_path, "--bucket", BUCKET)
    assert code == 0 and "already uploaded" in out


def test_large_archives_go_up_in_parts(aws, tmp_path, capsys, monkeypatch):
    from deploy.package import archive
    from deploy.sagemaker import upload

    monkeypatch.setattr(upload, "MULTIPART_BYTES", 5 * 1024 * 1024)  # S3's smallest part
    manifest, blob = tmp_path / "reranker.json", tmp_path / "model.safetensors"
    manifest.write_text('{"model_id": "org/big"}')
    blob.write_bytes(bytes(range(256)) * (12 * 4096))  # 12 MB, incompressible enough
    path = tmp_path / "big.tar.gz"
    # upload refuses an archive without what `package` writes: the manifest and code/.
    archive.write(path, {"reranker.json": manifest, "model.safetensors": blob,
                         "code/inference.py": manifest}, level=0)
    code, out, _ = cli(capsys, "upload", "--archive", path, "--bucket", BUCKET)
    assert code == 0
    key = out.strip().splitlines()[-1][len(f"s3://{BUCKET}/"):]
    assert key.startswith("rerankers/org-big/")
    head = aws("s3").head_object(Bucket=BUCKET, Key=key)
    assert head["ETag"].strip('"').endswith("-3")  # a multipart upload of 3 parts
    assert head["Metadata"]["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()


def test_upload_refusals(aws, archive_path, tmp_path, capsys):
    code, _, err = cli(capsys, "upload", "--archive", archive_path, "--bucket", "no-such")
    assert code == 2 and "does not exist" in one_error_line(err)
    code, _, err = cli(capsys, "upload", "--archive", tmp_path / "none.tar.gz")
    assert code == 2 and "make package" in one_error_line(err)


def test_default_bucket_is_created_private(aws, archive_path, capsys):
    code, out, _ = cli(capsys, "upload", "--archive", archive_path)
    assert code == 0 and "s3://sagemaker-us-east-1-123456789012/" in out
    block = aws("s3").get_public_access_block(Bucket="sagemaker-us-east-1-123456789012")
    assert all(block["PublicAccessBlockConfiguration"].values())


def test_realtime_deploy_with_autoscaling_then_delete(aws, archive_path, capsys):
    code, out, err = cli(capsys, *deploy_args(
        archive_path, "--instance-type", "ml.g4dn.xlarge", "--max-capacity", "4",
        "--env", "RERANK_MAX_LENGTH=256"))
    assert code == 0, err
    sm = aws("sagemaker")
    endpoint = sm.describe_endpoint(EndpointName="rr")
    assert endpoint["EndpointStatus"] == "InService"
    config = sm.describe_endpoint_config(EndpointConfigName=endpoint["EndpointConfigName"])
    variant = config["ProductionVariants"][0]
    assert (variant["InstanceType"], variant["InitialInstanceCount"]) == ("ml.g4dn.xlarge", 1)
    model = sm.describe_model(ModelName=variant["ModelName"])
    container = model["PrimaryContainer"]
    assert container["Image"] == images.dlc_image(REGION, "ml.g4dn.xlarge",
                                                  transformers_version="4.51.3")
    assert "-gpu-" in container["Image"]
    assert container["Environment"]["SAGEMAKER_PROGRAM"] == "inference.py"
    assert container["Environment"]["RERANK_MAX_LENGTH"] == "256"
    # SageMaker stops waiting for a real-time answer after 60 s: so does our server.
    assert container["Environment"]["SERVE_REQUEST_TIMEOUT"] == "60"
    assert not [k for k in container["Environment"] if "SECRET" in k or k.startswith("AWS_")]
    assert model["ExecutionRoleArn"] == ROLE  # (moto drops EnableNetworkIsolation; see top)
    bucket, _, key = container["ModelDataUrl"][5:].partition("/")
    assert aws("s3").head_object(Bucket=bucket, Key=key)["Metadata"]["sha256"]

    aas = aws("application-autoscaling")
    target = aas.describe_scalable_targets(ServiceNamespace="sagemaker")["ScalableTargets"]
    assert [(t["ResourceId"], t["MinCapacity"], t["MaxCapacity"]) for t in target] == [
        ("endpoint/rr/variant/AllTraffic", 1, 4)]
    policy = aas.describe_scaling_policies(ServiceNamespace="sagemaker")["ScalingPolicies"][0]
    tracking = policy["TargetTrackingScalingPolicyConfiguration"]
    assert policy["PolicyType"] == "TargetTrackingScaling"
    assert tracking["PredefinedMetricSpecification"]["PredefinedMetricType"] == \
        "SageMakerVariantInvocationsPerInstance"
    assert tracking["TargetValue"] == 100.0

    code, out, _ = cli(capsys, "status", "--endpoint", "rr")
    assert code == 0 and "InService" in out and container["Image"] in out
    assert "1..4 instances, SageMakerVariantInvocationsPerInstance at 100" in out
    # What the model serves, read from the archive's first bytes in S3.
    manifest = json.loads(archive.read_member(archive_path, archive.MANIFEST))
    assert f"model id     {manifest['model_id']}\n" in out
    assert f"max_length   {manifest['max_length']}\n" in out

    code, out, err = cli(capsys, "delete", "--endpoint", "rr", "--purge")
    assert code == 0, err
    assert sm.list_endpoints()["Endpoints"] == []
    assert sm.list_endpoint_configs()["EndpointConfigs"] == []
    assert sm.list_models()["Models"] == []
    assert aws("s3").list_objects_v2(Bucket=BUCKET).get("KeyCount", 0) == 0
    assert aas.describe_scalable_targets(ServiceNamespace="sagemaker")["ScalableTargets"] == []
    # Again: everything is already gone, which is fine.
    code, out, _ = cli(capsys, "delete", "--endpoint", "rr")
    assert code == 0 and "already gone" in out


def test_realtime_autoscaling_on_concurrency(aws, archive_path, capsys):
    """TARGET_CONCURRENCY tracks SageMaker's 10-second concurrency metric instead of
    invocations per minute; it is refused where it would be ignored."""
    code, out, err = cli(capsys, *deploy_args(archive_path, "--max-capacity", "3",
                                              "--target-concurrency", "6"))
    assert code == 0, err
    assert "target 6 concurrent requests per instance" in out
    (policy,) = aws("application-autoscaling").describe_scaling_policies(
        ServiceNamespace="sagemaker")["ScalingPolicies"]
    tracking = policy["TargetTrackingScalingPolicyConfiguration"]
    assert tracking["PredefinedMetricSpecification"]["PredefinedMetricType"] == \
        "SageMakerVariantConcurrentRequestsPerModelHighResolution"
    assert tracking["TargetValue"] == 6.0
    code, out, _ = cli(capsys, "status", "--endpoint", "rr")
    assert "1..3 instances, SageMakerVariantConcurrentRequestsPerModelHighResolution at 6" in out
    assert cli(capsys, "delete", "--endpoint", "rr")[0] == 0
    for extra, words in (
            (["--target-concurrency", "6"], "applies to real-time endpoints with autoscaling"),
            (["--max-capacity", "2", "--target-concurrency", "-1"], "must be above 0"),
            (["--mode", "async", "--async-output", "s3://models/o/", "--max-capacity", "2",
              "--target-concurrency", "6"], "async endpoints on their backlog")):
        code, _, err = cli(capsys, *deploy_args(archive_path, *extra))
        assert code == 2 and words in one_error_line(err)
    assert aws("sagemaker").list_endpoints()["Endpoints"] == []


def test_an_update_sagemaker_cannot_make_is_refused_before_anything(aws, archive_path,
                                                                      capsys):
    """Real-time to async (or back) is refused by SageMaker only after our model and config
    exist: we refuse it first, and leave what is there as it is."""
    assert cli(capsys, *deploy_args(archive_path))[0] == 0
    sm = aws("sagemaker")
    before = {m["ModelName"] for m in sm.list_models()["Models"]}
    code, _, err = cli(capsys, *deploy_args(archive_path, "--mode", "async", "--async-output",
                                            "s3://models/async-out/"))
    assert code == 2 and "is a real-time or serverless endpoint" in one_error_line(err)
    assert {m["ModelName"] for m in sm.list_models()["Models"]} == before
    assert cli(capsys, "delete", "--endpoint", "rr")[0] == 0


def test_an_identity_without_autoscaling_rights_updates_reads_and_deletes(
        aws, archive_path, capsys, monkeypatch):
    """Autoscaling rights are needed only when an endpoint autoscales: without them an
    update goes on with a note, status says so, and delete still deletes."""
    from botocore.stub import Stubber

    from deploy.sagemaker.aws import Aws

    assert cli(capsys, *deploy_args(archive_path))[0] == 0
    denied = boto3.client("application-autoscaling", region_name=REGION,
                          aws_access_key_id="x", aws_secret_access_key="x")
    stub = Stubber(denied)
    for _ in range(3):
        stub.add_client_error("describe_scalable_targets", "AccessDeniedException",
                              "not authorized to perform: DescribeScalableTargets")
    stub.activate()
    real = Aws.client
    monkeypatch.setattr(Aws, "client", lambda self, service: (
        denied if service == "application-autoscaling" else real(self, service)))
    code, out, err = cli(capsys, *deploy_args(archive_path, "--instance-count", "2"))
    assert "autoscaling of rr was not checked (AccessDeniedException" in out
    # moto lacks UpdateEndpoint (see top): the update's own failure is the error
    assert code == 2 and "UpdateEndpoint failed" in one_error_line(err)
    code, out, _ = cli(capsys, "status", "--endpoint", "rr")
    assert "unreadable (AccessDeniedException" in out
    code, out, _ = cli(capsys, "delete", "--endpoint", "rr")
    assert code == 0 and "not checked (AccessDeniedException" in out
    assert aws("sagemaker").list_endpoints()["Endpoints"] == []
    stub.assert_no_pending_responses()


def test_a_purge_that_cannot_reach_s3_still_reports_what_was_deleted(
        aws, archive_path, capsys, monkeypatch):
    from botocore.config import Config

    from deploy.sagemaker.aws import Aws

    assert cli(capsys, *deploy_args(archive_path))[0] == 0
    unreachable = boto3.client("s3", region_name=REGION, endpoint_url="http://127.0.0.1:9",
                               aws_access_key_id="x", aws_secret_access_key="x",
                               config=Config(retries={"max_attempts": 1}, connect_timeout=2))
    real = Aws.client
    monkeypatch.setattr(Aws, "client", lambda self, service: (
        unreachable if service == "s3" else real(self, service)))
    code, out, err = cli(capsys, "delete", "--endpoint", "rr", "--purge")
    assert code == 2 and "could not delete s3://" in one_error_line(err)
    assert "deleted       endpoint rr" in out
    assert "failed (Could not connect" in out
    assert aws("sagemaker").list_endpoints()["Endpoints"] == []


def test_second_deploy_goes_through_a_new_endpoint_config(aws, archive_path, capsys):
    """Update = new model + new config + UpdateEndpoint; moto lacks the last (see top)."""
    assert cli(capsys, *deploy_args(archive_path, "--max-capacity", "3"))[0] == 0
    sm = aws("sagemaker")
    first = sm.describe_endpoint(EndpointName="rr")["EndpointConfigName"]
    code, _, err = cli(capsys, *deploy_args(archive_path, "--instance-count", "2",
                                            "--max-capacity", "3"))
    line = one_error_line(err)
    assert code == 2 and "UpdateEndpoint failed" in line
    assert f"is InService on {first}" in line
    assert "next successful `make deploy ENDPOINT=rr` prunes them" in line
    configs = sorted(c["EndpointConfigName"] for c in sm.list_endpoint_configs()[
        "EndpointConfigs"])
    assert len(configs) == 2 and first in configs
    second = next(c for c in configs if c != first)
    assert f"endpoint config {second}" in line and f"model {second}" in line
    variant = sm.describe_endpoint_config(EndpointConfigName=second)["ProductionVariants"][0]
    assert variant["InitialInstanceCount"] == 2
    # The scaling target taken away for the update is back after the failed call.
    aas = aws("application-autoscaling")
    assert len(aas.describe_scalable_targets(ServiceNamespace="sagemaker")["ScalableTargets"]) == 1
    assert len(aas.describe_scaling_policies(ServiceNamespace="sagemaker")["ScalingPolicies"]) == 1
    code, out, _ = cli(capsys, "delete", "--endpoint", "rr")
    assert code == 0 and out.count("deleted") >= 5
    assert sm.list_models()["Models"] == [] and sm.list_endpoint_configs()["EndpointConfigs"] == []


def test_failed_create_leaves_nothing(aws, archive_path, capsys):
    code, _, err = cli(capsys, *deploy_args(archive_path, "--instance-type", "ml.nosuch.xlarge"))
    line = one_error_line(err)
    assert code == 2 and "ValidationException" in line and "nothing was left behind" in line
    sm = aws("sagemaker")
    assert sm.list_models()["Models"] == [] and sm.list_endpoint_configs()["EndpointConfigs"] == []
    assert sm.list_endpoints()["Endpoints"] == []


def test_serverless_with_provisioned_concurrency(aws, archive_path, capsys):
    code, _, err = cli(capsys, *deploy_args(archive_path, "--mode", "serverless",
                                            "--max-concurrency", "5",
                                            "--provisioned-concurrency", "2"))
    assert code == 0, err
    sm = aws("sagemaker")
    name = sm.describe_endpoint(EndpointName="rr")["EndpointConfigName"]
    variant = sm.describe_endpoint_config(EndpointConfigName=name)["ProductionVariants"][0]
    assert variant["ServerlessConfig"]["ProvisionedConcurrency"] == 2
    for extra, needle in ((["--mode", "serverless", "--max-concurrency", "5",
                            "--provisioned-concurrency", "6"], "must be 0..--max-concurrency"),
                          (["--provisioned-concurrency", "1"], "applies to serverless")):
        code, _, err = cli(capsys, *deploy_args(archive_path, *extra))
        assert code == 2 and needle in one_error_line(err)


def test_serverless_deploy(aws, archive_path, capsys):
    code, _, err = cli(capsys, *deploy_args(archive_path, "--mode", "serverless",
                                            "--memory-mb", "2048", "--max-concurrency", "5"))
    assert code == 0, err
    sm = aws("sagemaker")
    name = sm.describe_endpoint(EndpointName="rr")["EndpointConfigName"]
    variant = sm.describe_endpoint_config(EndpointConfigName=name)["ProductionVariants"][0]
    assert variant["ServerlessConfig"] == {"MemorySizeInMB": 2048, "MaxConcurrency": 5}
    assert "InstanceType" not in variant
    image = sm.describe_model(ModelName=variant["ModelName"])["PrimaryContainer"]["Image"]
    assert "-cpu-" in image


@pytest.mark.parametrize("extra,words", [
    (["--mode", "serverless", "--memory-mb", "1000"], "--memory-mb"),
    (["--mode", "serverless", "--max-concurrency", "500"], "--max-concurrency"),
    (["--mode", "async"], "--async-output"),
    (["--mode", "batch"], "mode must be one of"),
    (["--max-capacity", "2", "--min-capacity", "3"], "below --min-capacity"),
    (["--instance-type", "m5.xlarge"], "not a SageMaker instance type"),
    (["--instance-type", "ml.inf2.xlarge"], "Neuron"),
    (["--transformers-version", "3.0.0"], "no Hugging Face DLC"),
    (["--env", "HF_TOKEN=hf_secret"], "refusing"),
    (["--env", "AWS_SECRET_ACCESS_KEY=x"], "refusing"),
    (["--env", "RERANK_MAX_LENGTH=abc"], "RERANK_MAX_LENGTH"),
    (["--env", "RERANK_MAX_LENGHT=128"], "unknown container setting"),
    (["--endpoint", "bad_name!"], "not valid"),
    (["--endpoint", "a-" * 31 + "bc"], "not valid"),  # 64: the pattern alone allows it
])
def test_bad_settings_are_refused_before_any_call(aws, archive_path, capsys, extra, words):
    code, _, err = cli(capsys, *deploy_args(archive_path), *extra)
    assert code == 2 and words in one_error_line(err)
    sm = aws("sagemaker")
    assert sm.list_models()["Models"] == [] and sm.list_endpoints()["Endpoints"] == []


def test_role_is_required(aws, archive_path, capsys):
    code, _, err = cli(capsys, "deploy", "--archive", archive_path, "--bucket", BUCKET)
    assert code == 2 and "set --role" in one_error_line(err)


def test_no_credentials_and_no_endpoint_are_one_line(aws, archive_path, capsys, monkeypatch):
    code, _, err = cli(capsys, "status", "--endpoint", "never-made")
    assert code == 2 and "does not exist" in one_error_line(err)
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    code, _, err = cli(capsys, *deploy_args(archive_path))
    assert code == 2 and "no AWS credentials" in one_error_line(err)


def test_async_deploy(aws, archive_path, capsys):
    topic = "arn:aws:sns:us-east-1:123456789012:reranked"
    code, _, err = cli(capsys, *deploy_args(
        archive_path, "--mode", "async", "--async-output", "s3://models/async-out/",
        "--sns-success", topic, "--max-capacity", "2"))
    assert code == 0, err
    sm = aws("sagemaker")
    name = sm.describe_endpoint(EndpointName="rr")["EndpointConfigName"]
    config = sm.describe_endpoint_config(EndpointConfigName=name)["AsyncInferenceConfig"]
    assert config["OutputConfig"]["S3OutputPath"] == "s3://models/async-out/"
    assert config["OutputConfig"]["NotificationConfig"] == {"SuccessTopic": topic}
    policy = aws("application-autoscaling").describe_scaling_policies(
        ServiceNamespace="sagemaker")["ScalingPolicies"][0]
    metric = policy["TargetTrackingScalingPolicyConfiguration"]["CustomizedMetricSpecification"]
    assert metric["MetricName"] == "ApproximateBacklogSizePerInstance"
    model = sm.describe_model(ModelName=sm.list_models()["Models"][0]["ModelName"])
    # An async invocation may run for an hour: no request deadline of ours, and the DLC's
    # model server waits as long, in seconds (its variable without _SECONDS counts minutes).
    environment = model["PrimaryContainer"]["Environment"]
    assert "SERVE_REQUEST_TIMEOUT" not in environment
    assert environment["SAGEMAKER_MODEL_SERVER_TIMEOUT_SECONDS"] == "3600"
    assert "SAGEMAKER_MODEL_SERVER_TIMEOUT" not in environment


def test_async_scales_to_zero_and_wakes_on_the_backlog(aws, archive_path, capsys):
    args = ["--mode", "async", "--async-output", "s3://models/async-out/", "--max-capacity", "2",
            "--scale-to-zero", "1"]
    code, out, err = cli(capsys, *deploy_args(archive_path, *args))
    assert code == 0 and "scales to zero" in out, err
    aas = aws("application-autoscaling")
    (target,) = aas.describe_scalable_targets(ServiceNamespace="sagemaker")["ScalableTargets"]
    assert (target["MinCapacity"], target["MaxCapacity"]) == (0, 2)
    policies = {p["PolicyType"]: p for p in aas.describe_scaling_policies(
        ServiceNamespace="sagemaker")["ScalingPolicies"]}
    step = policies["StepScaling"]["StepScalingPolicyConfiguration"]
    assert step["StepAdjustments"] == [{"MetricIntervalLowerBound": 0.0, "ScalingAdjustment": 1}]
    (alarm,) = aws("cloudwatch").describe_alarms(
        AlarmNames=["rr-scale-out-from-zero"])["MetricAlarms"]
    assert alarm["MetricName"] == "HasBacklogWithoutCapacity"
    assert alarm["AlarmActions"] == [policies["StepScaling"]["PolicyARN"]]
    assert aws("cloudwatch").list_tags_for_resource(ResourceARN=alarm["AlarmArn"])["Tags"] == [
        {"Key": "reranker-endpoint", "Value": "rr"}]
    # An update lifts the scaling (moto then fails the call) and puts it all back.
    code, _, err = cli(capsys, *deploy_args(archive_path, *args, "--instance-count", "2"))
    assert code == 2 and "UpdateEndpoint failed" in one_error_line(err)
    (alarm,) = aws("cloudwatch").describe_alarms(
        AlarmNames=["rr-scale-out-from-zero"])["MetricAlarms"]
    steps = [p for p in aas.describe_scaling_policies(ServiceNamespace="sagemaker")[
        "ScalingPolicies"] if p["PolicyType"] == "StepScaling"]
    assert alarm["AlarmActions"] == [steps[0]["PolicyARN"]]
    assert cli(capsys, "delete", "--endpoint", "rr")[0] == 0
    assert aws("cloudwatch").describe_alarms()["MetricAlarms"] == []
    for extra in (["--scale-to-zero", "1"], ["--mode", "async", "--async-output",
                                              "s3://models/o/", "--scale-to-zero", "1"]):
        code, _, err = cli(capsys, *deploy_args(archive_path, *extra))
        assert code == 2 and "applies to async endpoints with autoscaling" in one_error_line(err)


def test_config_file_and_environment(aws, archive_path, capsys, tmp_path, monkeypatch):
    (tmp_path / "reranker.toml").write_text(
        f'[deploy]\nendpoint = "from-file"\nrole = "{ROLE}"\nbucket = "{BUCKET}"\n'
        f'archive = "{archive_path}"\ninstance_count = 2\n'
        '[container]\nRERANK_MAX_LENGTH = 128\nRERANK_LONG_DOCUMENTS = "chunk"\n')
    monkeypatch.setenv("DEPLOY_INSTANCE_TYPE", "ml.c5.xlarge")  # environment beats the file
    monkeypatch.setenv("RERANK_MAX_LENGTH", "64")                 # and so do RERANK_* vars
    code, _, err = cli(capsys, "deploy", "--instance-count", "3")  # flags beat both
    assert code == 0, err
    sm = aws("sagemaker")
    name = sm.describe_endpoint(EndpointName="from-file")["EndpointConfigName"]
    variant = sm.describe_endpoint_config(EndpointConfigName=name)["ProductionVariants"][0]
    assert (variant["InstanceType"], variant["InitialInstanceCount"]) == ("ml.c5.xlarge", 3)
    env = sm.describe_model(ModelName=variant["ModelName"])["PrimaryContainer"]["Environment"]
    assert env["RERANK_MAX_LENGTH"] == "64" and env["RERANK_LONG_DOCUMENTS"] == "chunk"
    (tmp_path / "reranker.toml").write_text("[deploy]\nendpont = 'typo'\n")
    code, _, err = cli(capsys, "deploy")
    assert code == 2 and "unknown setting 'endpont'" in one_error_line(err)


def test_role_policy_is_least_privilege(aws, capsys):
    code, out, _ = cli(capsys, "deploy", "--print-role-policy", "--role", ROLE, "--bucket",
                       BUCKET, "--endpoint", "rr", "--mode", "async", "--async-output",
                       "s3://models/out/", "--sns-error",
                       "arn:aws:sns:us-east-1:123456789012:e")
    assert code == 0
    statements = {s["Sid"]: s for s in json.loads(out)["Statement"]}
    assert statements["ReadModelArchives"]["Resource"] == "arn:aws:s3:::models/rerankers/*"
    assert statements["ReadModelArchives"]["Action"] == "s3:GetObject"
    assert statements["WriteAsyncResults"]["Resource"] == ["arn:aws:s3:::models/out/*"]
    assert statements["NotifyAsync"]["Resource"] == ["arn:aws:sns:us-east-1:123456789012:e"]
    assert all("*" not in str(s["Action"]) for s in statements.values())
    assert "Endpoints/rr" in json.dumps(statements["EndpointLogs"])
    code, out, _ = cli(capsys, "deploy", "--print-trust-policy")
    assert json.loads(out)["Statement"][0]["Principal"] == {"Service": "sagemaker.amazonaws.com"}


def test_dlc_image_lookup():
    assert images.dlc_image("us-east-1", "ml.g4dn.xlarge", transformers_version="4.37.0") == (
        "763104351884.dkr.ecr.us-east-1.amazonaws.com/huggingface-pytorch-inference:"
        "2.1.0-transformers4.37.0-gpu-py310-cu118-ubuntu20.04")
    assert images.dlc_image("eu-west-1", "ml.m5.xlarge", transformers_version="4.37") == (
        "763104351884.dkr.ecr.eu-west-1.amazonaws.com/huggingface-pytorch-inference:"
        "2.1.0-transformers4.37.0-cpu-py310-ubuntu22.04")
    china = images.dlc_image("cn-north-1", None, serverless=True)
    assert china.startswith("727897471807.dkr.ecr.cn-north-1.amazonaws.com.cn/")
    with pytest.raises(UserError, match="region"):
        images.dlc_image("mars-north-1", "ml.m5.xlarge")
    with pytest.raises(UserError, match="PyTorch"):
        images.dlc_image("us-east-1", "ml.m5.xlarge", transformers_version="4.37.0",
                         pytorch_version="1.0")


def _described(status, config="rr-new", reason=None):
    out = {"EndpointName": "rr", "EndpointStatus": status, "EndpointConfigName": config}
    if reason:
        out["FailureReason"] = reason
    return out


def test_judge_reads_describe_endpoint():
    assert waiter.judge(_described("Creating"), "rr-new") is False
    assert waiter.judge(_described("Updating", "rr-old"), "rr-new") is False
    assert waiter.judge(_described("InService"), "rr-new") is True
    reason = "The primary container for production variant AllTraffic did not pass the ping" \
             " health check."
    with pytest.raises(UserError, match="is Failed: The primary container"):
        waiter.judge(_described("Failed", reason=reason), "rr-new")
    with pytest.raises(UserError, match="rolled back to rr-old: out of capacity"):
        waiter.judge(_described("InService", "rr-old", "out of capacity"), "rr-new")


def test_status_says_what_model_data_holds_whatever_it_is(aws, archive_path, tmp_path):
    """An archive package wrote: its manifest from a ranged read; another tool's archive, a
    missing object, a prefix: one row saying so, never an error."""
    s3 = aws("s3")
    s3.upload_file(str(archive_path), BUCKET, "ours/model.tar.gz")
    other = tmp_path / "other.tar.gz"
    weights = tmp_path / "config.json"
    weights.write_text("{}")
    archive.write(other, {"config.json": weights})
    s3.upload_file(str(other), BUCKET, "theirs/model.tar.gz")
    s3.put_object(Bucket=BUCKET, Key="files/reranker.json", Body=b'{"model_id": "m"}')

    class Clients:
        def client(self, name):
            return aws(name)

    def rows(uri):
        return dict(served_manifest.rows(Clients(), uri))

    manifest = json.loads(archive.read_member(archive_path, archive.MANIFEST))
    assert rows(f"s3://{BUCKET}/ours/model.tar.gz")["model id"] == manifest["model_id"]
    assert "not written by package" in rows(f"s3://{BUCKET}/theirs/model.tar.gz")["manifest"]
    assert rows(f"s3://{BUCKET}/gone/model.tar.gz") == {"manifest": "not read (NoSuchKey)"}
    assert rows(f"s3://{BUCKET}/files/") == {"model id": "m"}
    assert "not written by package" in rows(f"s3://{BUCKET}/empty/")["manifest"]
