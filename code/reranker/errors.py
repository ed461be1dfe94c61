"""Typed client errors: each knows its HTTP status and renders the same JSON body.

Both doors use them: our server maps ``status`` onto the response; the official DLC
turns any exception into HTTP 400 with ``str(exc)``, which is why ``__str__`` is the
JSON body too.
"""

from __future__ import annotations

import json

# Error bodies quote the client's input (a key, a value, a path): quoted up to this many
# characters, so a hostile body cannot make its own error answer megabytes long.
MAX_MESSAGE_CHARS = 1000
MAX_FIELD_CHARS = 200


def clip(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` characters, marked as cut."""
    return text if len(text) <= limit else text[: limit - 15] + "...(truncated)"


class RerankError(Exception):
    """Base of every error a request can cause.  ``field`` names the offending input."""

    status = 400
    type = "invalid_request"

    def __init__(self, message: str, field: str | None = None, hint: str | None = None):
        message = clip(message, MAX_MESSAGE_CHARS)
        field = None if field is None else clip(field, MAX_FIELD_CHARS)
        super().__init__(message)
        self.message = message
        self.field = field
        # What to send instead, appended to the message; a JSON lines answer leaves it out
        # (``brief``), or a body of many bad lines would repeat it on every line.
        self.hint = hint

    def to_dict(self, brief: bool = False) -> dict:
        message = self.message if brief or not self.hint else f"{self.message}: {self.hint}"
        body = {"type": self.type, "message": message}
        if self.field is not None:
            body["field"] = self.field
        return {"error": body}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), ensure_ascii=False)

    def __str__(self) -> str:
        return self.to_json()


class InvalidJSON(RerankError):
    status = 400
    type = "invalid_json"


class InvalidRequest(RerankError):
    """Well-formed JSON that breaks a rule of its dialect (wrong type, empty, out of range)."""

    status = 422
    type = "validation_error"


class UnknownDialect(RerankError):
    status = 422
    type = "unknown_format"


class PayloadTooLarge(RerankError):
    status = 413
    type = "payload_too_large"


class TooLargeForDevice(PayloadTooLarge):
    """A row that ran out of device memory even scored alone: only its request fails.
    ``row`` is its index among the rows the request sent to the model."""

    def __init__(self, message: str, field: str | None = None, row: int = 0):
        super().__init__(message, field)
        self.row = row


class UnsupportedMediaType(RerankError):
    status = 415
    type = "unsupported_media_type"


class NotAcceptable(RerankError):
    status = 406
    type = "not_acceptable"


class Cancelled(RerankError):
    """The caller gave up (its client closed the connection): its rows were not computed.
    499, as nginx logs a request whose client went away."""

    status = 499
    type = "cancelled"


class NonFiniteScore(RerankError):
    """The model computed NaN or infinity for a pair (a reduced precision overflowed): the
    request fails rather than answer a made-up score.  The model's fault, not the input's."""

    status = 500
    type = "non_finite_score"


class WorkerGone(RerankError):
    """The engine's worker thread is not running in this process: it was forked after the
    model loaded (threads do not survive a fork), as multi-model-server does with
    ``MMS_PRELOAD_MODEL=true``.  Refused at once rather than left waiting forever."""

    status = 503
    type = "worker_not_running"

    def __init__(self):
        super().__init__("the engine's worker thread does not run in this process (it was"
                         " forked after the model loaded: leave MMS_PRELOAD_MODEL unset)")


class ModelNotLoaded(RerankError):
    """The model failed to load under the DLC's model server, which keeps serving anyway:
    each request is told why, at once (reranker/refusals.py)."""

    status = 503
    type = "model_load_failed"


class EngineClosed(RerankError):
    """The engine was closed (a shutdown) before the request's rows were computed."""

    status = 503
    type = "shutting_down"

    def __init__(self, message: str = "the model was stopped (server shutdown) before this "
                                      "request finished; retry it"):
        super().__init__(message)
