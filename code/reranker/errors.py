"""Typed client errors: each knows its HTTP status and renders the same JSON body.

Both doors use them: our server maps ``status`` onto the response; the official DLC
turns any exception into HTTP 400 with ``str(exc)``, which is why ``__str__`` is the
JSON body too.
"""

from __future__ import annotations

import json


class RerankError(Exception):
    """Base of every error a request can cause.  ``field`` names the offending input."""

    status = 400
    type = "invalid_request"

    def __init__(self, message: str, field: str | None = None):
        super().__init__(message)
        self.message = message
        self.field = field

    def to_dict(self) -> dict:
        body = {"type": self.type, "message": self.message}
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


class UnsupportedMediaType(RerankError):
    status = 415
    type = "unsupported_media_type"


class NotAcceptable(RerankError):
    status = 406
    type = "not_acceptable"
