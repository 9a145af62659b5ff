"""ml.pipeline.summary: one JSON file per pipeline run, merged step by step."""

from __future__ import annotations

import json
from pathlib import Path

from ml.pipeline.summary import read_summary, summary_path, update_summary


def test_summary_path_is_under_the_base_dir_and_safe(project_home: Path) -> None:
    path = summary_path("training_pipeline", "manual__2026-01-01T00:00:00+00:00")
    assert path.parent == project_home / "experiments" / "summaries" / "training_pipeline"
    assert "/" not in path.name and ":" not in path.name and path.suffix == ".json"
    assert summary_path("d", "a/b") != summary_path("d", "a_b")  # no collisions


def test_update_merges_fields_and_steps(project_home: Path) -> None:
    assert read_summary("d", "r") is None
    update_summary("d", "r", state="running", steps={"validate": {"state": "success"}})
    update_summary("d", "r", steps={"train": {"state": "success", "seconds": 1.5}}, x=1)
    update_summary("d", "r", steps={"validate": {"seconds": 0.1}})
    summary = read_summary("d", "r")
    assert summary is not None
    assert summary["dag_id"] == "d" and summary["run_id"] == "r" and summary["x"] == 1
    assert summary["steps"] == {
        "validate": {"state": "success", "seconds": 0.1},
        "train": {"state": "success", "seconds": 1.5},
    }
    assert json.loads(summary_path("d", "r").read_text()) == summary
