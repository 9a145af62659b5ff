from __future__ import annotations

import json
from pathlib import Path

import pytest

from ml.errors import StorageError
from ml.serving.service.outcomes import (
    FEEDBACK_FILE,
    PREDICTIONS_FILE,
    AppendLog,
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
        {"request_id": "r1", "row": 1, "clicked": 0},
        {"request_id": "r1", "row": 1, "clicked": 1},  # the latest outcome wins
        {"request_id": "r2", "clicked": [0]},
        {"request_id": "gone", "row": 0, "clicked": 1},  # no logged prediction
        {"request_id": "r1", "row": 0, "clicked": 2},  # not an outcome
    )
    logs = joined_outcomes(tmp_path)
    assert logs.outcomes == [
        Outcome("control", "v1", 0.9, 1, "v3", 0.8),
        Outcome("candidate", "v2", 0.4, 0),
    ]
    assert (logs.predictions, logs.feedback, logs.unmatched) == (2, 3, 1)
    later = joined_outcomes(tmp_path, since=15.0)
    assert later.outcomes == [Outcome("candidate", "v2", 0.4, 0)] and later.predictions == 1
