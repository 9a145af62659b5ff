from __future__ import annotations

import json
import tracemalloc
from pathlib import Path

import pytest

from ml.errors import StorageError
from ml.serving.service.outcomes import (
    FEEDBACK_FILE,
    PREDICTIONS_FILE,
    AppendLog,
    JsonLines,
    Outcome,
    joined_outcomes,
    read_jsonl,
)


def _log(path: Path, *records: dict[str, object]) -> None:
    log = AppendLog(path)
    for record in records:
        log.append(record)
    log.close()


def test_append_log_writes_one_json_line_per_record(tmp_path: Path) -> None:
    path = tmp_path / "sub" / PREDICTIONS_FILE
    _log(path, {"a": 1}, {"b": [0.5]})
    _log(path, {"c": None})  # reopening appends
    assert [json.loads(line) for line in path.read_text().splitlines()] == [
        {"a": 1},
        {"b": [0.5]},
        {"c": None},
    ]


def test_append_log_that_cannot_be_opened_is_a_storage_error(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    with pytest.raises(StorageError, match="opening the log"):
        AppendLog(tmp_path / "file" / PREDICTIONS_FILE)


def test_read_jsonl_skips_torn_and_foreign_lines(tmp_path: Path) -> None:
    path = tmp_path / "x.jsonl"
    path.write_text('{"ok": 1}\n{"torn": \n[1, 2]\n{"ok": 2}\n')
    assert list(read_jsonl(path)) == [{"ok": 1}, {"ok": 2}]
    assert list(read_jsonl(tmp_path / "missing.jsonl")) == []


def test_joined_outcomes_joins_by_request_and_row(tmp_path: Path) -> None:
    _log(
        tmp_path / PREDICTIONS_FILE,
        {"at": 10.0, "request_id": "r1", "variant": "control", "version": "v1",
         "scores": [0.1, 0.9], "shadow": {"version": "v3", "scores": [0.2, 0.8]}},
        {"at": 20.0, "request_id": "r2", "variant": "candidate", "version": "v2",
         "scores": [0.4]},
    )  # fmt: skip
    _log(
        tmp_path / FEEDBACK_FILE,
        {"request_id": "r1", "row": 1, "clicked": 1},
        {"request_id": "r1", "row": 1, "clicked": 0},  # a later outcome is counted, not used
        {"request_id": "r2", "clicked": [0]},
        {"request_id": "gone", "row": 0, "clicked": 1},  # no logged prediction
        {"request_id": "r1", "row": 0, "clicked": 2},  # not an outcome
    )
    logs = joined_outcomes(tmp_path)
    assert logs.outcomes == [
        Outcome("control", "v1", 0.9, 1, "v3", 0.8),
        Outcome("candidate", "v2", 0.4, 0),
    ]
    assert (logs.predictions, logs.feedback, logs.unmatched, logs.duplicates) == (2, 3, 1, 1)
    later = joined_outcomes(tmp_path, since=15.0)
    assert later.outcomes == [Outcome("candidate", "v2", 0.4, 0)] and later.predictions == 1


def test_json_lines_skip_a_line_over_the_limit_without_holding_it(tmp_path: Path) -> None:
    path = tmp_path / "x.jsonl"
    path.write_text('{"ok": 1}\n{"big": "' + "x" * 5000 + '"}\n{"ok": 2}\n')
    lines = JsonLines(path, max_line=1000)
    assert list(lines) == [{"ok": 1}, {"ok": 2}] and lines.too_long == 1


def test_joined_outcomes_memory_does_not_grow_with_the_feedback_sent(tmp_path: Path) -> None:
    """A 7 MB feedback log (lists of 1M outcomes, 100k unknown ids) joined against one
    scored row: the old join held every (id, row) in a dict (over 300 MB); now one line."""
    _log(
        tmp_path / PREDICTIONS_FILE,
        {"at": 1.0, "request_id": "r1", "variant": "control", "version": "v1", "scores": [0.3]},
    )
    with open(tmp_path / FEEDBACK_FILE, "w") as fh:
        huge = ",".join(["1"] * 1_000_000)
        fh.write(f'{{"request_id": "r1", "clicked": [0,{huge}]}}\n')
        fh.write(f'{{"request_id": "r2", "clicked": [{huge}]}}\n')
        for i in range(100_000):
            fh.write(f'{{"request_id": "u{i}", "row": 7, "clicked": 1}}\n')
    tracemalloc.start()
    try:
        logs = joined_outcomes(tmp_path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert logs.outcomes == [Outcome("control", "v1", 0.3, 0)]
    assert (logs.feedback, logs.unmatched) == (1 + 2_000_000 + 100_000, 2_000_000 + 100_000)
    assert peak < 40 << 20, f"peak {peak / 2**20:.0f} MiB"
