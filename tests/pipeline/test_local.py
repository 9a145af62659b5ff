from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

from ml.errors import GateFailedError, UserError
from ml.pipeline.local import new_run, run_pipeline
from ml.pipeline.params import CLI_PIPELINE_ID
from ml.pipeline.summary import read_summary
from ml.registry.model_registry import ModelRegistry


def test_new_run_is_a_cli_run_named_by_its_utc_time() -> None:
    now = datetime(2026, 1, 2, 3, 4, 5, 6, tzinfo=timezone.utc)
    run = new_run(now)
    assert run.dag_id == CLI_PIPELINE_ID
    assert run.run_id == "cli__2026-01-02T03:04:05.000006+00:00"
    assert new_run().run_id != new_run(now).run_id


def test_run_pipeline_runs_every_step_and_registers(home: Path, params: Any) -> None:
    summary = run_pipeline(params(), new_run())
    assert summary["state"] == "success" and summary["model_version"] == "v1"
    assert list(summary["steps"]) == ["validate", "train", "evaluate", "register"]
    assert summary["params"]["model_name"] == "ctr_model" and "extra" not in summary["params"]
    assert summary["total_seconds"] > 0
    assert ModelRegistry().list_versions("ctr_model") == ["v1"]


def test_run_pipeline_records_the_failing_step_and_registers_nothing(
    home: Path, params: Any
) -> None:
    run = new_run()
    with pytest.raises(GateFailedError):
        run_pipeline(params(min_auc=1.0), run)
    summary = read_summary(run.dag_id, run.run_id)
    assert summary is not None and summary["state"] == "failed"
    assert summary["failure"]["step"] == "evaluate"
    assert summary["failure"]["type"] == "GateFailedError"
    with pytest.raises(UserError):
        ModelRegistry().get_latest_version("ctr_model")
