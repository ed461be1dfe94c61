"""Data capture (CAPTURE=s3://..., CAPTURE_PERCENT): the endpoint config, the role policy,
status, the CloudFormation template, and the refusals, against moto's server with the
real boto3 clients."""

from __future__ import annotations

import json

import pytest

import test_deploy_moto as moto_tests
from test_deploy_moto import BUCKET, ROLE, cli, deploy_args, one_error_line

moto_url = moto_tests.moto_url
aws = moto_tests.aws
archive_path = moto_tests.archive_path

pytestmark = pytest.mark.slow  # packages a model, runs moto's server

CAPTURE = f"s3://{BUCKET}/capture/"
KEY = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"


def test_deploy_captures_a_sample_to_s3(aws, archive_path, capsys):
    code, _, err = cli(capsys, *deploy_args(archive_path, "--capture", CAPTURE,
                                            "--capture-percent", "25", "--kms-key", KEY))
    assert code == 0, err
    sm = aws("sagemaker")
    name = sm.describe_endpoint(EndpointName="rr")["EndpointConfigName"]
    capture = sm.describe_endpoint_config(EndpointConfigName=name)["DataCaptureConfig"]
    assert capture == {
        "EnableCapture": True, "InitialSamplingPercentage": 25,
        "DestinationS3Uri": f"s3://{BUCKET}/capture", "KmsKeyId": KEY,
        "CaptureOptions": [{"CaptureMode": "Input"}, {"CaptureMode": "Output"}],
        "CaptureContentTypeHeader": {"JsonContentTypes": ["application/json"]}}
    _, printed, _ = cli(capsys, "status", "--endpoint", "rr")
    # moto's DescribeEndpoint has no CurrentSamplingPercentage (AWS's has): "?%" here.
    assert f"% of requests to s3://{BUCKET}/capture (Started)" in printed


def test_the_role_may_write_there_and_only_there(aws, capsys):
    code, printed, err = cli(capsys, "deploy", "--print-role-policy", "--role", ROLE,
                             "--bucket", BUCKET, "--capture", CAPTURE)
    assert code == 0, err
    statements = {s["Sid"]: s for s in json.loads(printed)["Statement"]}
    assert statements["WriteDataCapture"] == {
        "Sid": "WriteDataCapture", "Effect": "Allow", "Action": "s3:PutObject",
        "Resource": f"arn:aws:s3:::{BUCKET}/capture/*"}


def test_the_template_captures_too(aws, archive_path, capsys, tmp_path):
    out = tmp_path / "t.json"
    code, _, err = cli(capsys, "cloudformation", *deploy_args(archive_path)[1:],
                       "--capture", CAPTURE, "--out", out)
    assert code == 0, err
    config = json.loads(out.read_text())["Resources"]["EndpointConfig"]["Properties"]
    assert config["DataCaptureConfig"]["InitialSamplingPercentage"] == 10  # the default


@pytest.mark.parametrize("extra, message", [
    (["--capture", "bucket/prefix"], "must be an s3:// prefix"),
    (["--capture", CAPTURE, "--capture-percent", "0"], "must be 1..100"),
    (["--capture", CAPTURE, "--mode", "serverless"], "SageMaker offers none for"),
    (["--capture", CAPTURE, "--mode", "component", "--component", "c"],
     "SageMaker offers none for"),
])
def test_refusals_before_any_call(aws, archive_path, capsys, extra, message):
    code, _, err = cli(capsys, *deploy_args(archive_path, *extra))
    assert code == 2 and message in one_error_line(err)
    assert aws("sagemaker").list_models()["Models"] == []
