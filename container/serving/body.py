"""Reading a request body within the payload limit and the body timeout.

A declared Content-Length above the limit is refused before a byte is read (and a client
that sent ``Expect: 100-continue`` never sends the body); a chunked body is counted while
it streams and refused as soon as it passes the limit.  A body that has not arrived whole
within the timeout is refused too (408): bodies are read before admission, so a slow
client only holds its own connection, and not for long.
"""

from __future__ import annotations

import asyncio

from starlette.requests import Request

from .errors import BodyTimeout, BodyTooLarge


async def read_body(request: Request, limit: int, timeout: float) -> bytes:
    declared = request.headers.get("content-length", "").strip()
    if declared.isdigit() and int(declared) > limit:
        raise BodyTooLarge(limit)
    try:
        async with asyncio.timeout(timeout):
            return await _read(request, limit)
    except TimeoutError:
        raise BodyTimeout(timeout) from None


async def _read(request: Request, limit: int) -> bytes:
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge(limit)
        chunks.append(chunk)
    return b"".join(chunks)
