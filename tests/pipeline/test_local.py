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


@pytest.mark.slow
@pytest.mark.parametrize("parallel", [1, 2])
def test_run_pipeline_tunes_first_when_asked(home: Path, params: Any, parallel: int) -> None:
    """``ctr-pipeline run --tuning-trials N`` runs the DAG's tuning group: N trials in
    ``parallel`` workers (processes beyond the first), then trains the best."""
    from ml.tuning import study as st
    from testkit.tuning import tuning_config

    (home / "config" / "tune.yaml").write_text(tuning_config(epochs=1))
    run = new_run()
    summary = run_pipeline(
        params(config_path="config/tune.yaml", tuning_trials=2, tuning_parallel=parallel), run
    )
    assert summary["state"] == "success" and summary["model_version"] == "v1"
    study = summary["tuning"]["study"]
    counts = st.counts(st.load(st.StudyRef(study, st.StorageSpec.from_env()), params().config()))
    assert counts.finished >= 2


def test_a_run_validates_and_hashes_its_data_once(
    home: Path, params: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    import ml.data.lineage as lineage
    import ml.data.validate as validate

    calls = {"validate": 0, "fingerprint": 0}
    real_validate, real_fp = validate.validate_features, lineage.fingerprint

    def counted_validate(*a: Any, **k: Any) -> Any:
        calls["validate"] += 1
        return real_validate(*a, **k)

    def counted_fp(*a: Any, **k: Any) -> Any:
        calls["fingerprint"] += 1
        return real_fp(*a, **k)

    monkeypatch.setattr(validate, "validate_features", counted_validate)
    monkeypatch.setattr(validate, "fingerprint", counted_fp)
    monkeypatch.setattr(lineage, "fingerprint", counted_fp)
    summary = run_pipeline(params(), new_run())
    assert summary["state"] == "success"
    assert calls == {"validate": 1, "fingerprint": 1}
    assert summary["data"]["fingerprint"]["digest"]
