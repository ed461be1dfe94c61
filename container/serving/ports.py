"""Whether a port can be listened on, asked before minutes of model loading.

``python -m serving.ports HOST PORT`` answers the same for ``make docker-run``: one line
and exit status 2 when another process holds the port.
"""

from __future__ import annotations

import errno
import socket
import sys


def taken(host: str, port: int) -> str | None:
    """Why ``port`` is in use on ``host`` (None when it is free).  Only "address in use"
    counts: any other bind error (an address family the host lacks) is left to the
    server, which tries every address the host name has.  SO_REUSEADDR as uvicorn binds:
    a port a stopped server left in TIME_WAIT is free."""
    try:
        family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
        with socket.socket(family, socket.SOCK_STREAM) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind((host, port))
    except OSError as exc:
        return exc.strerror if exc.errno == errno.EADDRINUSE else None
    return None


def main(argv: list[str]) -> int:
    host, port = argv
    if not port.isdigit() or not 0 < int(port) < 65536:
        print(f"error: {port!r} is not a port (1-65535): pass PORT=...", file=sys.stderr)
        return 2
    reason = taken(host, int(port))
    if reason:
        print(f"error: cannot publish on {host}:{port}: {reason} (another server there?"
              " pass PORT=...)", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
