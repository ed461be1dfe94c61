"""`ecr-login` (make docker-push): the repository is checked and the password printed, against
moto's ECR with the real boto3 client; bad input and missing credentials are one line."""

from __future__ import annotations

import boto3
import pytest

from deploy.errors import UserError
from deploy.sagemaker import ecr
from test_deploy_moto import REGION, aws, cli, moto_url, one_error_line  # noqa: F401

ACCOUNT = "123456789012"
REPO = f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/reranker-serving"


def test_parse_takes_only_repository_uris():
    assert ecr.parse(REPO) == (ACCOUNT, REGION, "reranker-serving")
    for bad in ("reranker-serving", f"{REPO}:cpu", "docker.io/library/python", ""):
        with pytest.raises(UserError, match="not an ECR repository URI"):
            ecr.parse(bad)


def test_login_checks_the_repository_then_prints_the_password(aws, moto_url, capsys):  # noqa: F811
    code, _, err = cli(capsys, "ecr-login", REPO)
    assert code == 2 and "aws ecr create-repository" in one_error_line(err)
    boto3.client("ecr", endpoint_url=moto_url, region_name=REGION).create_repository(
        repositoryName="reranker-serving")
    code, out, _ = cli(capsys, "ecr-login", REPO)
    assert code == 0 and len(out.strip().splitlines()) == 1 and out.strip()


def test_login_without_credentials_says_how_to_get_them(aws, capsys, monkeypatch):  # noqa: F811
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    code, _, err = cli(capsys, "ecr-login", REPO)
    assert code == 2 and "aws configure" in one_error_line(err)
