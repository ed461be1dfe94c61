"""An opensearch-py client for the cluster, and calls that fail as one readable line."""

from __future__ import annotations

import os
from urllib.parse import parse_qsl, urlsplit

from deploy.errors import UserError


class ClusterError(Exception):
    """A request the cluster refused or could not be reached for: one line, no traceback."""


def connect(url: str, flavour: str, region: str):
    """SigV4 (standard AWS credential chain) for Amazon OpenSearch Service; basic auth from
    OPENSEARCH_USER / OPENSEARCH_PASSWORD for a self-managed cluster."""
    from opensearchpy import AWSV4SignerAuth, OpenSearch, RequestsHttpConnection

    if not url.startswith(("https://", "http://")):
        raise UserError(f"OPENSEARCH_URL {url!r} must start with https:// (or http://)")
    if flavour == "aws":
        auth = AWSV4SignerAuth(_aws_credentials(), region, "es")
    else:
        user, password = os.environ.get("OPENSEARCH_USER"), os.environ.get("OPENSEARCH_PASSWORD")
        auth = (user, password or "") if user else None
    return OpenSearch(hosts=[url], http_auth=auth, connection_class=RequestsHttpConnection,
                      verify_certs=True, ca_certs=os.environ.get("OPENSEARCH_CA_CERTS") or None,
                      timeout=60, max_retries=0)


def _aws_credentials():
    import boto3
    from botocore.exceptions import BotoCoreError

    try:
        credentials = boto3.Session().get_credentials()
    except BotoCoreError as exc:
        raise UserError(f"AWS credentials: {exc}") from None
    if credentials is None:
        raise UserError("no AWS credentials found in the standard chain (environment, profile,"
                        " instance role) to sign requests")
    return credentials


def aws_keys() -> dict:
    """The current session's keys, for a self-managed connector: sent, never written."""
    frozen = _aws_credentials().get_frozen_credentials()
    keys = {"access_key": frozen.access_key, "secret_key": frozen.secret_key}
    if frozen.token:
        keys["session_token"] = frozen.token
    return keys


def call(client, method: str, path: str, body: dict | None = None, *,
         missing_ok: bool = False) -> dict | None:
    """One REST call; ``path`` may carry a query string.  Errors become ClusterError;
    with ``missing_ok`` a 404 (e.g. searching a system index not created yet) is None."""
    from opensearchpy.exceptions import ConnectionError as OSConnectionError
    from opensearchpy.exceptions import TransportError

    parts = urlsplit(path)
    params = dict(parse_qsl(parts.query)) or None
    try:
        return client.transport.perform_request(method, parts.path, params=params, body=body)
    except OSConnectionError as exc:
        raise ClusterError(f"cannot reach OpenSearch for {method} {parts.path}:"
                           f" {_one_line(exc.error or exc)}") from None
    except TransportError as exc:
        if missing_ok and exc.status_code == 404:
            return None
        raise ClusterError(f"OpenSearch answered {exc.status_code} to {method} {parts.path}:"
                           f" {_reason(exc)}") from None


def _reason(exc) -> str:
    info = exc.info
    if isinstance(info, dict):
        error = info.get("error", info)
        if isinstance(error, dict):
            root = (error.get("root_cause") or [{}])[0]
            return _one_line(error.get("reason") or root.get("reason") or error)
        return _one_line(error)
    return _one_line(info or exc.error)


def _one_line(value) -> str:
    text = " ".join(str(value).split())
    return text if len(text) <= 300 else text[:297] + "..."
