"""Where an endpoint's traffic and data stay: its VPC, network isolation, one KMS key, tags.

- ``SUBNETS`` and ``SECURITY_GROUPS`` put every model this tool creates (an endpoint's, a
  component's, a transform's) in your VPC (VpcConfig): SageMaker then reaches S3 and ECR
  through the VPC's endpoints or NAT, and the execution role needs the network-interface
  permissions ``role-policy`` adds.
- Network isolation (``NETWORK_ISOLATION``, on by default): the container can reach nothing,
  which our engine never needs. SageMaker offers neither isolation nor a VPC to serverless
  endpoints, so their models go without isolation, and a VPC with serverless is refused.
- ``KMS_KEY`` (a key ARN) encrypts with one customer-managed key the archive in S3
  (SSE-KMS), the instances' storage volumes (KmsKeyId), async results, and Batch
  Transform's output and volumes; the execution role may use exactly that key. Instance
  types with local NVMe storage (ml.g5, ml.g6e, ml.m5d, ...) encrypt their volumes in
  hardware and SageMaker refuses a key for them, so theirs is left out, with a note.
- ``TAGS`` (``key=value,...``) go on everything created, beside the tag naming the endpoint.
"""

from __future__ import annotations

import re

from deploy.errors import UserError
from deploy.sagemaker import sizing

_SUBNET = re.compile(r"^subnet-[0-9a-f]{8,17}$")
_GROUP = re.compile(r"^sg-[0-9a-f]{8,17}$")
_KEY_ARN = re.compile(r"^arn:aws[\w-]*:kms:[a-z0-9-]+:\d{12}:key/[0-9a-zA-Z-]{1,128}$")
_TAG_KEY = re.compile(r"^[\w.:/=+\-@ ]{1,128}$")
_TAG_VALUE = re.compile(r"^[\w.:/=+\-@ ]{0,256}$")
# Of the 50 tags a resource takes, ours: the endpoint's, and on a component's models the
# component's too.
MAX_SUBNETS, MAX_GROUPS, MAX_TAGS, MAX_COMPONENT_TAGS = 16, 5, 49, 48
# deploy.sagemaker.names.TAG and COMPONENT_TAG (names imports this module)
_OWN_TAGS = ("reranker-endpoint", "reranker-component")


def subnets(config) -> list[str]:
    return _listed(config.subnets)


def security_groups(config) -> list[str]:
    return _listed(config.security_groups)


def validate(config) -> None:
    """Refuse, in one line, what SageMaker would refuse after resources exist."""
    name = config.name
    nets, groups = subnets(config), security_groups(config)
    if bool(nets) != bool(groups):
        raise UserError(f"a VPC needs both {name('subnets')} and {name('security_groups')}")
    _check_each(nets, _SUBNET, MAX_SUBNETS, name("subnets"), "subnet-0123456789abcdef0")
    _check_each(groups, _GROUP, MAX_GROUPS, name("security_groups"), "sg-0123456789abcdef0")
    if nets and config.deploy_mode.serverless:
        raise UserError(f"serverless endpoints cannot run in a VPC: unset {name('subnets')}"
                        f" and {name('security_groups')}, or deploy real-time")
    if config.kms_key and not _KEY_ARN.match(config.kms_key):
        raise UserError(f"{name('kms_key')} must be a KMS key ARN"
                        " (arn:aws:kms:REGION:ACCOUNT:key/ID), not an alias or id: the role"
                        " policy can grant only a key ARN")
    if config.kms_key and _hardware_encrypted(config):
        print(f"note: {config.instance_type} stores on local NVMe disks that its hardware"
              f" encrypts, and SageMaker takes no KMS key for them: {name('kms_key')}"
              " encrypts the archive and results in S3, not the instances' volumes")
    user_tags(config)


def vpc_config(config) -> dict:
    """CreateModel's VpcConfig argument, or nothing."""
    if not subnets(config):
        return {}
    return {"VpcConfig": {"Subnets": subnets(config),
                          "SecurityGroupIds": security_groups(config)}}


def network_isolation(config, wanted: bool) -> bool:
    """Isolation as asked, except where SageMaker does not offer it (serverless)."""
    return wanted and not config.deploy_mode.serverless


def volume_key(config, argument: str = "KmsKeyId") -> dict:
    """CreateEndpointConfig's KmsKeyId argument (or a transform's VolumeKmsKeyId): none
    for serverless (no volumes) or for volumes the instance's hardware encrypts."""
    if not config.kms_key or config.deploy_mode.serverless or _hardware_encrypted(config):
        return {}
    return {argument: config.kms_key}


def _hardware_encrypted(config) -> bool:
    return not config.deploy_mode.serverless and sizing.has_local_storage(config.instance_type)


def output_key(config) -> dict:
    """A KmsKeyId for results SageMaker writes to S3 (async output, transform output)."""
    return {"KmsKeyId": config.kms_key} if config.kms_key else {}


def upload_args(config) -> dict:
    """S3 upload arguments that encrypt the archive with the key."""
    if not config.kms_key:
        return {}
    return {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": config.kms_key}


def user_tags(config) -> list[dict]:
    """``TAGS`` as SageMaker's Tags list; keys starting ``aws:`` are AWS's own."""
    tags = []
    for item in _listed(config.tags):
        key, sep, value = item.partition("=")
        key, value = key.strip(), value.strip()
        if not sep or not _TAG_KEY.match(key) or not _TAG_VALUE.match(value):
            raise UserError(f"{config.name('tags')}: {item!r} is not key=value (letters,"
                            " digits, spaces and _ . : / = + - @; keys up to 128 characters)")
        if key.lower().startswith("aws:"):
            raise UserError(f"{config.name('tags')}: tag keys starting aws: are AWS's own")
        if key in _OWN_TAGS:
            raise UserError(f"{config.name('tags')}: {key} is a tag this tool sets itself"
                            " (the endpoint's or the component's name)")
        if any(tag["Key"] == key for tag in tags):
            raise UserError(f"{config.name('tags')}: the key {key!r} is given twice (AWS"
                            " refuses duplicate tag keys)")
        tags.append({"Key": key, "Value": value})
    limit = MAX_COMPONENT_TAGS if config.mode == "component" else MAX_TAGS
    if len(tags) > limit:
        raise UserError(f"{config.name('tags')}: at most {limit} tags"
                        + (" for an inference component" if limit == MAX_COMPONENT_TAGS else ""))
    return tags


def iam_statements(config, partition: str) -> list[dict]:
    """What the execution role needs for a VPC and for the key."""
    statements = []
    if subnets(config):
        # SageMaker's documented VPC permissions; EC2 scopes none of them to a subnet.
        statements.append({"Sid": "VpcNetworkInterfaces", "Effect": "Allow", "Action": [
            "ec2:CreateNetworkInterface", "ec2:CreateNetworkInterfacePermission",
            "ec2:DeleteNetworkInterface", "ec2:DeleteNetworkInterfacePermission",
            "ec2:DescribeNetworkInterfaces", "ec2:DescribeVpcs", "ec2:DescribeDhcpOptions",
            "ec2:DescribeSubnets", "ec2:DescribeSecurityGroups"], "Resource": "*"})
    if config.kms_key:
        statements.append({"Sid": "UseTheKey", "Effect": "Allow", "Action": [
            "kms:Decrypt", "kms:GenerateDataKey", "kms:CreateGrant", "kms:DescribeKey"],
            "Resource": config.kms_key})
    return statements


def _listed(text: str | None) -> list[str]:
    return [part.strip() for part in (text or "").split(",") if part.strip()]


def _check_each(values: list[str], rule: re.Pattern, most: int, flag: str, example: str
                ) -> None:
    if len(values) > most:
        raise UserError(f"{flag}: at most {most}")
    for value in values:
        if not rule.match(value):
            raise UserError(f"{flag}: {value!r} is not an id like {example}")
