"""Errors a user can fix: the CLI prints the message as one line and exits 2."""


class UserError(Exception):
    pass


def first_line(exc: BaseException) -> str:
    """A library's exception as one line (its first), for a UserError's message."""
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
