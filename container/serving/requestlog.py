"""Request ids and one JSON log line per request, around the whole app.

Outermost ASGI middleware, so every response (404, 405, 500 included) carries
X-Request-Id.  An incoming X-Amzn-RequestId or X-Request-Id is reused, so a client's id
and SageMaker's follow the request into our logs.  Handlers add fields (dialect,
documents, tokens, error) to ``request.state.log``.
"""

from __future__ import annotations

import logging
import re
import time
import uuid

from starlette.datastructures import Headers, MutableHeaders

log = logging.getLogger("serving.request")

_INCOMING = ("x-amzn-requestid", "x-request-id")
_SAFE_ID = re.compile(r"^[A-Za-z0-9._:/+=-]{1,128}$")


def request_id(headers: Headers) -> str:
    for name in _INCOMING:
        value = headers.get(name, "").strip()
        if _SAFE_ID.match(value):  # never echo arbitrary bytes into headers and logs
            return value
    return uuid.uuid4().hex


class RequestLog:
    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        rid = request_id(Headers(scope=scope))
        fields: dict = {}
        state = scope.setdefault("state", {})
        state["request_id"], state["log"] = rid, fields
        status = 500
        started = time.perf_counter()

        async def send_with_id(message):
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                MutableHeaders(scope=message).append("X-Request-Id", rid)
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            latency = round((time.perf_counter() - started) * 1000, 2)
            # SageMaker pings every few seconds: pings only at debug level.
            level = logging.DEBUG if scope["path"] == "/ping" else logging.INFO
            log.log(level, "request", extra={
                "event": "request", "request_id": rid, "method": scope["method"],
                "path": scope["path"], "status": status, "latency_ms": latency, **fields})
