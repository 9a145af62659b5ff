"""ml.training.run_dir: names, keys, completeness and the input check."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path

import pytest

from ml.errors import TrainingError
from ml.training import run_dir as rd

DATE = datetime(2024, 11, 15, tzinfo=timezone.utc)


def test_run_key_is_stable_and_keyed_by_logical_date_before_run_id() -> None:
    a = rd.run_key("training_pipeline", logical_date=DATE, run_id="__airflow_temporary_run_1")
    b = rd.run_key("training_pipeline", logical_date=DATE, run_id="__airflow_temporary_run_2")
    assert a == b and len(a) == 10 and a.isdigit()
    other_day = rd.run_key("training_pipeline", logical_date=DATE.replace(day=16), run_id="x")
    assert other_day != a
    by_id = rd.run_key("training_pipeline", logical_date=None, run_id="manual__1")
    assert by_id != rd.run_key("training_pipeline", logical_date=None, run_id="manual__2")
    assert rd.run_key("other_dag", logical_date=DATE, run_id="x") != a


def test_new_run_dir_for_a_key_counts_up_and_keeps_its_first_stamp(tmp_path: Path) -> None:
    first = rd.new_run_dir(tmp_path, "ctr_model", key="0123456789", when=DATE)
    assert first.name == "ctr_model_20241115_000000_0123456789"
    later = datetime(2025, 1, 1, tzinfo=timezone.utc)
    second = rd.new_run_dir(tmp_path, "ctr_model", key="0123456789", when=later)
    assert second.name == "ctr_model_20241115_000000_0123456789_2"
    (tmp_path / "ctr_model_20241115_000000_9999999999").mkdir()
    (tmp_path / "other_20241115_000000_0123456789").mkdir()
    assert rd.runs_for_key(tmp_path, "ctr_model", "0123456789") == [first, second]


def test_new_run_dir_by_hand_gets_a_suffix_in_the_same_second(tmp_path: Path) -> None:
    first = rd.new_run_dir(tmp_path, "ctr_model", when=DATE)
    second = rd.new_run_dir(tmp_path, "ctr_model", when=DATE)
    assert second.name == f"{first.name}_2"


def test_runs_for_key_resolves_against_the_base_dir(project_home: Path) -> None:
    run = rd.new_run_dir("experiments/runs", "ctr_model", key="0000000001")
    assert run.parent == project_home / "experiments" / "runs"
    assert rd.runs_for_key("experiments/runs", "ctr_model", "0000000001") == [run]
    assert rd.runs_for_key(project_home / "missing", "ctr_model", "0000000001") == []


def test_mark_complete_and_is_complete(tmp_path: Path) -> None:
    assert not rd.is_complete(tmp_path)
    rd.mark_complete(tmp_path)
    assert rd.is_complete(tmp_path)


def test_mismatch_names_what_differs(tmp_path: Path) -> None:
    info = {"config_digest": "c" * 64, "data_fingerprint": {"digest": "d" * 64}}
    (tmp_path / rd.RUN_JSON).write_text(json.dumps(info))
    assert rd.mismatch(tmp_path, config_digest="c" * 64, data_digest="d" * 64) is None
    assert "config digest" in str(rd.mismatch(tmp_path, config_digest="x" * 64, data_digest=None))
    why = rd.mismatch(tmp_path, config_digest="c" * 64, data_digest="e" * 64)
    assert why is not None and "data digest" in why


def test_read_run_info_says_which_problem(tmp_path: Path) -> None:
    with pytest.raises(TrainingError, match="does not exist"):
        rd.read_run_info(tmp_path)
    (tmp_path / rd.RUN_JSON).write_text("{not json")
    with pytest.raises(TrainingError, match="not valid JSON"):
        rd.read_run_info(tmp_path)
    (tmp_path / rd.RUN_JSON).write_text("[1]")
    with pytest.raises(TrainingError, match="JSON object"):
        rd.read_run_info(tmp_path)
