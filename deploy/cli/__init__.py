"""``python -m deploy <command>``: the command line, in one place.

deploy.cli.commands adds each command's arguments and names the function that runs it;
deploy.cli.settings says which deploy settings each command takes.  A handler takes the
parsed arguments and returns an exit code.  Errors the user can fix raise
``deploy.errors.UserError`` and end as one readable line on stderr and exit code 2.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

from deploy.cli import commands, settings
from deploy.errors import UserError, missing_package


class Parser(argparse.ArgumentParser):
    """argparse without prefix matching: ``--mode`` must never be read as ``--model-data``
    where a command lacks the one typed; a bad command line is one line, not the usage
    too.  Sub-parsers are made of this class too."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message}; see `{self.prog} --help`\n")


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="python -m deploy",
        description="Package a reranker, deploy it on SageMaker, call it, and wire it into"
                    " OpenSearch, Elasticsearch or Vespa.")
    parser.add_argument("--make-variables", action="store_true",
                        help="also read each setting from its make variable (REGION, ROLE,"
                             " ...) in the environment, and name settings that way in"
                             " errors: how `make` runs this tool")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for register in commands.REGISTER:
        register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    command = getattr(args, "settings_of", None)
    args.make_variables = (settings.make_variables(command)
                           if args.make_variables and command else {})
    try:
        code = int(_handler(args.handler)(args) or 0)
        sys.stdout.flush()  # a closed pipe shows here, not at interpreter exit
        return code
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except ModuleNotFoundError as exc:
        if exc.name is None or exc.name.split(".")[0] in ("deploy", "reranker", "serving"):
            raise  # ours: a bug, not a missing install
        return missing_package(exc)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `... | head` stopped reading: nothing more to say
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1


def _handler(name: str):
    module, _, function = name.partition(":")
    return getattr(importlib.import_module(module), function)
