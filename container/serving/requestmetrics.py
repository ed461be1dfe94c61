"""Request metrics around the app: counts by route, dialect and status, latency, requests
in flight, 503 sheds, and clients that left before their answer.

ASGI middleware just inside ``RequestLog``: it reads the fields the handlers already put
in the request's log (dialect, documents, error type), so the routes carry no metrics
code.  Labels take a bounded set of values (route templates, known dialects, status
codes), so a client sending odd paths or formats cannot grow the number of series.
"""

from __future__ import annotations

import asyncio
import time

from starlette.datastructures import Headers
from starlette.routing import Match

from reranker.dialects import DIALECTS, lines
from reranker.wire import is_jsonlines_type, media_type

from .metrics import Metrics

OTHER = "other"  # the route label of a path no route serves (404s)
SHED_REASONS = ("overloaded", "model_loading", "shutting_down", "deadline_exceeded")
FORMATS = frozenset(DIALECTS) | {lines.NAME}


class RequestMetrics:
    def __init__(self, app, metrics: Metrics, routes):
        self.app = app
        self.metrics = metrics
        self.routes = routes

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        route, takes_method = self._route(scope)
        # A POST to a GET route is a 405, not a scoring request: no in-flight count.
        scoring = scope["method"] == "POST" and takes_method
        watch = ClientWatch(receive)
        status = 500  # what the client gets if the app fails before it answers
        started = time.perf_counter()

        async def send_and_note(message):
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                watch.responded = True
            await send(message)

        if scoring:
            self.metrics.in_flight.inc()
        try:
            await self.app(scope, watch.receive if scoring else receive, send_and_note)
        finally:
            watch.stop()
            if scoring:
                self.metrics.in_flight.dec()
            # Answers only: fast 503s under overload would make the latency look better
            # exactly when it is worst.
            if scoring and status < 400:
                self.metrics.request_seconds.labels(route).observe(
                    time.perf_counter() - started)
            self._count(scope, route, status, scoring, watch.gone)

    def _route(self, scope) -> tuple[str, bool]:
        """The route template, and whether it takes the request's method."""
        partial = None
        for candidate in self.routes:
            match, _ = candidate.matches(scope)
            if match is Match.FULL:
                return candidate.path, True
            if match is Match.PARTIAL and partial is None:  # the path, not the method
                partial = candidate.path
        return (partial, False) if partial is not None else (OTHER, False)

    def _count(self, scope, route: str, status: int, scoring: bool, gone: bool) -> None:
        fields = scope.get("state", {}).get("log", {})
        m = self.metrics
        m.requests.labels(route, _dialect(scope, fields) if scoring else "none",
                          str(status)).inc()
        if status == 503 and scoring:  # not /ping's 503 while loading: no request was shed
            reason = fields.get("error")
            m.shed.labels(route, reason if reason in SHED_REASONS else OTHER).inc()
        if gone:
            m.cancelled.labels(route).inc()
        if status == 200 and isinstance(fields.get("documents"), int):
            m.documents.inc(fields["documents"])
        if status == 200 and isinstance(fields.get("top_score"), float):
            m.top_score.observe(fields["top_score"])


def _dialect(scope, fields: dict) -> str:
    """What the body was parsed as: a dialect, ``jsonlines``, or ``unknown`` when it was
    refused before parsing."""
    name = fields.get("dialect")
    if name:
        return name if name in FORMATS else OTHER
    if is_jsonlines_type(media_type(Headers(scope=scope).get("content-type"))):
        return lines.NAME
    return "unknown"


class ClientWatch:
    """Notices a client that disconnects while its request is being handled.

    Once the app has read the whole body, a task waits on the server's ``receive``,
    which from then on returns only ``http.disconnect``: when the client goes, or when
    the response is complete.  A disconnect before the response started is a cancelled
    request.  (Starlette's streaming responses watch for disconnects the same way.)
    """

    def __init__(self, receive):
        self._receive = receive
        self._task: asyncio.Task | None = None
        self.responded = False
        self.gone = False

    async def receive(self):
        message = await self._receive()
        if message["type"] == "http.disconnect":
            self._disconnected()
        elif not message.get("more_body", False) and self._task is None:
            self._task = asyncio.ensure_future(self._wait())
        return message

    async def _wait(self) -> None:
        if (await self._receive())["type"] == "http.disconnect":
            self._disconnected()

    def _disconnected(self) -> None:
        if not self.responded:
            self.gone = True

    def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
