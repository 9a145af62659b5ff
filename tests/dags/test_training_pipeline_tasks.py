"""dags/training_pipeline_tasks.py: schedules, conf checks, error translation, notifications."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import training_pipeline_tasks as glue  # type: ignore[import-not-found]
from airflow.sdk.exceptions import AirflowFailException

from ml.errors import GateFailedError, StorageError, UserError
from ml.pipeline.params import PipelineRun
from ml.pipeline.summary import read_summary


def test_run_step_fails_user_errors_without_retry_and_records_them(project_home: Path) -> None:
    run = PipelineRun("training_pipeline", "manual__x")

    def bad(params: object, run: PipelineRun) -> None:
        raise UserError("features directory data/x does not exist\n  - and more")

    with pytest.raises(AirflowFailException, match="does not exist\n  - and more"):
        glue.run_step("validate", bad, None, run)
    summary = read_summary("training_pipeline", "manual__x")
    assert summary is not None and summary["failure"]["step"] == "validate"

    def gate(params: object, run: PipelineRun) -> None:
        raise GateFailedError("quality gate failed: test_auc 0.6 is below")

    with pytest.raises(AirflowFailException, match="quality gate failed"):
        glue.run_step("evaluate", gate, None, run)


def test_run_step_lets_environment_errors_through_for_a_retry(project_home: Path) -> None:
    run = PipelineRun("training_pipeline", "manual__y")

    def full(params: object, run: PipelineRun) -> None:
        raise StorageError(28, "writing experiments/runs failed: No space left on device")

    with pytest.raises(StorageError):
        glue.run_step("train", full, None, run)
    summary = read_summary("training_pipeline", "manual__y")
    assert summary is not None and summary["failure"]["type"] == "StorageError"


def test_check_conf_keys_rejects_a_typo() -> None:
    with pytest.raises(AirflowFailException, match=r"unknown conf key 'epoch'.*epochs"):
        glue.check_conf_keys({"epoch": 2}, {"epochs": None, "min_auc": 0.6})
    glue.check_conf_keys({"epochs": 2}, {"epochs": None})
    glue.check_conf_keys(None, {"epochs": None})


@pytest.mark.parametrize(
    ("value", "expected"),
    [("@weekly", "@weekly"), ("@DAILY", "@daily"), ("0 2 * * 1", "0 2 * * 1"), ("none", None)],
)
def test_training_schedule_values(value: str, expected: str | None) -> None:
    assert glue.training_schedule(value) == expected


def test_training_schedule_asset_is_the_features_asset(project_home: Path) -> None:
    (asset,) = glue.training_schedule("asset")
    assert asset.name == "ctr_features"
    assert asset.uri == (project_home / "data" / "features" / "v1").as_uri()


def test_features_asset_uri_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CTR_FEATURES_ASSET_URI", "file:///srv/clicks/v3")
    assert glue.features_asset().uri == "file:///srv/clicks/v3"


@pytest.mark.parametrize("bad", ["weekly", "0 2 * *", "61 * * * *"])
def test_training_schedule_rejects_bad_values(bad: str) -> None:
    with pytest.raises(ValueError, match=re.escape(f"CTR_TRAINING_SCHEDULE={bad!r} is not a sch")):
        glue.training_schedule(bad)
