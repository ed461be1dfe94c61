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


def header_text(value) -> str | None:
    """A header as text, whatever the caller passed: a server may hand raw bytes, which
    HTTP defines as latin-1 (RFC 9110 5.5), so they never fail to decode."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value).decode("latin-1")
    return str(value)


def body_data(data, content_type: str | None = None) -> bytes | str:
    """The body as bytes or text: our server passes bytes, the DLC a str, Python callers
    sometimes a bytearray or memoryview; anything else is no HTTP body."""
    if isinstance(data, (bytes, str)):
        return data
    if isinstance(data, (bytearray, memoryview)):
        return bytes(data)
    media = media_type(content_type)
    if data is None and (media == FORM or media.startswith("multipart/")):
        # The DLC's model server parses these into fields and hands the hooks no body.
        raise UnsupportedMediaType(f"the model server reads a {media} body as form fields,"
                                   " not as a request; send application/json",
                                   field="Content-Type")
    if data is None:
        raise InvalidJSON("the body is empty; send a JSON object", field="body")
    raise InvalidJSON(f"the body must be bytes or text, got {type(data).__name__}",
                      field="body")


def check_charset(content_type: str | None) -> None:
    """JSON is UTF-8 (RFC 8259 8.1): a body labelled with another charset is refused rather
    than decoded as UTF-8 against its label, or failed as "not UTF-8"."""
    for param in (content_type or "").split(";")[1:]:
        name, _, value = param.partition("=")
        if name.strip().lower() != "charset":
            continue
        charset = value.strip().strip('"').strip().lower()
        if charset not in ("utf-8", "utf8"):
            raise UnsupportedMediaType(
                f"charset {charset[:40]!r} is not supported; JSON is sent as utf-8",
                field="Content-Type")


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
    check_charset(content_type)
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
    """406 unless ``accept`` allows JSON or JSON lines at a quality above 0.

    Both kinds of body accept both: each answer line is a JSON text, a JSON answer is one
    line, and the DLC turns a missing Accept into application/json before output_fn sees
    it, so application/json cannot be read as refusing a JSON lines answer (RFC 9110 12.5.1
    lets a server disregard an Accept it cannot honour exactly; it answers in kind)."""
    if not (accept or "").strip():
        return
    ranges = _accept_ranges(accept)
    if _quality(ranges, is_json_type) > 0 or _quality(ranges, is_jsonlines_type) > 0:
        return
    raise NotAcceptable(f"cannot answer in {accept!r}; accept {JSON} or {JSON_LINES[0]}",
                        field="Accept")


def _accept_ranges(accept: str) -> list[tuple[str, float]]:
    """(media range, q) for each part of an Accept header."""
    ranges = []
    for part in accept.split(","):
        media, *params = part.split(";")
        q = 1.0
        for param in params:
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                q = _qvalue(value)
        ranges.append((media.strip().lower(), q))
    return ranges


def _qvalue(text: str) -> float:
    # A malformed q is ignored (the range counts as q=1) rather than refused.
    try:
        q = float(text.strip())
    except ValueError:
        return 1.0
    return q if 0 <= q <= 1 else 1.0


def _quality(ranges: list[tuple[str, float]], is_kind) -> float:
    """The q of the most specific range matching a kind of answer (its own types, then
    application/*, then */*); 0 when none matches.  ``application/json;q=0, */*`` refuses
    JSON: the exact range wins over the wildcard."""
    levels: dict[int, float] = {}
    for media, q in ranges:
        level = 2 if media and is_kind(media) else {"application/*": 1, "*/*": 0}.get(media)
        if level is not None:
            levels[level] = max(q, levels.get(level, 0.0))
    return levels[max(levels)] if levels else 0.0


def encode_json(obj) -> bytes:
    return json.dumps(obj, ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode()


# OpenSearch's JsonPath (json-smart) reads a number longer than 18 characters as a BigDecimal,
# which ml-commons' built-in Cohere rerank post-process cannot cast to Double.
NUMBER_CHARS = 18


def as_float(x) -> float:
    """Plain Python float for JSON (numpy floats break json.dumps in the DLC), with as many
    significant digits as fit in ``NUMBER_CHARS`` characters: 15 or 16 for a score in 0..1
    (its float32 logit knows 7 or so; a relevance near 1.0 keeps telling logits apart up to
    about 35), fewer only for extreme exponents."""
    value = float(x)
    if not math.isfinite(value):
        return 0.0
    for digits in range(17, 0, -1):
        cut = float(f"{value:.{digits}g}")
        if len(repr(cut)) <= NUMBER_CHARS:
            return cut
    return value  # |value| >= 1e15 is written whole: no logit comes near
