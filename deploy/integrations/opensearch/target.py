"""The endpoint OpenSearch will call, validated once; every file is built from it."""

from __future__ import annotations

import dataclasses
import re

from deploy.errors import UserError
from deploy.integrations.common import (
    ACCOUNT,
    REGION,
    check_instruction,
    check_match,
    endpoint_arn,
)
from deploy.sagemaker.iam import partition_of
from deploy.sagemaker.names import ENDPOINT_NAME

FLAVOURS = ("aws", "self-managed")  # Amazon OpenSearch Service, or a cluster you run

_ROLE_ARN = re.compile(r"^arn:(aws|aws-cn|aws-us-gov):iam::(\d{12}):role/[\w+=,.@/-]{1,512}$")
# Field names neural-search and ml_inference read from _source (dots address nested objects).
_FIELD = re.compile(r"^[A-Za-z0-9_@-][A-Za-z0-9_@.-]{0,254}$")


@dataclasses.dataclass(frozen=True)
class Target:
    endpoint: str
    region: str
    account: str
    partition: str = "aws"
    role_arn: str | None = None
    flavour: str = "aws"
    document_fields: tuple[str, ...] = ("text",)
    index: str = "my-index"
    # Sent with every request for an LLM reranker; None: the endpoint's own default.
    instruction: str | None = None
    # The inference component every call names (MODE=component endpoints); None: the
    # endpoint's one model.
    component: str | None = None

    @property
    def url(self) -> str:
        """The SageMaker runtime URL ml-commons signs and posts to."""
        suffix = ".amazonaws.com.cn" if self.partition == "aws-cn" else ".amazonaws.com"
        return (f"https://runtime.sagemaker.{self.region}{suffix}"
                f"/endpoints/{self.endpoint}/invocations")

    @property
    def endpoint_arn(self) -> str:
        return endpoint_arn(self.partition, self.region, self.account, self.endpoint)

    @property
    def slug(self) -> str:
        """What files, connectors and pipelines are named after: one per endpoint, or per
        component of an endpoint that hosts several."""
        name = f"{self.endpoint}-{self.component}" if self.component else self.endpoint
        return name.lower()


def build(endpoint: str, region: str | None, role_arn: str | None = None,
          account: str | None = None, flavour: str = "aws",
          document_fields: list[str] | None = None, index: str = "my-index",
          instruction: str | None = None, component: str | None = None) -> Target:
    """Check every input; the partition is the region's, the account the role ARN's."""
    check_match("--endpoint", endpoint, ENDPOINT_NAME,
                "a SageMaker endpoint name (letters, digits and hyphens, at most 63)")
    check_match("--region", region, REGION, "an AWS region like us-east-1 (or set AWS_REGION)")
    if flavour not in FLAVOURS:
        raise UserError(f"--flavour must be one of {', '.join(FLAVOURS)}")
    partition = partition_of(region)
    if role_arn:
        match = _ROLE_ARN.match(role_arn)
        if not match:
            raise UserError(f"--role-arn {role_arn!r} is not an IAM role ARN"
                            " (arn:aws:iam::123456789012:role/NAME)")
        if match.group(1) != partition:
            raise UserError(f"--role-arn is in partition {match.group(1)}, but region {region}"
                            f" is in {partition}: the role must be in the endpoint's partition")
        arn_account = match.group(2)
        if account and account != arn_account:
            raise UserError(f"--account {account} differs from the role ARN's {arn_account}")
        account = arn_account
    elif flavour == "aws":
        raise UserError("--role-arn is required for Amazon OpenSearch Service: the connector"
                        " assumes that role to call SageMaker")
    if not account or not ACCOUNT.match(account):
        raise UserError("--account (12 digits) is required without --role-arn")
    fields = tuple(document_fields or ("text",))
    for field in fields:
        check_match("--document-field", field, _FIELD, "a field name")
    if not index or any(c in index for c in ' "*\\<>|,/?#') or index.startswith(("_", "-")):
        raise UserError(f"--index {index!r} is not a valid index name")
    if component is not None:
        check_match("--component", component, ENDPOINT_NAME,
                    "an inference component name (letters, digits and hyphens, at most 63)")
    return Target(endpoint=endpoint, region=region, account=account, partition=partition,
                  role_arn=role_arn, flavour=flavour, document_fields=fields, index=index,
                  instruction=check_instruction(instruction), component=component)
