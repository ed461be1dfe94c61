"""VPC, network isolation, one KMS key and tags (SUBNETS, SECURITY_GROUPS, KMS_KEY, TAGS):
the settings' limits, the requests as botocore's service model takes them, and `deploy` and
`upload` against moto's server, where requests moto does not store are captured as the
real client sends them (botocore has validated them by then)."""

from __future__ import annotations

import json

import pytest
from botocore.validate import ParamValidator

import test_deploy_moto as moto_tests
from deploy import config as cfg
from deploy.errors import UserError
from deploy.sagemaker import aws as aws_module
from deploy.sagemaker import iam, isolation, modes
from test_deploy_moto import BUCKET, cli, deploy_args

moto_url = moto_tests.moto_url
aws = moto_tests.aws
archive_path = moto_tests.archive_path

KEY = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
NETWORK = ["--subnets", "subnet-0123456789abcdef0,subnet-0fedcba9876543210",
           "--security-groups", "sg-0123456789abcdef0"]


def config(**values) -> cfg.DeployConfig:
    values = {"endpoint": "rr", "instance_type": "ml.m5.xlarge", "make_names": True, **values}
    made = cfg.DeployConfig(**values)
    cfg.validate(made, modes.ENDPOINT_MODES + ("transform",))
    return made


def service_errors(operation: str, params: dict) -> str:
    import botocore.session

    model = botocore.session.get_session().get_service_model("sagemaker")
    return ParamValidator().validate(
        params, model.operation_model(operation).input_shape).generate_report()


@pytest.mark.parametrize("values,needle", [
    ({"subnets": "subnet-0123456789abcdef0"}, "needs both SUBNETS and SECURITY_GROUPS"),
    ({"subnets": "subnet-1", "security_groups": "sg-0123456789abcdef0"}, "'subnet-1'"),
    ({"subnets": "subnet-0123456789abcdef0", "security_groups": "default"}, "'default'"),
    ({"subnets": "subnet-0123456789abcdef0", "security_groups": "sg-0123456789abcdef0",
      "mode": "serverless"}, "serverless endpoints cannot run in a VPC"),
    ({"kms_key": "alias/models"}, "must be a KMS key ARN"),
    ({"tags": "team"}, "'team' is not key=value"),
    ({"tags": "aws:owner=me"}, "aws: are AWS's own"),
    ({"tags": "reranker-component=x"}, "a tag this tool sets itself"),
    ({"tags": ",".join(f"k{i}=v" for i in range(50))}, "at most 49 tags"),
    ({"mode": "component", "component": "c", "tags": ",".join(f"k{i}=v" for i in range(49))},
     "at most 48 tags for an inference component"),
])
def test_impossible_settings_are_refused_before_any_call(values, needle):
    with pytest.raises(UserError, match=needle):
        config(**values)


def test_requests_carry_the_vpc_the_key_and_the_tags():
    settings = config(subnets="subnet-0123456789abcdef0", security_groups="sg-0123456789abcdef0",
                      kms_key=KEY, tags="team=search, cost-center=42")
    assert isolation.vpc_config(settings) == {"VpcConfig": {
        "Subnets": ["subnet-0123456789abcdef0"], "SecurityGroupIds": ["sg-0123456789abcdef0"]}}
    assert isolation.user_tags(settings) == [{"Key": "team", "Value": "search"},
                                             {"Key": "cost-center", "Value": "42"}]
    model = {"ModelName": "m", "ExecutionRoleArn": moto_tests.ROLE,
             "PrimaryContainer": {"Image": "x"}, **isolation.vpc_config(settings)}
    assert service_errors("CreateModel", model) == ""
    job = modes.MODES["transform"].job_request(config(
        mode="transform", kms_key=KEY, transform_input="s3://bkt/in/",
        transform_output="s3://bkt/out/"), "job", "m")
    assert job["TransformOutput"]["KmsKeyId"] == KEY
    assert job["TransformResources"]["VolumeKmsKeyId"] == KEY
    assert service_errors("CreateTransformJob", job) == ""
    extra = modes.MODES["async"].extra_config(config(mode="async", kms_key=KEY,
                                                     async_output="s3://bkt/out/"))
    assert extra["AsyncInferenceConfig"]["OutputConfig"]["KmsKeyId"] == KEY
    serverless = config(mode="serverless", kms_key=KEY)
    assert isolation.volume_key(serverless) == {}  # no volumes; the archive is still encrypted
    assert not isolation.network_isolation(serverless, True)
    assert isolation.network_isolation(config(), True)


@pytest.mark.parametrize("instance_type,local", [
    ("ml.m5.xlarge", False), ("ml.c7i.2xlarge", False), ("ml.inf2.xlarge", False),
    ("ml.g5g.xlarge", False), ("ml.p3.2xlarge", False),
    ("ml.g5.xlarge", True), ("ml.g6e.xlarge", True), ("ml.g4dn.xlarge", True),
    ("ml.m5d.large", True), ("ml.c6id.xlarge", True), ("ml.p4d.24xlarge", True),
    ("ml.p5.48xlarge", True), ("ml.p6-b200.48xlarge", True), ("ml.p6e-gb200.36xlarge", True),
])
def test_volumes_on_local_nvme_disks_get_no_key(instance_type, local, capsys):
    """SageMaker refuses KmsKeyId (CreateEndpointConfig) and VolumeKmsKeyId (a transform)
    for instance types whose volumes are local disks: sending it failed the deploy after
    the upload and CreateModel."""
    settings = config(instance_type=instance_type, kms_key=KEY)
    noted = "encrypts the archive and results in S3" in capsys.readouterr().out
    assert noted is local
    assert isolation.volume_key(settings) == ({} if local else {"KmsKeyId": KEY})
    job = modes.MODES["transform"].job_request(config(
        mode="transform", instance_type=instance_type, kms_key=KEY,
        transform_input="s3://bkt/in/", transform_output="s3://bkt/out/"), "job", "m")
    assert ("VolumeKmsKeyId" in job["TransformResources"]) is not local
    assert job["TransformOutput"]["KmsKeyId"] == KEY  # results in S3 stay encrypted


def test_the_role_may_use_the_network_and_exactly_the_key():
    settings = config(subnets="subnet-0123456789abcdef0", security_groups="sg-0123456789abcdef0",
                      kms_key=KEY, role=moto_tests.ROLE, bucket="bkt")
    policy = iam.role_policy(settings, "us-east-1", "1.dkr.ecr.us-east-1.amazonaws.com/x:1")
    statements = {s.get("Sid"): s for s in policy["Statement"]}
    assert "ec2:CreateNetworkInterface" in statements["VpcNetworkInterfaces"]["Action"]
    assert statements["UseTheKey"]["Resource"] == KEY
    plain = json.dumps(iam.role_policy(config(role=moto_tests.ROLE, bucket="bkt"), "us-east-1",
                                       "1.dkr.ecr.us-east-1.amazonaws.com/x:1"))
    assert "VpcNetworkInterfaces" not in plain and "UseTheKey" not in plain


@pytest.fixture()
def sent(monkeypatch):
    """{operation: [params]} of what the deploy tool's real clients send."""
    captured: dict[str, list[dict]] = {}
    real = aws_module.session

    def observed(settings):
        session = real(settings)
        session.events.register(
            "provide-client-params.sagemaker",
            lambda params, model, **_: captured.setdefault(model.name, []).append(dict(params)))
        return session

    monkeypatch.setattr(aws_module, "session", observed)
    return captured


@pytest.mark.slow  # packages a model, runs moto's server
def test_deploy_in_a_vpc_with_a_key_and_tags(aws, archive_path, capsys, sent):
    code, _, err = cli(capsys, *deploy_args(archive_path, *NETWORK, "--kms-key", KEY,
                                            "--tags", "team=search"))
    assert code == 0, err
    (model,) = sent["CreateModel"]
    assert model["VpcConfig"]["Subnets"] == NETWORK[1].split(",")
    assert model["EnableNetworkIsolation"] is True
    assert {"Key": "team", "Value": "search"} in model["Tags"]
    (endpoint_config,) = sent["CreateEndpointConfig"]
    assert endpoint_config["KmsKeyId"] == KEY
    sm = aws("sagemaker")
    arn = sm.describe_model(ModelName=model["ModelName"])["ModelArn"]
    assert {"Key": "team", "Value": "search"} in sm.list_tags(ResourceArn=arn)["Tags"]
    s3 = aws("s3")
    (obj,) = s3.list_objects_v2(Bucket=BUCKET)["Contents"]
    head = s3.head_object(Bucket=BUCKET, Key=obj["Key"])
    assert (head["ServerSideEncryption"], head["SSEKMSKeyId"]) == ("aws:kms", KEY)


@pytest.mark.slow  # packages a model, runs moto's server
def test_an_archive_stored_without_the_key_goes_up_again_encrypted(aws, archive_path, capsys):
    assert cli(capsys, "upload", "--archive", archive_path, "--bucket", BUCKET)[0] == 0
    code, out, _ = cli(capsys, "upload", "--archive", archive_path, "--bucket", BUCKET,
                       "--kms-key", KEY)
    assert code == 0 and "uploaded" in out and "already uploaded" not in out
    code, out, _ = cli(capsys, "upload", "--archive", archive_path, "--bucket", BUCKET,
                       "--kms-key", KEY)
    assert code == 0 and "already uploaded" in out


@pytest.mark.slow  # packages a model, runs moto's server
def test_serverless_models_go_without_isolation(aws, archive_path, capsys, sent):
    code, _, err = cli(capsys, *deploy_args(archive_path, "--mode", "serverless",
                                            "--kms-key", KEY))
    assert code == 0, err
    (model,) = sent["CreateModel"]
    assert model["EnableNetworkIsolation"] is False and "VpcConfig" not in model
    assert "KmsKeyId" not in sent["CreateEndpointConfig"][0]
