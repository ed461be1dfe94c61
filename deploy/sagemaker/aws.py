"""boto3 sessions and clients from the deploy settings; credentials only from boto3's chain."""

from __future__ import annotations

import os
import re

from botocore.config import Config

from deploy.config import DeployConfig
from deploy.errors import UserError

# A connection to AWS opens in well under a second; a host that does not answer at all
# (a wrong DEPLOY_ENDPOINT_URL, a firewall) fails after this instead of botocore's 60 s.
CONNECT_TIMEOUT = 10


def _retries() -> Config:
    """Standard mode backs off on throttling and 5xx; AWS_MAX_ATTEMPTS still applies."""
    raw = os.environ.get("AWS_MAX_ATTEMPTS", "8")
    try:
        attempts = int(raw)
    except ValueError:
        attempts = 0
    if attempts < 1:
        raise UserError(f"AWS_MAX_ATTEMPTS={raw!r} is not a whole number of at least 1")
    return Config(retries={"total_max_attempts": attempts, "mode": "standard"},
                  connect_timeout=CONNECT_TIMEOUT)


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


NO_CREDENTIALS = ("no AWS credentials found (boto3's chain: AWS_PROFILE, env vars, SSO,"
                  " instance role); run `aws configure` or `aws sso login`")


def runtime_session(config: DeployConfig, endpoint_url: str | None):
    """A session to call an endpoint with.  AWS's needs a region and credentials: checked
    here, before any data is read or request sent, and said with the setting to set; a
    local server (``endpoint_url``) needs neither."""
    boto = session(config)
    if endpoint_url is None:
        if not boto.region_name:
            raise UserError(f"no AWS region: set {config.name('region')}=... (or AWS_REGION,"
                            " or a profile's region)")
        if boto.get_credentials() is None:
            raise UserError(NO_CREDENTIALS)
    return boto


def translate_errors(run):
    """A CLI command's AWS failures (no credentials, no network, refusals) as one line."""
    import functools

    from boto3.exceptions import Boto3Error
    from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

    @functools.wraps(run)
    def wrapper(args):
        try:
            return run(args)
        except NoCredentialsError:
            raise UserError(NO_CREDENTIALS) from None
        except (BotoCoreError, ClientError, Boto3Error) as exc:
            raise UserError(f"{error_code(exc)}: {error_message(exc)}") from None

    return wrapper


def _error_of(exc: BaseException) -> dict:
    """A ClientError's ``response["Error"]``; {} for the rest (botocore's HTTPClientError
    family -- ConnectionClosedError, ReadTimeoutError -- carries ``response=None``)."""
    response = getattr(exc, "response", None)
    error = response.get("Error") if isinstance(response, dict) else None
    return error if isinstance(error, dict) else {}


def error_code(exc: BaseException) -> str:
    return str(_error_of(exc).get("Code") or "") or type(exc).__name__


def error_message(exc: BaseException) -> str:
    """AWS's message on one line (a proxy's HTML error page reduced to its text)."""
    text = str(_error_of(exc).get("Message") or "") or str(exc) or type(exc).__name__
    text = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", text)).strip()
    return text[:300] + ("..." if len(text) > 300 else "")


def is_missing(exc: Exception) -> bool:
    """SageMaker says "Could not find ..." (ValidationException) for absent resources."""
    code, message = error_code(exc), error_message(exc)
    return (code in ("ResourceNotFound", "ObjectNotFoundException", "NoSuchKey", "404",
                     "NotFound", "NoSuchBucket")
            or (code in ("ValidationException", "ValidationError")
                and ("Could not find" in message or "does not exist" in message)))
