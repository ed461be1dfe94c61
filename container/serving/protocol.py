"""uvicorn's h11 protocol with our connection limits, answering JSON where uvicorn answers text.

uvicorn refuses a request it cannot parse (a malformed Content-Length or chunk size, a
Transfer-Encoding other than chunked, TLS bytes on the plain port, a request line and
headers over SERVE_MAX_HEADER_BYTES) with ``400 text/plain`` before the app sees it.  Here
the same refusals answer in our error shape, with 431 for an oversized head.  Heads h11
reads but we refuse are answered 400 ``invalid_http`` before the app sees them: another
HTTP version than 1.x (the HTTP/2 preface ``PRI * HTTP/2.0``), and both Content-Length
and Transfer-Encoding (RFC 9112 6.1 and 6.3: a request-smuggling pattern, "ought to be
handled as an error"; rejecting also meets the MUST to close the connection after it).
Limits uvicorn lacks are added:

- open connections (SERVE_MAX_CONNECTIONS): one more first closes the connection idle
  longest between two requests (a keep-alive one, which clients reopen); when none is
  idle, the newcomer is answered 503 and closed.  uvicorn's own ``limit_concurrency``
  answers text/plain and counts the app's tasks too;
- a head timeout (SERVE_HEADER_TIMEOUT): a connection that has not sent a whole request
  line and headers in time gets 408.  uvicorn restarts its keep-alive timer on every byte,
  so a client trickling a header would hold its connection forever;
- a send timeout (SERVE_SEND_TIMEOUT): a client that stops reading its answer leaves it in
  the transport's write buffer, and asyncio's ``close()`` waits for that buffer to drain, so
  the connection would stay open (and counted) forever.  Once the buffer holds bytes (the
  transport's ``pause_writing``, or an answer complete but not yet sent), it is checked
  every second; a connection whose buffer has not shrunk for SERVE_SEND_TIMEOUT is aborted.

These answers are written as raw bytes, since h11 may refuse to frame a response once the
client broke the protocol, and each closes the connection: our side at once, the socket
after a moment of reading and dropping what the client still sends (closing a socket with
unread bytes resets the connection, which can destroy the answer before it is read).
The app's own answers that close the connection before the request's body was read (413
by Content-Length, 415, 401) close the same way (``_ClosingAfterDrain``).
"""

from __future__ import annotations

import json
import logging
import sys
import uuid

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

from reranker.errors import clip

from .config import ServerConfig

log = logging.getLogger("serving.request")

# Seconds a refused connection is drained before it is closed.
LINGER_SECONDS = 2.0
# Seconds between two looks at a write buffer that holds bytes (or SERVE_SEND_TIMEOUT if less).
SEND_CHECK_SECONDS = 1.0
_REASONS = {400: "Bad Request", 408: "Request Timeout", 431: "Request Header Fields Too Large",
            503: "Service Unavailable"}


def protocol_class(config: ServerConfig) -> type[H11Protocol]:
    """The protocol uvicorn instantiates per connection, with ``config``'s limits."""
    return type("ServingProtocol", (ServingProtocol,), {
        "max_connections": config.max_connections,
        "header_timeout": config.header_timeout,
        "max_header_bytes": config.max_header_bytes,
        "send_timeout": config.send_timeout,
    })


class ServingProtocol(H11Protocol):
    max_connections = 256
    header_timeout = 20.0
    max_header_bytes = 65536
    send_timeout = 30.0
    _head_timer = None
    _refused = False
    _rejected: str | None = None  # why a head h11 read is refused (see _should_upgrade)
    # Since when the connection waits for its next request, having answered one; None while
    # a request is on its way or in progress, and before the first.
    _idle_since: float | None = None
    _send_check = None
    _unsent = 0
    _sent_at = 0.0  # when the write buffer last shrank (or started to hold bytes)

    def connection_made(self, transport) -> None:
        super().connection_made(transport)
        if len(self.connections) > self.max_connections and not self._evict_idle():
            self._refuse(503, "overloaded", f"more than {self.max_connections} open connections "
                                            "(SERVE_MAX_CONNECTIONS), none of them idle; "
                                            "retry shortly")
            return
        self._arm_head_timer()

    def data_received(self, data: bytes) -> None:
        self._idle_since = None
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
            self.cycle.transport = _ClosingAfterDrain(self.transport, self)
            self._cancel_head_timer()
            # h11 bounds a head that arrives in pieces; one that came in a single read is
            # measured here (its request, already scheduled, then finds the client gone).
            if _head_size(self.scope) > self.max_header_bytes:
                self._refuse(431, "headers_too_large", self._too_large)

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_head_timer()
        self._idle_since = None
        if self._send_check is not None:
            self._send_check.cancel()
            self._send_check = None
        super().connection_lost(exc)

    def shutdown(self) -> None:
        """uvicorn calls this on every connection at SIGTERM.  A refused one is already
        closing (its lingering close is scheduled), and h11, which never framed our raw
        refusal, would raise at a ConnectionClosed there: the exception would end the
        server's shutdown before the other connections drain."""
        if self._refused:
            return
        try:
            super().shutdown()
        except h11.LocalProtocolError:
            self.transport.close()

    def on_response_complete(self) -> None:
        super().on_response_complete()  # may start a pipelined request
        if self._between_requests() and not self.transport.is_closing():
            self._idle_since = self.loop.time()
        self._watch_send()  # the answer may still sit in the write buffer, closing or not

    def pause_writing(self) -> None:
        """The transport's write buffer is over its high-water mark: the client reads slowly."""
        super().pause_writing()
        self._watch_send()

    def _should_upgrade(self) -> bool:
        """uvicorn asks this once a head is parsed, before the app is started; a True makes
        it call ``handle_websocket_upgrade`` instead (websockets are off: ``ws="none"``)."""
        self._rejected = self._framing_problem()
        return self._rejected is not None or super()._should_upgrade()

    def handle_websocket_upgrade(self, event) -> None:
        if self._rejected is not None:
            self._cancel_head_timer()
            self._refuse(400, "invalid_http", self._rejected)
            return
        super().handle_websocket_upgrade(event)  # pragma: no cover (ws="none")

    def _framing_problem(self) -> str | None:
        version = self.scope["http_version"]
        if not version.startswith("1."):
            if self.scope["method"] == "PRI" and self.scope["raw_path"] == b"*":
                return ("the HTTP/2 connection preface: this port serves HTTP/1.1 only "
                        "(no h2c); send HTTP/1.1")
            return f"HTTP/{version} is not served; send HTTP/1.1"
        names = {name for name, _ in self.headers}
        if b"content-length" in names and b"transfer-encoding" in names:
            return ("both Content-Length and Transfer-Encoding are set, which a proxy and this "
                    "server could frame differently (RFC 9112 6.3); send one of them")
        return None

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

    def _is_idle(self) -> bool:
        """Between two requests after answering one, no byte of the next one read, and the
        last answer sent: closing it loses nothing a client does not retry."""
        return (self._idle_since is not None and not self._refused
                and self._between_requests() and not self.transport.is_closing()
                and self.transport.get_write_buffer_size() == 0
                and not self.conn.trailing_data[0])

    def _evict_idle(self) -> bool:
        """Close the connection idle longest, to make room for this one; False if none is."""
        idle = [other for other in self.connections
                if other is not self and getattr(other, "_is_idle", lambda: False)()]
        if not idle:
            return False
        oldest = min(idle, key=lambda other: other._idle_since)
        log.info("idle connection closed", extra={
            "event": "connection_evicted", "client": oldest.client and oldest.client[0],
            "idle_s": round(self.loop.time() - oldest._idle_since, 3),
            "reason": f"over {self.max_connections} open connections (SERVE_MAX_CONNECTIONS)"})
        oldest._close_idle()
        return True

    def _close_idle(self) -> None:
        self._idle_since = None
        self.connections.discard(self)  # counted out now: its close completes later
        self._unset_keepalive_if_required()
        try:
            self.conn.send(h11.ConnectionClosed())
        except h11.LocalProtocolError:  # pragma: no cover (idle: h11 is between cycles)
            pass
        self.transport.close()

    def _watch_send(self) -> None:
        """Check the write buffer until it is empty; abort if it stops draining."""
        if self._send_check is not None or self.transport is None:
            return
        unsent = self.transport.get_write_buffer_size()
        if unsent:
            self._unsent, self._sent_at = unsent, self.loop.time()
            self._schedule_send_check()

    def _schedule_send_check(self) -> None:
        self._send_check = self.loop.call_later(min(SEND_CHECK_SECONDS, self.send_timeout),
                                                self._check_send)

    def _check_send(self) -> None:
        self._send_check = None
        unsent = self.transport.get_write_buffer_size()
        if not unsent:
            return  # the next pause_writing or answer watches again
        now = self.loop.time()
        if unsent < self._unsent:
            self._sent_at = now
        self._unsent = unsent
        if now - self._sent_at < self.send_timeout:
            self._schedule_send_check()
            return
        log.warning("send timeout", extra={
            "event": "send_timeout", "client": self.client and self.client[0],
            "unsent_bytes": unsent,
            "reason": f"the client read none of its answer for {self.send_timeout:g} s "
                       "(SERVE_SEND_TIMEOUT); connection aborted"})
        self._idle_since = None
        self.transport.abort()  # close() would wait for the buffer to drain

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

    def _close_after_drain(self) -> None:
        """Our side closed now; the socket after LINGER_SECONDS of reading and dropping what
        the client still sends."""
        self._refused = True  # data_received drops what comes
        if self.transport.can_write_eof():
            self.transport.write_eof()
        self.loop.call_later(LINGER_SECONDS, self.transport.close)

    def _refuse(self, status: int, kind: str, message: str) -> None:
        """Answer ``status`` with our JSON error body and close the connection."""
        if self._refused or self.transport.is_closing():
            return
        self._refused = True
        self._idle_since = None
        request_id = uuid.uuid4().hex
        # A keep-alive connection's last cycle is complete: the refusal is the next answer.
        current = self.cycle if self.cycle is not None and not self.cycle.response_complete \
            else None
        if current is not None and current.response_started:
            self.transport.close()  # too late for an answer of our own
            return
        if current is not None:
            current.disconnected = True  # the app's answer, if any, goes nowhere
        body = json.dumps({"error": {"type": kind, "message": message}}).encode()
        head = (f"HTTP/1.1 {status} {_REASONS[status]}\r\ncontent-type: application/json\r\n"
                f"content-length: {len(body)}\r\nx-request-id: {request_id}\r\n"
                + ("retry-after: 1\r\n" if status == 503 else "")
                + "connection: close\r\n\r\n")
        self.transport.write(head.encode("ascii") + body)
        self._close_after_drain()
        self._cancel_head_timer()
        log.info("request", extra={"event": "request", "request_id": request_id,
                                   "status": status, "error": kind,
                                   "client": self.client and self.client[0]})


class _ClosingAfterDrain:
    """The transport as a request's cycle sees it: uvicorn closes the connection as soon as
    an answer that ends it is written, and one written before the request's body was read
    (a 413 by Content-Length, a 415, a 401) would then reach the client as a reset.  Such a
    close drains first, as our own refusals do; every other call goes to the transport."""

    def __init__(self, transport, protocol: ServingProtocol):
        self._transport = transport
        self._protocol = protocol

    def __getattr__(self, name: str):
        return getattr(self._transport, name)

    def close(self) -> None:
        unread = self._protocol.conn.their_state is h11.SEND_BODY
        if unread and not self._transport.is_closing():
            self._protocol._close_after_drain()
        else:
            self._transport.close()


def _head_size(scope) -> int:
    """Bytes of the request line and headers, give or take their separators."""
    return (len(scope["raw_path"]) + len(scope["query_string"])
            + sum(len(name) + len(value) + 4 for name, value in scope["headers"]))
