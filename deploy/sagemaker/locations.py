"""The values that name AWS things -- S3 buckets, prefixes and URIs, SNS topics, images,
endpoint URLs, alarm names -- checked before any upload or create call.

Most of them also end up in the execution role's policy (deploy.sagemaker.iam), where a
``*`` or ``?`` would be a wildcard and ``${...}`` a policy variable: each is held to the
characters AWS documents as safe, so nothing broader than what was named can be granted.
"""

from __future__ import annotations

import math
import re
import urllib.parse

from deploy.errors import UserError

# S3's bucket-naming rules for general purpose buckets.
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_IP = re.compile(r"^\d+\.\d+\.\d+\.\d+$")
_BUCKET_PREFIXES = ("xn--", "sthree-", "amzn-s3-demo-")
_BUCKET_SUFFIXES = ("-s3alias", "--ol-s3", ".mrap", "--x-s3", "--table-s3")
# Key characters S3 calls safe, and a few more that mean nothing to IAM; never * ? $ (IAM
# wildcards, policy variables), spaces, quotes or control characters.
_KEY = re.compile(r"^[A-Za-z0-9!\-_.'()/=+,@:~]*$")
# Any partition (aws, aws-cn, aws-us-gov, aws-iso-b, aws-eusc, ...) and any region.
_SNS = re.compile(r"^arn:aws(-[a-z]+)*:sns:[a-z]{2,5}(-[a-z0-9]+)+-\d{1,2}:\d{12}:"
                  r"[A-Za-z0-9_-]{1,256}(\.fifo)?$")
# SageMaker pulls a model's image from ECR (a private registry needs a VPC ImageConfig,
# which deploy does not write), in any partition's domain; a tag, a digest, or both.
_ECR_IMAGE = re.compile(r"^\d{12}\.dkr\.ecr(-fips)?\.[a-z0-9-]+\."
                        r"(amazonaws\.com(\.cn)?|amazonaws\.eu|c2s\.ic\.gov|sc2s\.sgov\.gov)/"
                        r"[a-z0-9]+(?:[._/-]+[a-z0-9]+)*"
                        r"(:[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?(@sha256:[0-9a-f]{64})?$")
# us-east-1, us-gov-west-1, cn-north-1, eusc-de-east-1, ...
_REGION = re.compile(r"^[a-z]{2,5}(-[a-z0-9]+)+-\d{1,2}$")
# CloudWatch takes any printable name; these are the ones a policy's alarm ARN reads
# as a pattern or a variable, or a comma-separated list as two names.
_ALARM = re.compile(r"^[^*?$\"\\,\x00-\x1f\x7f]{1,255}$")


def bucket(value: str, spelled: str) -> str:
    """``value`` if it is a valid S3 bucket name, else one line naming ``spelled``."""
    if _BUCKET.match(value) and value.endswith(_BUCKET_SUFFIXES):
        raise UserError(f"{spelled}: {value!r} is an access point or other bucket alias; name"
                        " the bucket itself (the execution role's policy grants the bucket"
                        " by name)")
    if (not _BUCKET.match(value) or ".." in value or ".-" in value or "-." in value
            or _IP.match(value) or value.startswith(_BUCKET_PREFIXES)
            or value.endswith(_BUCKET_SUFFIXES)):
        raise UserError(f"{spelled}: {value!r} is not an S3 bucket name (3-63 lowercase"
                        " letters, digits, dots and hyphens, starting and ending with a"
                        " letter or digit)")
    return value


def key(value: str, spelled: str, what: str = "key") -> str:
    """An S3 key or key prefix in safe characters (nothing a policy reads as a pattern)."""
    if value.startswith("/"):
        raise UserError(f"{spelled}: the {what} {value!r} must not start with /")
    bad = next((c for c in value if not _KEY.match(c)), None)
    if bad is not None:
        raise UserError(f"{spelled}: the {what} {value!r} holds {bad!r}; use letters, digits"
                        " and ! - _ . ' ( ) / = + , @ : ~ (never * or ?, which IAM reads as"
                        " wildcards)")
    return value


def prefix(value: str, spelled: str) -> str:
    """The S3 key prefix archives go under (empty: the bucket's root)."""
    return key(value, spelled, "prefix")


def s3_uri(value: str, spelled: str, *, need_key: bool = False, object_only: bool = False
           ) -> tuple[str, str]:
    """(bucket, key) of ``s3://bucket/key``; ``need_key``: the key may not be empty;
    ``object_only``: it names one object (no trailing /)."""
    if not isinstance(value, str) or not value.startswith("s3://"):
        raise UserError(f"{spelled} must be an s3:// URI, not {value!r}")
    name, _, rest = value[len("s3://"):].partition("/")
    if not name:
        raise UserError(f"{spelled} {value!r} names no bucket (s3://bucket/key)")
    bucket(name, spelled)
    key(rest, spelled)
    if (need_key or object_only) and not rest.strip("/"):
        raise UserError(f"{spelled} {value!r} names no key"
                        f" (s3://{name}/{'model.tar.gz' if object_only else '...'})")
    if object_only and rest.endswith("/"):
        raise UserError(f"{spelled} {value!r} ends in /: name one object")
    return name, rest


def sns_topic(value: str, spelled: str) -> str:
    if not _SNS.match(value):
        raise UserError(f"{spelled} must be an SNS topic ARN"
                        f" (arn:aws:sns:REGION:ACCOUNT:topic-name), not {value!r}")
    return value


def image(value: str, spelled: str) -> str:
    if not _ECR_IMAGE.match(value):
        raise UserError(f"{spelled} {value!r} is not an ECR image URI"
                        " (<account>.dkr.ecr.<region>.amazonaws.com/<name>[:tag|@sha256:...]):"
                        " SageMaker pulls the image from ECR (`make docker-push` puts ours"
                        " there)")
    return value


def region(value: str, spelled: str) -> str:
    """An AWS region name (it goes into every ARN the role policy names)."""
    if not _REGION.match(value):
        raise UserError(f"{spelled} {value!r} is not an AWS region (like us-east-1)")
    return value


def alarm_name(value: str, spelled: str) -> str:
    if not _ALARM.match(value):
        raise UserError(f"{spelled}: {value!r} is not a CloudWatch alarm name this tool"
                        " grants (1-255 printable characters, none of * ? $ \" \\ ,)")
    return value


def endpoint_url(value: str, spelled: str) -> str:
    """An http(s)://host[:port][/path] URL, as botocore takes it, checked here so that a
    typo is one line and not botocore's ValueError."""
    from botocore.utils import is_valid_endpoint_url, is_valid_ipv6_endpoint_url

    try:
        parts = urllib.parse.urlsplit(value)
        parts.port  # noqa: B018 (raises on a port that is not a number in range)
    except ValueError:
        parts = None
    if (parts is None or parts.scheme not in ("http", "https") or not parts.hostname
            or not (is_valid_endpoint_url(value) or is_valid_ipv6_endpoint_url(value))):
        raise UserError(f"{spelled} {value!r} is not an endpoint URL (http://host:port or"
                        " https://host)")
    return value


def finite(value: float, spelled: str) -> float:
    if not math.isfinite(value):
        raise UserError(f"{spelled} must be a number, not {value}")
    return value


def validate(config) -> None:
    """Every such value the settings hold, named as the user spelled it."""
    name = config.name
    if config.region:
        region(config.region, name("region"))
    for field in ("endpoint_url", "s3_endpoint_url"):
        if getattr(config, field):
            endpoint_url(getattr(config, field), name(field))
    if config.bucket:
        bucket(config.bucket, name("bucket"))
    prefix(config.prefix, name("prefix"))
    if config.model_data:
        s3_uri(config.model_data, name("model_data"), need_key=True)
    for field in ("async_output", "async_failure", "capture", "transform_input",
                  "transform_output"):
        if getattr(config, field):
            s3_uri(getattr(config, field), name(field))
    for field in ("sns_success", "sns_error"):
        if getattr(config, field):
            sns_topic(getattr(config, field), name(field))
    if config.image:
        image(config.image, name("image"))
    for alarm in (config.rollback_alarms or "").split(","):
        if alarm.strip():
            alarm_name(alarm.strip(), name("rollback_alarms"))
