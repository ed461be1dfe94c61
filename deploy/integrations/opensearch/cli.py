"""The ``opensearch`` sub-command: write the folder, and with ``--apply`` send it."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from deploy.errors import UserError
from deploy.integrations.opensearch import bundle
from deploy.integrations.opensearch.patterns import PATTERNS
from deploy.integrations.opensearch.target import FLAVOURS, build
from deploy.paths import BUILD_DIR

HELP = "write OpenSearch connector, model and search-pipeline JSON for an endpoint"


def register(subparsers) -> None:
    p = subparsers.add_parser("opensearch", help=HELP, description=HELP + (
        "; --apply sends one pattern to OPENSEARCH_URL"))
    p.add_argument("--endpoint", required=True, help="SageMaker endpoint name")
    p.add_argument("--region", default=os.environ.get("AWS_REGION")
                   or os.environ.get("AWS_DEFAULT_REGION"),
                   help="the endpoint's region (default: AWS_REGION)")
    p.add_argument("--role-arn", help="IAM role the connector assumes (Amazon OpenSearch Service)")
    p.add_argument("--account", help="AWS account id, when no --role-arn (self-managed)")
    p.add_argument("--flavour", choices=FLAVOURS, default="aws",
                   help="aws: Amazon OpenSearch Service (default); self-managed: your cluster")
    p.add_argument("--document-field", dest="document_fields", action="append",
                   metavar="FIELD", help="field(s) of _source the model reads (default: text);"
                   " repeat for several, joined in order")
    p.add_argument("--index", default="my-index", help="index in the example searches")
    p.add_argument("--out", type=Path, help="folder (default: build/opensearch/<endpoint>)")
    p.add_argument("--apply", action="store_true",
                   help="create connector, model and pipeline on OPENSEARCH_URL")
    p.add_argument("--pattern", choices=sorted(PATTERNS), default="cohere",
                   help="what --apply creates (default: cohere, the recommended one)")
    p.add_argument("--send-aws-credentials", action="store_true",
                   help="self-managed --apply: put the current AWS session's keys into the"
                   " create-connector request (never into a file)")
    p.add_argument("--opensearch-region", help="the domain's region for SigV4 (default: --region)")
    p.add_argument("--wait", type=float, default=300, metavar="SECONDS",
                   help="--apply: how long to wait for the model to deploy")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    target = build(args.endpoint, args.region, role_arn=args.role_arn, account=args.account,
                   flavour=args.flavour, document_fields=args.document_fields,
                   index=args.index)
    out = args.out or BUILD_DIR / "opensearch" / target.slug
    if not args.document_fields:
        print(f"document field: {target.document_fields[0]} (assumed; pass --document-field"
              " with your index's text field: seed 000 used facts, seed 001 passage_text)")
    written = bundle.write(target, out)
    print(f"wrote {len(written)} files to {out} (start with {out / 'README.md'})")
    if args.apply:
        _apply(args, target)
    return 0


def _apply(args: argparse.Namespace, target) -> None:
    from deploy.integrations.opensearch import apply, cluster

    url = os.environ.get("OPENSEARCH_URL")
    if not url:
        raise UserError("--apply needs OPENSEARCH_URL (https://host:port of the cluster)")
    client = cluster.connect(url, target.flavour, args.opensearch_region or target.region)
    apply.run(client, PATTERNS[args.pattern], target,
              send_aws_credentials=args.send_aws_credentials, wait_s=args.wait)
