"""The service's append-only logs: what was scored, and what happened afterwards.

In the log directory (``experiments/serving/<model>/`` by default)::

    predictions.jsonl   one line per /predict: request id, variant, version, scores
                        (and the shadow version's scores, never returned)
    feedback.jsonl      one line per /feedback: request id, row, clicked

Each record is one ``write(2)`` on a file opened with ``O_APPEND``, so the workers of one
service (and several services) append whole lines without a lock; nothing is ever
rewritten. :func:`joined_outcomes` joins the two by (request id, row) for the report.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ml.errors import storage_error

PREDICTIONS_FILE = "predictions.jsonl"
FEEDBACK_FILE = "feedback.jsonl"


class AppendLog:
    """One JSON line per :meth:`append`, a single ``write`` on an ``O_APPEND`` file."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o644)
        except OSError as exc:
            raise storage_error(exc, "opening the log", path) from exc

    def append(self, record: dict[str, Any]) -> None:
        line = (json.dumps(record, separators=(",", ":"), default=float) + "\n").encode()
        written = os.write(self._fd, line)
        if written != len(line):  # a full disk mid-line: end the fragment
            os.write(self._fd, b"\n")
            raise OSError(f"short write to {self.path}")

    def close(self) -> None:
        os.close(self._fd)


def read_jsonl(path: Path) -> Iterator[dict[str, Any]]:
    """The records of a JSON-lines file (torn or foreign lines are skipped)."""
    if not path.is_file():
        return
    with open(path, "rb") as fh:
        for line in fh:
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if isinstance(record, dict):
                yield record


@dataclass(frozen=True)
class Outcome:
    """One scored row whose click outcome came back."""

    variant: str
    version: str
    score: float
    clicked: int
    shadow_version: str | None = None
    shadow_score: float | None = None


@dataclass
class JoinedLogs:
    outcomes: list[Outcome]
    predictions: int  # logged requests
    feedback: int  # rows with an outcome (the latest one per row counts)
    unmatched: int  # of those, rows with no logged prediction


def _feedback_rows(log_dir: Path) -> dict[tuple[str, int], int]:
    clicks: dict[tuple[str, int], int] = {}
    for rec in read_jsonl(log_dir / FEEDBACK_FILE):
        rid, row, clicked = rec.get("request_id"), rec.get("row", 0), rec.get("clicked")
        values = clicked if isinstance(clicked, list) else [clicked]
        for offset, value in enumerate(values):
            if isinstance(rid, str) and isinstance(row, int) and value in (0, 1):
                clicks[(rid, row + offset)] = int(value)  # the latest outcome wins
    return clicks


def joined_outcomes(log_dir: Path, since: float | None = None) -> JoinedLogs:
    """Every row with both a logged score and a feedback outcome."""
    clicks = _feedback_rows(log_dir)
    outcomes: list[Outcome] = []
    n_pred = 0
    matched = 0
    for rec in read_jsonl(log_dir / PREDICTIONS_FILE):
        if since is not None and float(rec.get("at", 0)) < since:
            continue
        n_pred += 1
        rid, scores = rec.get("request_id"), rec.get("scores") or []
        shadow = rec.get("shadow") or {}
        shadow_scores = shadow.get("scores") or []
        for row, score in enumerate(scores):
            clicked = clicks.get((str(rid), row))
            if clicked is None:
                continue
            matched += 1
            outcomes.append(
                Outcome(
                    str(rec.get("variant")),
                    str(rec.get("version")),
                    float(score),
                    clicked,
                    shadow.get("version"),
                    float(shadow_scores[row]) if row < len(shadow_scores) else None,
                )
            )
    return JoinedLogs(outcomes, n_pred, len(clicks), len(clicks) - matched)


def now() -> float:
    return round(time.time(), 3)
