"""Bytes to JSON and back, with the content-type rules of every door."""

from __future__ import annotations

import json
import math

from .errors import InvalidJSON, NotAcceptable, UnsupportedMediaType

JSON = "application/json"


def media_type(header: str | None) -> str:
    return (header or "").split(";", 1)[0].strip().lower()


def is_json_type(media: str) -> bool:
    # A missing type is read as JSON: curl and hand-written clients often omit it.
    return media in ("", JSON, "text/json", "application/x-json") or media.endswith("+json")


def decode_json(data: bytes | str | bytearray, content_type: str | None):
    media = media_type(content_type)
    if not is_json_type(media):
        raise UnsupportedMediaType(
            f"content type {media!r} is not supported; send application/json",
            field="Content-Type",
        )
    if isinstance(data, (bytes, bytearray)):
        try:
            data = bytes(data).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise InvalidJSON(f"the body is not valid UTF-8 ({exc.reason} at byte {exc.start})",
                              field="body") from None
    if not data.strip():
        raise InvalidJSON("the body is empty; send a JSON object", field="body")
    try:
        return json.loads(data, parse_constant=_reject_constant)
    except json.JSONDecodeError as exc:
        raise InvalidJSON(f"the body is not valid JSON: {exc.msg} at line {exc.lineno}"
                          f" column {exc.colno}", field="body") from None
    except RecursionError:
        raise InvalidJSON("the body nests JSON too deeply", field="body") from None


def _reject_constant(name: str):
    raise json.JSONDecodeError(f"{name} is not valid JSON", name, 0)


def check_accept(accept: str | None) -> None:
    if not accept:
        return
    for part in accept.split(","):
        media = media_type(part)
        if media in ("*/*", "application/*") or is_json_type(media):
            return
    raise NotAcceptable(f"cannot answer in {accept!r}; accept application/json", field="Accept")


def encode_json(obj) -> bytes:
    return json.dumps(obj, ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode()


def as_float(x) -> float:
    """Plain Python float for JSON (numpy floats break json.dumps in the DLC)."""
    value = float(x)
    return value if math.isfinite(value) else 0.0
