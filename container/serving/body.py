"""Reading a request body within the payload limit and the body timeout.

A declared Content-Length above the limit is refused before a byte is read (and a client
that sent ``Expect: 100-continue`` never sends the body); a chunked body is counted while
it streams and refused as soon as it passes the limit.  A body that has not arrived whole
within the timeout is refused too (408): bodies are read before admission, so a slow
client only holds its own connection, and not for long.

``Content-Encoding: gzip`` (or ``x-gzip``) and ``deflate`` (the zlib format, RFC 9110
8.4.1.2) bodies are decompressed, the decompressed bytes held to the same limit (413 as
soon as they pass it: a zip bomb costs at most the limit).  Any other coding, or more than
one, is refused with 415 before the body is read; ``identity`` is no coding.
"""

from __future__ import annotations

import asyncio
import zlib

from starlette.requests import Request

from .errors import BodyTimeout, BodyTooLarge, DecodedTooLarge, InvalidEncoding, UnsupportedEncoding

# Content codings we decode -> zlib's wbits for them.
CODINGS = {"gzip": 16 + zlib.MAX_WBITS, "x-gzip": 16 + zlib.MAX_WBITS,
           "deflate": zlib.MAX_WBITS}


async def read_body(request: Request, limit: int, timeout: float) -> bytes:
    coding = content_coding(request.headers.getlist("content-encoding"))
    declared = request.headers.get("content-length", "").strip()
    if declared.isdigit() and int(declared) > limit:
        raise BodyTooLarge(limit)
    try:
        async with asyncio.timeout(timeout):
            body = await _read(request, limit)
    except TimeoutError:
        raise BodyTimeout(timeout) from None
    return decode(body, coding, limit) if coding else body


def content_coding(values: list[str]) -> str | None:
    """The one coding the Content-Encoding headers name (None: identity); 415 otherwise."""
    codings = [token.strip().lower() for value in values for token in value.split(",")]
    codings = [coding for coding in codings if coding and coding != "identity"]
    if not codings:
        return None
    if len(codings) > 1 or codings[0] not in CODINGS:
        raise UnsupportedEncoding(", ".join(values))
    return codings[0]


def decode(data: bytes, coding: str, limit: int) -> bytes:
    """``data`` decompressed, never past ``limit`` bytes (then 413).  One compressed stream:
    bytes after it are refused (but the zeros gzip(1) allows)."""
    if not data:
        return data
    decoder = zlib.decompressobj(CODINGS[coding])
    try:
        # limit + 1: one byte more says it is too large (max_length 0 would mean no bound).
        out = decoder.decompress(data, limit + 1)
    except zlib.error as exc:
        raise InvalidEncoding(coding, str(exc)) from None
    if len(out) > limit:
        raise DecodedTooLarge(limit)
    if not decoder.eof:
        raise InvalidEncoding(coding, "the compressed stream ends early")
    if decoder.unused_data.strip(b"\0" if coding != "deflate" else b""):
        raise InvalidEncoding(coding, "bytes follow the end of the compressed stream")
    return out


async def _read(request: Request, limit: int) -> bytes:
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge(limit)
        chunks.append(chunk)
    return b"".join(chunks)
