"""Errors a user can fix: the CLI prints the message as one line and exits 2."""


class UserError(Exception):
    pass


def first_line(exc: BaseException) -> str:
    """A library's exception as one line (its first), for a UserError's message."""
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def missing_package(exc: ModuleNotFoundError) -> int:
    """A package of the full install is missing (`make demo-model` and `make serve` install
    only serving's): say how to get it in one line, exit code 2."""
    import sys

    print(f"error: the deploy tools need the package {exc.name!r}, which serving's install"
          " leaves out: run `make venv` first",
          file=sys.stderr)
    return 2
