"""Least-privilege IAM documents for the SageMaker execution role of one reranker endpoint.

The role may read the model archives under the deploy prefix, pull the serving image, write
the endpoint's own log group and (async mode) write results and notify the SNS topics --
nothing else.  ``deploy --print-role-policy`` / ``--print-trust-policy`` print them.
"""

from __future__ import annotations

import re

from deploy.config import DeployConfig
from deploy.errors import UserError

TRUST_POLICY = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Principal": {"Service": "sagemaker.amazonaws.com"},
                   "Action": "sts:AssumeRole"}],
}


def account_of(arn: str | None) -> str | None:
    match = re.match(r"^arn:aws[\w-]*:iam::(\d{12}):", arn or "")
    return match.group(1) if match else None


def partition_of(region: str) -> str:
    if region.startswith("cn-"):
        return "aws-cn"
    return "aws-us-gov" if region.startswith("us-gov-") else "aws"


def role_policy(config: DeployConfig, region: str, image: str, account: str | None = None
                ) -> dict:
    account = account or account_of(config.role)
    bucket = config.bucket or (f"sagemaker-{region}-{account}" if account else None)
    if not bucket:
        raise UserError("set BUCKET (or ROLE, whose account names the default bucket) to"
                        " print the role policy")
    part = partition_of(region)
    prefix = config.prefix.strip("/")
    statements = [
        {"Sid": "ReadModelArchives", "Effect": "Allow", "Action": "s3:GetObject",
         "Resource": f"arn:{part}:s3:::{bucket}/{prefix + '/' if prefix else ''}*"},
        {"Sid": "EndpointLogs", "Effect": "Allow",
         "Action": ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents",
                    "logs:DescribeLogStreams"],
         "Resource": [f"arn:{part}:logs:{region}:{account or '*'}:log-group:"
                      f"/aws/sagemaker/Endpoints/{config.endpoint}",
                      f"arn:{part}:logs:{region}:{account or '*'}:log-group:"
                      f"/aws/sagemaker/Endpoints/{config.endpoint}:*"]},
        # SageMaker's documented execution-role needs; PutMetricData has no resource ARNs.
        {"Sid": "ContainerMetrics", "Effect": "Allow", "Action": "cloudwatch:PutMetricData",
         "Resource": "*"},
        {"Sid": "EcrLogin", "Effect": "Allow", "Action": "ecr:GetAuthorizationToken",
         "Resource": "*"},
    ]
    repo = _ecr_repository(image, part)
    if repo:
        statements.append({"Sid": "PullImage", "Effect": "Allow",
                           "Action": ["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer",
                                      "ecr:BatchCheckLayerAvailability"],
                           "Resource": repo})
    if config.mode == "async":
        statements.extend(_async_statements(config, part))
    return {"Version": "2012-10-17", "Statement": statements}


def _async_statements(config: DeployConfig, part: str) -> list[dict]:
    paths = [p for p in (config.async_output, config.async_failure) if p]
    out = [{"Sid": "WriteAsyncResults", "Effect": "Allow", "Action": "s3:PutObject",
            "Resource": [f"arn:{part}:s3:::{p[5:].rstrip('/')}/*" for p in paths]}]
    topics = [t for t in (config.sns_success, config.sns_error) if t]
    if topics:
        out.append({"Sid": "NotifyAsync", "Effect": "Allow", "Action": "sns:Publish",
                    "Resource": topics})
    return out


def _ecr_repository(image: str, part: str) -> str | None:
    """arn:...:ecr:<region>:<account>:repository/<name> for an ECR image URI."""
    match = re.match(r"^(\d{12})\.dkr\.ecr\.([a-z0-9-]+)\.[^/]+/([^:@]+)", image or "")
    if not match:
        return None
    account, region, name = match.groups()
    return f"arn:{part}:ecr:{region}:{account}:repository/{name}"
