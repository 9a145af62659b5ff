"""dags/watch_production.py: every 15 minutes, one task, its params."""

from __future__ import annotations

from typing import Any


def test_watch_production_is_scheduled_every_15_minutes(parsed: dict[str, Any]) -> None:
    dag = parsed["dags"]["watch_production"]
    assert dag["schedule"] == "*/15 * * * *" and dag["catchup"] is False
    assert list(dag["tasks"]) == ["watch"]
    assert dag["params"]["dry_run"] is False and dag["params"]["min_outcomes"] == 500
    assert dag["tasks"]["watch"]["has_failure_callback"]
