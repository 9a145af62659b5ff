"""ml.serving.service.body: a body is read up to the limit and no further."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from fastapi import Request

from ml.errors import BodyTooLargeError
from ml.serving.service.body import read_body

CHUNK = 64 << 10


def _request(chunks: int, headers: dict[str, str] | None = None) -> tuple[Request, list[int]]:
    """A request whose body is ``chunks`` chunks of 64 KiB; the list counts those read."""
    sent = [0]

    async def receive() -> dict[str, Any]:
        sent[0] += 1
        more = sent[0] < chunks
        return {"type": "http.request", "body": b"x" * CHUNK, "more_body": more}

    raw = [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
    scope = {"type": "http", "method": "POST", "path": "/", "headers": raw}
    return Request(scope, receive), sent


def test_read_body_returns_a_body_within_the_limit() -> None:
    request, sent = _request(3)
    assert asyncio.run(read_body(request, 3 * CHUNK)) == b"x" * (3 * CHUNK)
    assert sent == [3]


def test_read_body_refuses_a_declared_length_over_the_limit_without_reading() -> None:
    request, sent = _request(10, {"Content-Length": str(10 * CHUNK)})
    with pytest.raises(BodyTooLargeError, match="the body is 655,360 bytes; the limit is 1,000"):
        asyncio.run(read_body(request, 1000))
    assert sent == [0]


def test_read_body_stops_reading_a_chunked_100_mb_body_at_the_limit() -> None:
    request, sent = _request(1600)  # 100 MiB, no Content-Length
    with pytest.raises(
        BodyTooLargeError, match=r"over 1,048,576 bytes \(stopped reading at 1,114,112\)"
    ):
        asyncio.run(read_body(request, 1 << 20))
    assert sent == [17]  # 16 chunks fill the limit, the 17th passes it: 1,583 never read
