"""The ``elasticsearch`` sub-command: check the flags, write the folder."""

from __future__ import annotations

import argparse

from deploy.integrations.elasticsearch import bundle
from deploy.integrations.elasticsearch.target import build
from deploy.paths import BUILD_DIR


def run(args: argparse.Namespace) -> int:
    target = build(args.endpoint, args.region, args.account, inference_id=args.inference_id,
                   document_field=args.document_field, index=args.index,
                   component=args.component, rank_window=args.rank_window)
    out = args.out or BUILD_DIR / "elasticsearch" / target.slug
    written = bundle.write(target, out)
    print(f"wrote {len(written)} files to {out} (start with {out / 'README.md'})")
    return 0
