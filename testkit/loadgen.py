"""A small HTTP load generator for the scoring service (tests and benchmarks).

Each connection is one thread with a keep-alive ``http.client`` connection sending the
same body in a loop. Run as a program (``python -m testkit.loadgen URL BODY_FILE
--connections 4 --seconds 5``) it prints one JSON object: request count, failures,
rows/s and latency percentiles, so the benchmark measures from another process.
"""

from __future__ import annotations

import argparse
import http.client
import json
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit


@dataclass
class Result:
    """What one connection saw: per request (start, end, status, parsed body or None)."""

    records: list[tuple[float, float, int, Any]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def _connection(url: str) -> http.client.HTTPConnection:
    parts = urlsplit(url)
    return http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port or 80, timeout=30)


def post(conn: http.client.HTTPConnection, path: str, body: bytes) -> tuple[int, bytes]:
    conn.request("POST", path, body, {"Content-Type": "application/json"})
    resp = conn.getresponse()
    return resp.status, resp.read()


def worker(
    url: str,
    body: bytes,
    stop: Callable[[int], bool],
    result: Result,
    *,
    parse: bool = True,
    path: str = "/predict",
) -> None:
    """Send ``body`` until ``stop(n_sent)``; connection errors are recorded, not raised."""
    conn = _connection(url)
    n = 0
    while not stop(n):
        t0 = time.perf_counter()
        try:
            status, data = post(conn, path, body)
        except (OSError, http.client.HTTPException) as exc:
            result.errors.append(f"{type(exc).__name__}: {exc}")
            conn.close()
            conn = _connection(url)
            continue
        t1 = time.perf_counter()
        result.records.append((t0, t1, status, json.loads(data) if parse else None))
        n += 1
    conn.close()


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def run(
    url: str, body: bytes, *, connections: int, seconds: float = 0.0, requests: int = 0
) -> dict[str, Any]:
    """Load for ``seconds`` (or ``requests`` per connection); returns the summary."""
    rows = len(json.loads(body)["rows"])
    results = [Result() for _ in range(connections)]
    deadline = time.perf_counter() + seconds

    def stop(n: int) -> bool:
        return n >= requests if requests else time.perf_counter() >= deadline

    threads = [
        threading.Thread(target=worker, args=(url, body, stop, r), kwargs={"parse": False})
        for r in results
    ]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - start
    records = [rec for r in results for rec in r.records]
    ok = [rec for rec in records if rec[2] == 200]
    latency = [rec[1] - rec[0] for rec in ok]
    return {
        "connections": connections,
        "requests": len(records),
        "failed": len(records) - len(ok) + sum(len(r.errors) for r in results),
        "seconds": wall,
        "requests_per_s": len(ok) / wall,
        "rows_per_s": rows * len(ok) / wall,
        "p50_ms": 1000 * percentile(latency, 0.5),
        "p99_ms": 1000 * percentile(latency, 0.99),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m testkit.loadgen")
    parser.add_argument("url")
    parser.add_argument("body_file")
    parser.add_argument("--connections", type=int, default=1)
    parser.add_argument("--seconds", type=float, default=0.0)
    parser.add_argument("--requests", type=int, default=0, help="per connection")
    args = parser.parse_args(argv)
    with open(args.body_file, "rb") as fh:
        body = fh.read()
    out = run(
        args.url,
        body,
        connections=args.connections,
        seconds=args.seconds,
        requests=args.requests,
    )
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
