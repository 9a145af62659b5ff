from __future__ import annotations

from pathlib import Path

import pytest

from ml.training import run_dir as rd


def test_latest_complete_run_skips_incomplete_and_foreign(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    for name in (
        "ctr_model_20240101_000000",
        "ctr_model_20240102_000000",
        "ctr_model_20240103_000000",
        "other_20250101_000000",
        "ctr_model_notes",
    ):
        (runs / name).mkdir(parents=True)
    rd.mark_complete(runs / "ctr_model_20240101_000000")
    rd.mark_complete(runs / "ctr_model_20240102_000000")
    rd.mark_complete(runs / "other_20250101_000000")
    rd.mark_complete(runs / "ctr_model_notes")
    # 20240103 is newest but has no COMPLETE: a crashed run is never taken for a finished one.
    assert rd.latest_complete_run(runs) == runs / "ctr_model_20240102_000000"
    assert rd.is_complete(runs / "ctr_model_20240102_000000")
    assert not rd.is_complete(runs / "ctr_model_20240103_000000")


def test_latest_complete_run_missing_dir_is_none(tmp_path: Path) -> None:
    assert rd.latest_complete_run(tmp_path / "nope") is None


def test_latest_complete_run_relative_to_base_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CTR_PIPELINE_HOME", str(tmp_path))
    run = tmp_path / "experiments" / "runs" / "ctr_model_20240101_000000"
    run.mkdir(parents=True)
    rd.mark_complete(run)
    assert rd.latest_complete_run() == run


def test_new_run_dir_is_unique_within_a_second(tmp_path: Path) -> None:
    first = rd.new_run_dir(tmp_path, "ctr_model")
    second = rd.new_run_dir(tmp_path, "ctr_model")
    assert first != second
    assert first.name.startswith("ctr_model_") and second.is_dir()


def test_atomic_write_failure_keeps_old_file_and_no_temp(tmp_path: Path) -> None:
    target = tmp_path / "metrics.json"
    rd.atomic_write_json(target, {"a": 1})

    def boom(fh: object) -> None:
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        rd.atomic_write(target, boom)
    assert target.read_text().strip().startswith("{")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["metrics.json"]
