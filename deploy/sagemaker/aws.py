"""boto3 sessions and clients from the deploy settings; credentials only from boto3's chain."""

from __future__ import annotations

import os
import re

from botocore.config import Config

from deploy.config import DeployConfig
from deploy.errors import UserError


def _retries() -> Config:
    """Standard mode backs off on throttling and 5xx; AWS_MAX_ATTEMPTS still applies."""
    return Config(retries={"total_max_attempts": int(os.environ.get("AWS_MAX_ATTEMPTS", 8)),
                           "mode": "standard"})


class Aws:
    """One session, its region, and clients pointed at AWS (or at ``endpoint_url`` in tests)."""

    def __init__(self, config: DeployConfig):
        self.session = session(config)
        self.region = self.session.region_name
        if not self.region:
            raise UserError(f"no AWS region: set {config.name('region')}=... (or AWS_REGION,"
                            " or a profile's region)")
        self.config = config
        self._clients: dict[str, object] = {}

    def client(self, service: str):
        if service not in self._clients:
            url = self.config.endpoint_url
            if service == "s3" and self.config.s3_endpoint_url:
                url = self.config.s3_endpoint_url
            self._clients[service] = self.session.client(service, endpoint_url=url,
                                                         config=_retries())
        return self._clients[service]

    def account_id(self) -> str:
        return self.client("sts").get_caller_identity()["Account"]


def session(config: DeployConfig):
    """A boto3 session for the settings' profile and region (None: boto3's chain)."""
    import boto3

    try:
        return boto3.Session(profile_name=config.profile, region_name=config.region)
    except Exception as exc:  # botocore's ProfileNotFound and friends
        raise UserError(f"AWS session: {exc}") from None


def translate_errors(run):
    """A CLI command's AWS failures (no credentials, no network, refusals) as one line."""
    import functools

    from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

    @functools.wraps(run)
    def wrapper(args):
        try:
            return run(args)
        except NoCredentialsError:
            raise UserError("no AWS credentials found (boto3's chain: AWS_PROFILE, env vars, SSO,"
                            " instance role); run `aws configure` or `aws sso login`") from None
        except (BotoCoreError, ClientError) as exc:
            raise UserError(f"{error_code(exc)}: {error_message(exc)}") from None

    return wrapper


def error_code(exc: Exception) -> str:
    return getattr(exc, "response", {}).get("Error", {}).get("Code", "") or type(exc).__name__


def error_message(exc: Exception) -> str:
    """AWS's message on one line (a proxy's HTML error page reduced to its text)."""
    text = getattr(exc, "response", {}).get("Error", {}).get("Message", "") or str(exc)
    text = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", text)).strip()
    return text[:300] + ("..." if len(text) > 300 else "")


def is_missing(exc: Exception) -> bool:
    """SageMaker says "Could not find ..." (ValidationException) for absent resources."""
    code, message = error_code(exc), error_message(exc)
    return (code in ("ResourceNotFound", "ObjectNotFoundException", "NoSuchKey", "404",
                     "NotFound", "NoSuchBucket")
            or (code in ("ValidationException", "ValidationError")
                and ("Could not find" in message or "does not exist" in message)))
