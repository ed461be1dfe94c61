"""HTTP over a bare socket, for requests no client library will send (malformed framing,
TLS bytes on the plain port, trickled heads and bodies).  Standard library only."""

from __future__ import annotations

import json
import socket
import time
from urllib.parse import urlsplit


def address(base_url: str) -> tuple[str, int]:
    parts = urlsplit(base_url)
    return parts.hostname or "127.0.0.1", parts.port or 80


def connect(base_url: str, timeout: float = 15.0) -> socket.socket:
    sock = socket.create_connection(address(base_url), timeout=timeout)
    sock.settimeout(timeout)
    return sock


def read_all(sock: socket.socket) -> bytes:
    """Everything until the server closes (or the socket's timeout passes)."""
    out = b""
    try:
        while chunk := sock.recv(65536):
            out += chunk
    except (TimeoutError, ConnectionResetError):
        pass
    return out


def exchange(base_url: str, data: bytes, timeout: float = 15.0, half_close: bool = True
             ) -> bytes:
    """Send ``data``, close our side (unless told not to: uvicorn takes that for a hang-up),
    and return what the server answers before closing."""
    with connect(base_url, timeout) as sock:
        try:
            sock.sendall(data)
            if half_close:
                sock.shutdown(socket.SHUT_WR)
        except OSError:
            pass  # it answered and closed before reading everything
        return read_all(sock)


class Response:
    """One parsed HTTP/1.1 response (the first in ``raw``)."""

    def __init__(self, raw: bytes):
        head, _, rest = raw.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        self.status = int(lines[0].split(" ")[1])
        self.headers = {k.strip().lower(): v.strip()
                        for k, _, v in (line.partition(":") for line in lines[1:])}
        length = int(self.headers.get("content-length", len(rest)))
        self.body = rest[:length]

    def json(self):
        return json.loads(self.body)


def request(method: str, target: str, headers: dict[str, str] | None = None,
            body: bytes = b"") -> bytes:
    lines = [f"{method} {target} HTTP/1.1", "Host: 127.0.0.1"]
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    if body and not any(k.lower() in ("content-length", "transfer-encoding")
                        for k in headers or {}):
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def trickle(base_url: str, head: bytes, timeout: float = 30.0) -> socket.socket:
    """A connection that sent ``head`` and then nothing: the caller trickles or waits."""
    sock = connect(base_url, timeout)
    sock.sendall(head)
    return sock


def wait_closed(sock: socket.socket, timeout: float) -> bytes:
    """What the server sends before it closes ``sock``, waiting ``timeout`` seconds at most."""
    sock.settimeout(timeout)
    started = time.monotonic()
    out = b""
    while time.monotonic() - started < timeout:
        try:
            chunk = sock.recv(65536)
        except (TimeoutError, ConnectionResetError):
            break
        if not chunk:
            break
        out += chunk
    return out
