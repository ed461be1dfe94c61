"""The server's own refusals.  Each renders the engine's error body shape:
``{"error": {"type", "message", "field"?}}``, so clients parse one format."""

from __future__ import annotations


class ServerError(Exception):
    status = 500
    type = "internal_error"
    field: str | None = None
    # Refused before the whole body was read: the connection is closed after the answer.
    leaves_body_unread = False

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message

    def to_dict(self) -> dict:
        body = {"type": self.type, "message": self.message}
        if self.field:
            body["field"] = self.field
        return {"error": body}


class BodyTooLarge(ServerError):
    status = 413
    type = "payload_too_large"
    field = "body"
    leaves_body_unread = True

    def __init__(self, limit: int):
        super().__init__(f"the request body is larger than {limit} bytes "
                         "(SERVE_MAX_PAYLOAD_BYTES); send fewer or shorter documents")


class BodyTimeout(ServerError):
    status = 408
    type = "request_timeout"
    field = "body"
    leaves_body_unread = True

    def __init__(self, seconds: float):
        super().__init__(f"the request body took over {seconds:g} s to arrive "
                         "(SERVE_BODY_TIMEOUT); send it at once")


class UnsupportedEncoding(ServerError):
    status = 415
    type = "unsupported_media_type"
    field = "Content-Encoding"
    leaves_body_unread = True

    def __init__(self, value: str):
        super().__init__(f"Content-Encoding {value[:100]!r} is not supported; send the body "
                         "uncompressed, or in one of gzip, deflate")


class InvalidEncoding(ServerError):
    status = 400
    type = "invalid_encoding"
    field = "body"

    def __init__(self, coding: str, why: str):
        super().__init__(f"the body is not valid {coding} data (Content-Encoding: {coding}): "
                         f"{why[:200]}")


class DecodedTooLarge(BodyTooLarge):
    leaves_body_unread = False  # it was read whole: only its decompressed size is too large

    def __init__(self, limit: int):
        ServerError.__init__(self, f"the request body decompresses to more than {limit} bytes "
                                   "(SERVE_MAX_PAYLOAD_BYTES); send fewer or shorter documents")


class ClientGone(ServerError):
    """The client closed the connection before its answer: nobody reads this one.  499, as
    nginx logs it, so the log tells hang-ups from our faults."""

    status = 499
    type = "cancelled"

    def __init__(self):
        super().__init__("the client closed the connection before the answer")


class Overloaded(ServerError):
    status = 503
    type = "overloaded"


class DeadlineExceeded(ServerError):
    """The request ran past SERVE_REQUEST_TIMEOUT: its remaining rows were dropped."""

    status = 503
    type = "deadline_exceeded"

    def __init__(self, seconds: float):
        super().__init__(f"the request took longer than {seconds:g} s (SERVE_REQUEST_TIMEOUT),"
                         " queueing included; its remaining work was dropped: retry it, or"
                         " send fewer documents")


class NotReady(ServerError):
    status = 503
    type = "model_loading"

    def __init__(self):
        super().__init__("the model is still loading; retry when GET /ping answers 200")


class Unhealthy(ServerError):
    status = 503
    type = "unhealthy"

    def __init__(self):
        super().__init__("the model's runtime reports a fault (a lost or faulted GPU); this "
                         "instance cannot score")


class ShuttingDown(ServerError):
    status = 503
    type = "shutting_down"

    def __init__(self):
        super().__init__("the server stopped before this request finished "
                         "(SERVE_SHUTDOWN_TIMEOUT passed); retry it")


def is_typed(exc: BaseException) -> bool:
    """Errors that carry their own status and body: ours and the engine's (RerankError).

    Duck-typed, because a model's code/ may bring its own copy of the engine package."""
    status = getattr(exc, "status", None)
    return (isinstance(status, int) and 400 <= status < 600
            and callable(getattr(exc, "to_dict", None)))
