"""uvicorn's h11 protocol with our connection limits, answering JSON where uvicorn answers text.

uvicorn refuses a request it cannot parse (a malformed Content-Length or chunk size, a
Transfer-Encoding other than chunked, TLS bytes on the plain port, a request line and
headers over SERVE_MAX_HEADER_BYTES) with ``400 text/plain`` before the app sees it.  Here
the same refusals answer in our error shape, with 431 for an oversized head.  Two limits
uvicorn lacks are added:

- open connections (SERVE_MAX_CONNECTIONS): one more is answered 503 and closed at once.
  uvicorn's own ``limit_concurrency`` answers text/plain and counts the app's tasks too;
- a head timeout (SERVE_HEADER_TIMEOUT): a connection that has not sent a whole request
  line and headers in time gets 408.  uvicorn restarts its keep-alive timer on every byte,
  so a client trickling a header would hold its connection forever.

These answers are written as raw bytes, since h11 may refuse to frame a response once the
client broke the protocol, and each closes the connection: our side at once, the socket
after a moment of reading and dropping what the client still sends (closing a socket with
unread bytes resets the connection, which can destroy the answer before it is read).
"""

from __future__ import annotations

import json
import logging
import sys
import uuid

from uvicorn.protocols.http.h11_impl import H11Protocol

from reranker.errors import clip

from .config import ServerConfig

log = logging.getLogger("serving.request")

# Seconds a refused connection is drained before it is closed.
LINGER_SECONDS = 2.0
_REASONS = {400: "Bad Request", 408: "Request Timeout", 431: "Request Header Fields Too Large",
            503: "Service Unavailable"}


def protocol_class(config: ServerConfig) -> type[H11Protocol]:
    """The protocol uvicorn instantiates per connection, with ``config``'s limits."""
    return type("ServingProtocol", (ServingProtocol,), {
        "max_connections": config.max_connections,
        "header_timeout": config.header_timeout,
        "max_header_bytes": config.max_header_bytes,
    })


class ServingProtocol(H11Protocol):
    max_connections = 256
    header_timeout = 20.0
    max_header_bytes = 65536
    _head_timer = None
    _refused = False

    def connection_made(self, transport) -> None:
        super().connection_made(transport)
        if len(self.connections) > self.max_connections:
            self._refuse(503, "overloaded", f"more than {self.max_connections} open connections "
                                            "(SERVE_MAX_CONNECTIONS); retry shortly")
            return
        self._arm_head_timer()

    def data_received(self, data: bytes) -> None:
        if self._refused:
            return  # drained until the lingering close
        # The first bytes of a keep-alive connection's next request start its head's clock.
        if self._head_timer is None and self._between_requests():
            self._arm_head_timer()
        super().data_received(data)

    def handle_events(self) -> None:
        cycle = self.cycle
        super().handle_events()
        if self.cycle is not cycle:  # a whole head arrived: the app has the request now
            self._cancel_head_timer()
            # h11 bounds a head that arrives in pieces; one that came in a single read is
            # measured here (its request, already scheduled, then finds the client gone).
            if _head_size(self.scope) > self.max_header_bytes:
                self._refuse(431, "headers_too_large", self._too_large)

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_head_timer()
        super().connection_lost(exc)

    def send_400_response(self, msg: str) -> None:
        """uvicorn calls this inside its ``except h11.RemoteProtocolError`` block."""
        error = sys.exc_info()[1]
        if getattr(error, "error_status_hint", 400) == 431:
            self._refuse(431, "headers_too_large", self._too_large)
            return
        detail = clip(str(error or msg), 200)
        self._refuse(400, "invalid_http", f"malformed HTTP request: {detail}")

    @property
    def _too_large(self) -> str:
        return (f"the request line and headers are over {self.max_header_bytes} bytes "
                "(SERVE_MAX_HEADER_BYTES)")

    def _between_requests(self) -> bool:
        return self.cycle is None or self.cycle.response_complete

    def _arm_head_timer(self) -> None:
        self._cancel_head_timer()
        self._head_timer = self.loop.call_later(self.header_timeout, self._head_timed_out)

    def _cancel_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_timed_out(self) -> None:
        self._head_timer = None
        if self._between_requests() and not self.transport.is_closing():
            self._refuse(408, "request_timeout",
                         f"the request line and headers took over {self.header_timeout:g} s "
                         "(SERVE_HEADER_TIMEOUT)")

    def _refuse(self, status: int, kind: str, message: str) -> None:
        """Answer ``status`` with our JSON error body and close the connection."""
        if self._refused or self.transport.is_closing():
            return
        self._refused = True
        request_id = uuid.uuid4().hex
        if self.cycle is not None and self.cycle.response_started:
            self.transport.close()  # too late for an answer of our own
            return
        if self.cycle is not None:
            self.cycle.disconnected = True  # the app's answer, if any, goes nowhere
        body = json.dumps({"error": {"type": kind, "message": message}}).encode()
        head = (f"HTTP/1.1 {status} {_REASONS[status]}\r\ncontent-type: application/json\r\n"
                f"content-length: {len(body)}\r\nx-request-id: {request_id}\r\n"
                + ("retry-after: 1\r\n" if status == 503 else "")
                + "connection: close\r\n\r\n")
        self.transport.write(head.encode("ascii") + body)
        if self.transport.can_write_eof():
            self.transport.write_eof()
        self.loop.call_later(LINGER_SECONDS, self.transport.close)
        self._cancel_head_timer()
        log.info("request", extra={"event": "request", "request_id": request_id,
                                   "status": status, "error": kind,
                                   "client": self.client and self.client[0]})


def _head_size(scope) -> int:
    """Bytes of the request line and headers, give or take their separators."""
    return (len(scope["raw_path"]) + len(scope["query_string"])
            + sum(len(name) + len(value) + 4 for name, value in scope["headers"]))
