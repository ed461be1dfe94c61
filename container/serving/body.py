"""Reading a request body within the payload limit.

A declared Content-Length above the limit is refused before a byte is read (and a client
that sent ``Expect: 100-continue`` never sends the body); a chunked body is counted while
it streams and refused as soon as it passes the limit.
"""

from __future__ import annotations

from starlette.requests import Request

from .errors import BodyTooLarge


async def read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length", "").strip()
    if declared.isdigit() and int(declared) > limit:
        raise BodyTooLarge(limit)
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge(limit)
        chunks.append(chunk)
    return b"".join(chunks)
