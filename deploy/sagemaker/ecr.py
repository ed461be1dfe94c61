"""``ecr-login``: the docker login password for an ECR repository, checked first.

``make docker-push ECR_REPO=<account>.dkr.ecr.<region>.amazonaws.com/<name>`` pipes it into
``docker login --password-stdin`` (nothing is written by us; docker keeps its login), then
tags and pushes our image; the pushed URI is what ``IMAGE_URI=`` deploys.
"""

from __future__ import annotations

import base64
import re

from deploy import config as cfg
from deploy.errors import UserError
from deploy.sagemaker.aws import Aws, translate_errors

REPOSITORY = re.compile(r"^(\d{12})\.dkr\.ecr\.([a-z0-9-]+)\.amazonaws\.com(?:\.cn)?/"
                        r"([a-z0-9][a-z0-9._/-]*)$")


def parse(repo: str) -> tuple[str, str, str]:
    """(account, region, repository name) of an ECR repository URI without a tag."""
    match = REPOSITORY.match(repo or "")
    if not match:
        raise UserError(f"ECR_REPO={repo!r} is not an ECR repository URI"
                        " (<account>.dkr.ecr.<region>.amazonaws.com/<name>, no tag)")
    return match.group(1), match.group(2), match.group(3)


@translate_errors
def run_login(args) -> int:
    account, region, name = parse(args.repository)
    config = cfg.load(args)
    config.region = region
    ecr = Aws(config).client("ecr")
    try:
        ecr.describe_repositories(registryId=account, repositoryNames=[name])
    except ecr.exceptions.RepositoryNotFoundException:
        raise UserError(f"repository {name} does not exist in {region} (account {account}):"
                        f" `aws ecr create-repository --repository-name {name} --region"
                        f" {region}` creates it") from None
    token = ecr.get_authorization_token(registryIds=[account])["authorizationData"][0]
    user, _, password = base64.b64decode(token["authorizationToken"]).decode().partition(":")
    if user != "AWS" or not password:
        raise UserError("ECR answered a token that is not AWS:<password>")
    print(password)
    return 0
