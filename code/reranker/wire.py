"""Bytes to JSON and back, with the content-type rules of every door."""

from __future__ import annotations

import json
import math

from . import strict_json
from .errors import InvalidJSON, NotAcceptable, UnsupportedMediaType

JSON = "application/json"
FORM = "application/x-www-form-urlencoded"
JSON_LINES = ("application/jsonlines", "application/jsonl", "application/x-jsonlines",
              "application/x-ndjson")


def media_type(header: str | None) -> str:
    return (header or "").split(";", 1)[0].strip().lower()


def is_jsonlines_type(media: str) -> bool:
    """One JSON document per line: SageMaker Batch Transform's application/jsonlines."""
    return media in JSON_LINES


def is_json_type(media: str) -> bool:
    # A missing type is read as JSON: curl and hand-written clients often omit it.
    return media in ("", JSON, "text/json", "application/x-json") or media.endswith("+json")


def decode_json(data: bytes | str | bytearray, content_type: str | None):
    media = media_type(content_type)
    if not media and (content_type or "").strip():
        # ";;;" or "; charset=utf-8": a type was sent but names no media type.
        raise UnsupportedMediaType(
            f"content type {content_type!r} names no media type; send {JSON}",
            field="Content-Type")
    if media == FORM:
        return _form_as_json(data)
    if not is_json_type(media):
        raise UnsupportedMediaType(
            f"content type {media!r} is not supported; send {JSON} ({JSON_LINES[0]}:"
            " one request per line)",
            field="Content-Type",
        )
    if isinstance(data, (bytes, bytearray)):
        try:
            data = bytes(data).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise InvalidJSON(f"the body is not valid UTF-8 ({exc.reason} at byte {exc.start})",
                              field="body") from None
    if not data.strip("\ufeff \t\r\n"):
        raise InvalidJSON("the body is empty; send a JSON object", field="body")
    return strict_json.loads(data)


def _form_as_json(data):
    """``curl -d '{...}'`` without ``-H 'Content-Type: application/json'`` labels JSON as a
    form: take the body when it is a JSON object, refuse real form data."""
    try:
        body = decode_json(data, JSON)
    except InvalidJSON:
        body = None
    if not isinstance(body, dict):
        raise UnsupportedMediaType(
            f"an {FORM} body is accepted only when it is a JSON object (what curl -d sends"
            " without a Content-Type); send application/json", field="Content-Type")
    return body


def check_accept(accept: str | None) -> None:
    if not accept:
        return
    for part in accept.split(","):
        media = media_type(part)
        if media in ("*/*", "application/*") or is_json_type(media) or is_jsonlines_type(media):
            return
    raise NotAcceptable(f"cannot answer in {accept!r}; accept {JSON} or {JSON_LINES[0]}",
                        field="Accept")


def encode_json(obj) -> bytes:
    return json.dumps(obj, ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode()


def as_float(x) -> float:
    """Plain Python float for JSON (numpy floats break json.dumps in the DLC)."""
    value = float(x)
    return value if math.isfinite(value) else 0.0
