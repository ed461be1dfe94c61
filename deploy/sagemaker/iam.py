"""Least-privilege IAM documents for the SageMaker execution role of one reranker model.

The role may read the model archives under the deploy prefix, pull the serving image and
write its own log group; the mode (sagemaker.modes) adds what it needs -- async: write results
and notify the SNS topics; transform: list and read the input, write the output -- and
nothing else.  ``--print-role-policy`` / ``--print-trust-policy`` print them.
"""

from __future__ import annotations

import re

from deploy.errors import UserError
from deploy.sagemaker import capture, isolation


def document(*statements: dict) -> dict:
    """An IAM policy document (the one policy language version AWS has)."""
    return {"Version": "2012-10-17", "Statement": list(statements)}


def allow(action, resource, sid: str | None = None) -> dict:
    return {**({"Sid": sid} if sid else {}), "Effect": "Allow", "Action": action,
            "Resource": resource}


def trust(*services: str) -> dict:
    """Who may assume the role: these AWS services."""
    principal = services[0] if len(services) == 1 else list(services)
    return document({"Effect": "Allow", "Principal": {"Service": principal},
                     "Action": "sts:AssumeRole"})


TRUST_POLICY = trust("sagemaker.amazonaws.com")


def account_of(arn: str | None) -> str | None:
    match = re.match(r"^arn:aws[\w-]*:iam::(\d{12}):", arn or "")
    return match.group(1) if match else None


# Region name prefixes of the partitions other than aws (ARNs are written per partition).
_PARTITIONS = (("cn-", "aws-cn"), ("us-gov-", "aws-us-gov"), ("us-isob-", "aws-iso-b"),
               ("us-isof-", "aws-iso-f"), ("eu-isoe-", "aws-iso-e"), ("us-iso-", "aws-iso"),
               ("eusc-", "aws-eusc"))


def partition_of(region: str) -> str:
    return next((part for prefix, part in _PARTITIONS if region.startswith(prefix)), "aws")


def role_policy(config, region: str, image: str, account: str | None = None
                ) -> dict:
    account = account or account_of(config.role)
    part = partition_of(region)
    mode = config.deploy_mode
    group = f"arn:{part}:logs:{region}:{account or '*'}:log-group:{mode.log_group(config)}"
    statements = [
        *_model_data(config, region, account, part),
        {"Sid": "EndpointLogs" if mode.endpoint else "TransformJobLogs", "Effect": "Allow",
         "Action": ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents",
                    "logs:DescribeLogStreams"],
         "Resource": [group, f"{group}:*"]},
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
    statements.extend(mode.iam_statements(config, part))
    statements.extend(_rollback_alarms(config, region, account, part))
    statements.extend(isolation.iam_statements(config, part))
    statements.extend(capture.iam_statements(config, part))
    return document(*statements)


def _model_data(config, region: str, account: str | None, part: str) -> list[dict]:
    """Read the model: MODEL_DATA itself, or what `upload` writes under PREFIX; a prefix of
    uncompressed files is also listed (SageMaker lists it to copy it)."""
    from deploy.config import uncompressed

    if config.model_data:
        bucket, _, key = config.model_data[len("s3://"):].partition("/")
        read = key + "*" if key.endswith("/") else key
    else:
        bucket = config.bucket or (f"sagemaker-{region}-{account}" if account else None)
        if not bucket:
            raise UserError(f"set {config.name('bucket')} (or {config.name('role')}, whose"
                            " account names the default bucket) to print the role policy")
        key = config.prefix.strip("/") + "/" if config.prefix.strip("/") else ""
        read = key + "*"
    statements = [{"Sid": "ReadModelArchives", "Effect": "Allow", "Action": "s3:GetObject",
                   "Resource": f"arn:{part}:s3:::{bucket}/{read}"}]
    if uncompressed(config):
        statements.append({"Sid": "ListModelFiles", "Effect": "Allow",
                           "Action": "s3:ListBucket", "Resource": f"arn:{part}:s3:::{bucket}",
                           "Condition": {"StringLike": {"s3:prefix": key + "*"}}})
    return statements


def _rollback_alarms(config, region: str, account: str | None, part: str) -> list[dict]:
    """SageMaker reads a guarded update's alarms with the execution role."""
    from deploy.sagemaker import guardrails

    if not config.deploy_mode.endpoint or not guardrails.guarded(config):
        return []
    return [{"Sid": "RollbackAlarms", "Effect": "Allow", "Action": "cloudwatch:DescribeAlarms",
             "Resource": [f"arn:{part}:cloudwatch:{region}:{account or '*'}:alarm:{name}"
                          for name in guardrails.alarm_names(config)]}]


def _ecr_repository(image: str, part: str) -> str | None:
    """arn:...:ecr:<region>:<account>:repository/<name> for an ECR image URI."""
    match = re.match(r"^(\d{12})\.dkr\.ecr\.([a-z0-9-]+)\.[^/]+/([^:@]+)", image or "")
    if not match:
        return None
    account, region, name = match.groups()
    return f"arn:{part}:ecr:{region}:{account}:repository/{name}"
