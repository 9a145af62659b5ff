"""Reading a request body with a size limit, without buffering past it.

A ``Content-Length`` over the limit is refused before any byte is read; a body without
one (chunked) is read chunk by chunk and refused as soon as the count passes the limit:
the rest is never read (the server closes the connection after the 413).
"""

from __future__ import annotations

from fastapi import Request


class BodyTooLarge(Exception):
    """A body over the limit: ``declared`` (its Content-Length) or ``read`` bytes so far."""

    def __init__(self, limit: int, *, declared: int | None = None, read: int = 0) -> None:
        self.limit, self.declared, self.read = limit, declared, read
        if declared is not None:
            text = f"the body is {declared:,} bytes"
        else:
            text = f"the body is over {limit:,} bytes (stopped reading at {read:,})"
        super().__init__(f"{text}; the limit is {limit:,}")


async def read_body(request: Request, limit: int) -> bytes:
    """The whole body if it is at most ``limit`` bytes.

    Raises:
        BodyTooLarge: the Content-Length, or the bytes received so far, exceed ``limit``.
    """
    length = request.headers.get("content-length")
    if length is not None and length.isdigit() and int(length) > limit:
        raise BodyTooLarge(limit, declared=int(length))
    chunks: list[bytes] = []
    total = 0
    async for chunk in request.stream():
        total += len(chunk)
        if total > limit:
            raise BodyTooLarge(limit, read=total)
        chunks.append(chunk)
    return b"".join(chunks)
