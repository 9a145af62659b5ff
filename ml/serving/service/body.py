"""Reading a request body with a size limit, without buffering past it.

A ``Content-Length`` over the limit is refused before any byte is read; a body without
one (chunked) is read chunk by chunk and refused as soon as the count passes the limit:
the rest is never read (the server closes the connection after the 413).
"""

from __future__ import annotations

from fastapi import Request

from ml.errors import BodyTooLargeError


async def read_body(request: Request, limit: int) -> bytes:
    """The whole body if it is at most ``limit`` bytes.

    Raises:
        BodyTooLargeError: the Content-Length, or the bytes received so far, exceed ``limit``.
    """
    length = request.headers.get("content-length")
    if length is not None and length.isdigit() and int(length) > limit:
        raise BodyTooLargeError(limit, declared=int(length))
    chunks: list[bytes] = []
    total = 0
    async for chunk in request.stream():
        total += len(chunk)
        if total > limit:
            raise BodyTooLargeError(limit, read=total)
        chunks.append(chunk)
    return b"".join(chunks)
