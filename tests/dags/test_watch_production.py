"""dags/watch_production.py: every 15 minutes, one task, its params."""

from __future__ import annotations

from typing import Any


def test_watch_production_is_scheduled_every_15_minutes(parsed: dict[str, Any]) -> None:
    dag = parsed["dags"]["watch_production"]
    assert dag["schedule"] == "*/15 * * * *" and dag["catchup"] is False
    assert list(dag["tasks"]) == ["watch"]
    params = dag["params"]
    assert params["dry_run"] is False and params["config_path"] == "config/model_config.yaml"
    thresholds = ["window_s", "min_outcomes", "max_logloss", "max_logloss_increase"]
    assert all(params[k] is None for k in thresholds)  # null: the config's watch section
    assert dag["tasks"]["watch"]["has_failure_callback"]
