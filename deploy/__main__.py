"""``python -m deploy <command>``: one CLI, one sub-command per module.

Each module in ``COMMANDS`` exposes ``register(subparsers)``, which adds its sub-parser
and sets ``func`` (taking the parsed args, returning an exit code).  Errors the user can
fix raise ``deploy.errors.UserError`` and end as one readable line and exit code 2.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from deploy.errors import UserError

# module path -> registers these sub-commands
COMMANDS = (
    "deploy.package.packaging",   # package
    "deploy.sagemaker.upload",      # upload
    "deploy.sagemaker.endpoints",   # deploy, delete, status
    "deploy.sagemaker.transform",   # transform (Batch Transform)
    "deploy.client.invoke",      # invoke
    "deploy.integrations.opensearch",  # opensearch
    "deploy.integrations.vespa",       # vespa
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m deploy", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    for name in COMMANDS:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name != name:
                raise
            continue  # a command not built yet
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
