"""The service's append-only logs: what was scored, and what happened afterwards.

In the log directory (``experiments/serving/<model>/`` by default)::

    predictions.jsonl   one line per /predict: request id, variant, version, scores
                        (and the shadow version's scores, never returned)
    feedback.jsonl      one line per /feedback: request id, row, clicked

Each record is one ``write(2)`` on a file opened with ``O_APPEND``, so the workers of one
service (and several services) append whole lines without a lock; nothing is ever
rewritten. :func:`joined_outcomes` joins the two by (request id, row) for the report,
streaming both files; the first outcome of a row counts, later ones are counted as
duplicates (the service refuses them, but one sent to another worker is logged).
"""

from __future__ import annotations

import itertools
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


#: A longer line is skipped unread (a legitimate one holds at most --max-batch scores,
#: 1,000,000 at most, twice with a shadow).
MAX_LINE_BYTES = 64 << 20
#: The same for a feedback line: the service writes at most 2 bytes per row (``0,``).
MAX_FEEDBACK_LINE_BYTES = 8 << 20


class JsonLines:
    """The dict records of a JSON-lines file, one line in memory at a time.

    Torn or foreign lines are skipped; so are lines over ``max_line`` bytes, counted in
    :attr:`too_long` (read past in pieces, never held whole).
    """

    def __init__(self, path: Path, max_line: int = MAX_LINE_BYTES) -> None:
        self.path, self.max_line, self.too_long = path, max_line, 0

    def __iter__(self) -> Iterator[dict[str, Any]]:
        if not self.path.is_file():
            return
        with open(self.path, "rb") as fh:
            while line := fh.readline(self.max_line + 1):
                if len(line) > self.max_line and not line.endswith(b"\n"):
                    self.too_long += 1
                    while (rest := fh.readline(self.max_line)) and not rest.endswith(b"\n"):
                        pass
                    continue
                try:
                    record = json.loads(line)
                except ValueError:
                    continue
                if isinstance(record, dict):
                    yield record


def read_jsonl(path: Path, max_line: int = MAX_LINE_BYTES) -> Iterator[dict[str, Any]]:
    """The records of a JSON-lines file (torn, foreign or over-long lines are skipped)."""
    return iter(JsonLines(path, max_line))


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
    feedback: int  # rows with an outcome (the first one per row counts)
    unmatched: int  # of those, rows with no logged prediction (or past its rows)
    duplicates: int = 0  # later outcomes for a row that already had one: ignored
    skipped_lines: int = 0  # lines over MAX_LINE_BYTES, in either file

    @property
    def matched(self) -> int:
        return self.feedback - self.unmatched


_NONE = 2  # no outcome (yet) for a row


def _scored_rows(lines: JsonLines, since: float | None) -> dict[str, int]:
    """Request id → rows scored, for the logged requests since ``since``."""
    scored: dict[str, int] = {}
    for rec in lines:
        if since is not None and float(rec.get("at", 0)) < since:
            continue
        rid, scores = rec.get("request_id"), rec.get("scores")
        if isinstance(rid, str) and isinstance(scores, list):
            scored.setdefault(rid, len(scores))
    return scored


def _first_outcomes(
    lines: JsonLines, scored: dict[str, int]
) -> tuple[dict[str, bytearray], list[int]]:
    """Per scored request, each row's first outcome (``_NONE`` for none); and the counts
    [outcome rows, unmatched, duplicates]. Memory: one byte per scored row with feedback."""
    clicks: dict[str, bytearray] = {}
    counts = [0, 0, 0]
    for rec in lines:
        rid, row, clicked = rec.get("request_id"), rec.get("row", 0), rec.get("clicked")
        if not isinstance(rid, str) or type(row) is not int or row < 0:
            continue
        values = clicked if isinstance(clicked, list) else [clicked]
        n = scored.get(rid, 0)
        inside = values[: max(0, n - row)]
        beyond = sum(1 for v in itertools.islice(values, len(inside), None) if v in (0, 1))
        counts[0] += beyond
        counts[1] += beyond
        if not inside:
            continue
        outcomes = clicks.get(rid)
        if outcomes is None:
            outcomes = clicks[rid] = bytearray([_NONE]) * n
        for offset, value in enumerate(inside):
            if value not in (0, 1):
                continue
            if outcomes[row + offset] != _NONE:
                counts[2] += 1  # the first outcome stands
            else:
                outcomes[row + offset] = int(value)
                counts[0] += 1
    return clicks, counts


def joined_outcomes(log_dir: Path, since: float | None = None) -> JoinedLogs:
    """Every row with both a logged score and a feedback outcome (the first one).

    Streams the files (the prediction log twice): memory grows with the number of logged
    requests and of rows with feedback, never with the size of a line or of a body sent.
    """
    predictions = JsonLines(log_dir / PREDICTIONS_FILE)
    feedback = JsonLines(log_dir / FEEDBACK_FILE, MAX_FEEDBACK_LINE_BYTES)
    scored = _scored_rows(predictions, since)
    clicks, (n_feedback, unmatched, duplicates) = _first_outcomes(feedback, scored)
    n_pred = len(scored)
    del scored
    outcomes: list[Outcome] = []
    for rec in predictions:
        if since is not None and float(rec.get("at", 0)) < since:
            continue
        row_clicks = clicks.pop(str(rec.get("request_id")), None)
        if row_clicks is None:
            continue
        scores = rec.get("scores") or []
        shadow = rec.get("shadow") or {}
        shadow_scores = shadow.get("scores") or []
        for row, clicked in enumerate(row_clicks):
            if clicked == _NONE or row >= len(scores):
                continue
            outcomes.append(
                Outcome(
                    str(rec.get("variant")),
                    str(rec.get("version")),
                    float(scores[row]),
                    clicked,
                    shadow.get("version"),
                    float(shadow_scores[row]) if row < len(shadow_scores) else None,
                )
            )
    skipped = predictions.too_long + feedback.too_long
    return JoinedLogs(outcomes, n_pred, n_feedback, unmatched, duplicates, skipped)


def now() -> float:
    return round(time.time(), 3)
