"""The endpoint Elasticsearch will call, validated once; every file is built from it."""

from __future__ import annotations

import dataclasses
import hashlib
import re

from deploy.errors import UserError
from deploy.integrations.common import ACCOUNT, REGION, check_at_least, check_match, endpoint_arn
from deploy.sagemaker.iam import partition_of
from deploy.sagemaker.names import ENDPOINT_NAME

# Elasticsearch's ids (MlStrings.isValidId): lowercase letters, digits, '-', '_' and '.',
# starting and ending with a letter or digit.
_INFERENCE_ID = re.compile(r"^[a-z0-9](?:[a-z0-9_.-]{0,253}[a-z0-9])?$")
# Index names: lowercase, not starting with '-', '_' or '+', none of \ / * ? " < > | , # or
# spaces (dots are allowed; "." and ".." are not names).
_INDEX = re.compile(r"^[a-z0-9][a-z0-9._-]{0,254}$")
# IAM user names are at most 64 characters.
_IAM_USER_CHARS = 64
_FIELD = re.compile(r"^[A-Za-z0-9_@][A-Za-z0-9_@.-]{0,254}$")
# Names SageMaker gives inference components: letters, digits and hyphens.
_COMPONENT = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9])*$")


@dataclasses.dataclass(frozen=True)
class Target:
    endpoint: str
    region: str
    account: str
    inference_id: str
    document_field: str = "text"
    index: str = "my-index"
    component: str | None = None
    rank_window: int = 25

    @property
    def endpoint_arn(self) -> str:
        return endpoint_arn(partition_of(self.region), self.region, self.account,
                            self.endpoint)

    @property
    def slug(self) -> str:
        return self.endpoint.lower()

    @property
    def iam_user(self) -> str:
        """The IAM user the README creates: ``elasticsearch-<endpoint>``, or for a long
        endpoint name its first 50 characters and a hash of the whole (IAM's 64)."""
        name = f"elasticsearch-{self.slug}"
        if len(name) <= _IAM_USER_CHARS:
            return name
        return f"es-{self.slug[:50]}-{hashlib.sha256(self.slug.encode()).hexdigest()[:8]}"


def build(endpoint: str, region: str | None, account: str | None, *,
          inference_id: str | None = None, document_field: str = "text",
          index: str = "my-index", component: str | None = None,
          rank_window: int = 25) -> Target:
    """Check every input; the inference id defaults to ``<endpoint>-rerank``, lowercased."""
    check_match("--endpoint", endpoint, ENDPOINT_NAME,
                "a SageMaker endpoint name (letters, digits and hyphens, at most 63)")
    check_match("--region", region, REGION, "an AWS region like us-east-1 (or set AWS_REGION)")
    if not account:
        raise UserError("--account is required: the endpoint's 12-digit AWS account id, for"
                        " the IAM policy (make: ACCOUNT=)")
    check_match("--account", account, ACCOUNT, "a 12-digit AWS account id (the endpoint's)")
    inference_id = inference_id or f"{endpoint.lower()}-rerank"
    check_match("--inference-id", inference_id, _INFERENCE_ID,
                "an Elasticsearch inference id (lowercase letters, digits, - and _)")
    check_match("--document-field", document_field, _FIELD, "a field name")
    check_match("--index", index, _INDEX, "an index name (lowercase, no spaces)")
    if component is not None:
        check_match("--component", component, _COMPONENT, "an inference component name")
    check_at_least("--rank-window", rank_window, 1)
    return Target(endpoint=endpoint, region=region, account=account,
                  inference_id=inference_id, document_field=document_field, index=index,
                  component=component, rank_window=rank_window)
