"""Least-privilege IAM documents for the connector role (Amazon OpenSearch Service).

The role may invoke exactly one endpoint; OpenSearch Service assumes it (the trust
policy); whoever creates the connector must be allowed to pass it (PassRole).
"""

from __future__ import annotations

from deploy.integrations.opensearch.target import Target
from deploy.sagemaker.iam import allow, document, trust

# Amazon OpenSearch Service assumes connector roles as this service; older domains use es.
OPENSEARCH_PRINCIPALS = ["opensearchservice.amazonaws.com", "es.amazonaws.com"]


def invoke_policy(target: Target) -> dict:
    return document(allow("sagemaker:InvokeEndpoint", target.endpoint_arn,
                          "InvokeRerankerEndpoint"))


def trust_policy() -> dict:
    return trust(*OPENSEARCH_PRINCIPALS)


def pass_role_policy(target: Target) -> dict:
    """For the identity that sends the create-connector request to the domain."""
    return document(allow("iam:PassRole", target.role_arn, "PassRerankerConnectorRole"))


def documents(target: Target) -> dict[str, dict]:
    """File name -> policy; the self-managed flavour signs with an IAM user's keys instead."""
    files = {"invoke-endpoint-policy.json": invoke_policy(target)}
    if target.flavour == "aws":
        files["trust-policy.json"] = trust_policy()
        files["pass-role-policy.json"] = pass_role_policy(target)
    return files
