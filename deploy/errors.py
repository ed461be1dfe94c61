"""Errors a user can fix: the CLI prints the message as one line and exits 2."""


class UserError(Exception):
    pass
