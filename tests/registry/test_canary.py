from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

import pytest

from ml.errors import IntegrityError, ServingError, VersionInUseError, VersionNotFoundError
from ml.registry import canary, journal, recovery
from ml.registry.layout import Layout
from ml.registry.model_registry import ModelRegistry
from testkit import registry_faults as faults
from testkit.registry import check_consistent, leftovers

MakeRun = Callable[..., Path]


@pytest.fixture
def two(registry: ModelRegistry, make_run: MakeRun) -> ModelRegistry:
    registry.register(make_run())
    registry.register(make_run())
    registry.promote_to_production("ctr_model", "v1")
    return registry


def test_set_canary_writes_the_setting_beside_current(two: ModelRegistry) -> None:
    got = two.set_canary("ctr_model", "v2", 0.1, by="admin (Airflow UI)", reason="run 7")
    assert got is not None and got["version"] == "v2" and got["traffic"] == 0.1
    path = two.base_dir / "production" / "ctr_model" / "canary.json"
    assert json.loads(path.read_text())["version"] == "v2"
    assert two.get_canary("ctr_model") == got
    assert not [p for p in path.parent.iterdir() if p.name.startswith(".current-")]


def test_set_canary_and_clear_are_recorded_in_history(two: ModelRegistry) -> None:
    two.set_canary("ctr_model", "v2", 0.25, by="alice", reason="deploy_model run 3")
    two.clear_canary("ctr_model", by="bob", reason="rejected")
    events = [e for e in two.history("ctr_model") if e["event"] == "canary"]
    assert [(e["version"], e["traffic"], e["from"], e["by"], e["reason"]) for e in events] == [
        ("v2", 0.25, None, "alice", "deploy_model run 3"),
        (None, 0.0, "v2", "bob", "rejected"),
    ]
    assert [journal.describe(e) for e in events] == ["v2 at 25%", "off (was v2)"]
    assert two.get_canary("ctr_model") is None


def test_clear_canary_when_off_records_nothing(two: ModelRegistry) -> None:
    before = len(two.history("ctr_model"))
    two.clear_canary("ctr_model")
    assert len(two.history("ctr_model")) == before


def test_set_canary_same_setting_twice_records_once(two: ModelRegistry) -> None:
    two.set_canary("ctr_model", "v2", 0.1)
    two.set_canary("ctr_model", "v2", 0.1)
    assert [e["event"] for e in two.history("ctr_model")].count("canary") == 1


@pytest.mark.parametrize("traffic", [0.0, 1.0, -0.1, float("nan"), True])
def test_set_canary_refuses_traffic_outside_zero_one(two: ModelRegistry, traffic: float) -> None:
    with pytest.raises(ServingError, match="strictly between 0 and 1"):
        two.set_canary("ctr_model", "v2", traffic)
    assert two.get_canary("ctr_model") is None


def test_set_canary_refuses_current_and_unknown_versions(two: ModelRegistry) -> None:
    with pytest.raises(VersionInUseError, match="current version already"):
        two.set_canary("ctr_model", "v1", 0.1)
    with pytest.raises(VersionNotFoundError, match="v9"):
        two.set_canary("ctr_model", "v9", 0.1)
    assert two.get_canary("ctr_model") is None


def test_get_canary_damaged_file_is_an_integrity_error(two: ModelRegistry) -> None:
    (two.base_dir / "production" / "ctr_model" / "canary.json").write_text('{"version": 3}')
    with pytest.raises(IntegrityError, match=r"canary\.json is damaged"):
        two.get_canary("ctr_model")


def test_a_writer_dead_after_the_rename_is_completed_by_the_next_writer(
    two: ModelRegistry,
) -> None:
    layout = Layout(two.base_dir)
    event = {"event": "canary", "version": "v2", "traffic": 0.1, "from": None, "by": "x"}
    intent = {"kind": recovery.CANARY, "op": "deadbeef", "to": "v2", "state": "pending"}
    journal.write_intent(layout, "ctr_model", {**intent, "event": event})
    canary.write(layout, "ctr_model", {"version": "v2", "traffic": 0.1, "op": "deadbeef"}, "x")
    events = two.history("ctr_model")  # reading finishes the dead writer's operation
    assert events[-1]["event"] == "canary" and events[-1]["recovered"] is True
    assert check_consistent(two, "ctr_model") == []


def test_a_writer_dead_before_the_rename_leaves_the_old_setting(two: ModelRegistry) -> None:
    layout = Layout(two.base_dir)
    event = {"event": "canary", "version": "v2", "traffic": 0.1, "from": None, "by": "x"}
    intent = {"kind": recovery.CANARY, "op": "cafe", "to": "v2", "state": "pending"}
    journal.write_intent(layout, "ctr_model", {**intent, "event": event})
    stray = two.base_dir / "production" / "ctr_model" / ".current-cafe"
    stray.write_text("{}")
    two.clear_canary("ctr_model")  # the next writer undoes it
    assert not os.path.lexists(stray)
    assert "canary" not in [e["event"] for e in two.history("ctr_model")]
    assert two.get_canary("ctr_model") is None


def test_canary_faults_every_point_converge() -> None:
    scenario = next(s for s in faults.SCENARIOS if s.name == "canary")
    with faults.scratch() as tmp:
        summary = faults.run_matrix(tmp, scenarios=(scenario,), kinds=("sigkill", "enospc"))
    assert summary["trials"] > 0
    assert summary["problems"] == []


def test_leftovers_of_a_canary_write_are_removed_by_gc(two: ModelRegistry) -> None:
    stray = two.base_dir / "production" / "ctr_model" / ".current-0123"
    stray.write_text("{}")
    two.gc(min_age=0)
    assert leftovers(two, "ctr_model") == []
