"""The ``opensearch`` sub-command: write the folder, and with ``--apply`` send it."""

from __future__ import annotations

import argparse
import os
import urllib.parse

from deploy.errors import UserError
from deploy.integrations.opensearch import bundle
from deploy.integrations.opensearch.patterns import PATTERNS
from deploy.integrations.opensearch.target import build
from deploy.paths import BUILD_DIR


def run(args: argparse.Namespace) -> int:
    target = build(args.endpoint, args.region, role_arn=args.role_arn, account=args.account,
                   flavour=args.flavour, document_fields=args.document_fields,
                   index=args.index, instruction=args.instruction, component=args.component)
    out = args.out or BUILD_DIR / "opensearch" / target.slug
    if not args.document_fields:
        print(f"document field: {target.document_fields[0]} (assumed; pass --document-field"
              " with your index's text field: OpenSearch's rerank-by-field tutorial used"
              " facts, its SageMaker reranker tutorial passage_text)")
    written = bundle.write(target, out)
    print(f"wrote {len(written)} files to {out} (start with {out / 'README.md'})")
    if args.apply:
        _apply(args, target)
    return 0


def _private_channel(url: str) -> bool:
    """TLS, or plain HTTP that never leaves this machine (a tunnel to the cluster)."""
    parts = urllib.parse.urlsplit(url)
    return parts.scheme == "https" or (
        parts.scheme == "http" and parts.hostname in ("localhost", "127.0.0.1", "::1"))


def _apply(args: argparse.Namespace, target) -> None:
    from deploy.integrations.opensearch import apply, cluster

    url = os.environ.get("OPENSEARCH_URL")
    if not url:
        raise UserError("--apply needs OPENSEARCH_URL (https://host:port of the cluster)")
    if args.send_aws_credentials and not _private_channel(url):
        # The keys travel in the create-connector body: never in clear text on a network.
        raise UserError("--send-aws-credentials needs an https:// OPENSEARCH_URL (the keys"
                        f" would cross the network in clear text to {url})")
    client = cluster.connect(url, target.flavour, args.opensearch_region or target.region)
    apply.run(client, PATTERNS[args.pattern], target,
              send_aws_credentials=args.send_aws_credentials, wait_s=args.wait)
