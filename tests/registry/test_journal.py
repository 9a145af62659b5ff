from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from ml.errors import IntegrityError, ModelNotFoundError
from ml.registry import journal
from ml.registry.layout import Layout
from ml.registry.model_registry import ModelRegistry

MakeRun = Callable[..., Path]


@pytest.fixture
def layout(home: Path) -> Layout:
    layout = Layout("models")
    layout.meta_dir("m").mkdir(parents=True)
    return layout


def test_append_and_read_round_trip(layout: Layout) -> None:
    journal.append(layout, "m", {"event": "register", "version": "v1", "op": "a"})
    journal.append(layout, "m", {"event": "promote", "to": "v1", "op": "b"})
    events = journal.read(layout, "m")
    assert [e["event"] for e in events] == ["register", "promote"]
    assert all(e["name"] == "m" and e["at"].endswith("Z") for e in events)
    assert journal.recorded(layout, "m", "b") and not journal.recorded(layout, "m", "c")


def test_read_skips_a_torn_line_and_the_next_append_is_whole(layout: Layout) -> None:
    journal.append(layout, "m", {"event": "register", "version": "v1"})
    with layout.meta_file("m", "history.jsonl").open("a") as f:
        f.write('{"event": "promo')  # a writer killed mid-append
    journal.append(layout, "m", {"event": "register", "version": "v2"})
    assert [e["version"] for e in journal.read(layout, "m")] == ["v1", "v2"]


def test_read_without_a_journal_is_empty(layout: Layout) -> None:
    assert journal.read(layout, "m") == []


@pytest.mark.parametrize(
    ("events", "stack"),
    [
        ([("promote", "v1"), ("promote", "v2"), ("promote", "v3")], ["v1", "v2", "v3"]),
        ([("promote", "v1"), ("promote", "v2"), ("rollback", "v1")], ["v1"]),
        ([("promote", "v1"), ("rollback", "v1"), ("promote", "v3")], ["v1", "v3"]),
        ([("rollback", "v4")], ["v4"]),
        ([("register", "v1")], []),
    ],
)
def test_production_stack_replays_promotions_and_rollbacks(
    events: list[tuple[str, str]], stack: list[str]
) -> None:
    assert journal.production_stack([{"event": e, "to": to} for e, to in events]) == stack


def test_intent_round_trip_and_clear(layout: Layout) -> None:
    assert journal.read_intent(layout, "m") is None
    journal.write_intent(layout, "m", {"kind": "promote", "op": "x", "to": "v2"})
    assert journal.has_intent(layout, "m")
    assert journal.read_intent(layout, "m") == {"kind": "promote", "op": "x", "to": "v2"}
    journal.clear_intent(layout, "m")
    journal.clear_intent(layout, "m")  # twice is harmless
    assert journal.read_intent(layout, "m") is None


@pytest.mark.parametrize("content", ["{torn", "[]", json.dumps({"op": "x"})])
def test_a_damaged_intent_is_an_integrity_error(layout: Layout, content: str) -> None:
    layout.meta_file("m", "intent.json").write_text(content)
    with pytest.raises(IntegrityError, match=r"intent\.json is damaged"):
        journal.read_intent(layout, "m")


def test_history_through_the_registry_records_who_when_from_to_reason(
    registry: ModelRegistry, make_run: MakeRun
) -> None:
    registry.register(make_run(), dag_id="training_pipeline", run_id="r1")
    registry.register(make_run())
    registry.promote_to_production("ctr_model", "v1", reason="first")
    registry.promote_to_production("ctr_model", "v2", by="bob@laptop")
    registry.rollback("ctr_model", reason="regression")
    events = registry.history("ctr_model")
    assert [e["event"] for e in events] == [
        "register",
        "register",
        "promote",
        "promote",
        "rollback",
    ]
    assert events[0]["dag_id"] == "training_pipeline"
    assert (events[2]["from"], events[2]["to"], events[2]["reason"]) == (None, "v1", "first")
    assert (events[3]["from"], events[3]["to"], events[3]["by"]) == ("v1", "v2", "bob@laptop")
    assert (events[4]["from"], events[4]["to"], events[4]["reason"]) == ("v2", "v1", "regression")
    assert all(e["at"].endswith("Z") and e["by"] and e["op"] for e in events)
    assert len({e["op"] for e in events}) == 5


def test_history_unknown_model_raises(registry: ModelRegistry) -> None:
    with pytest.raises(ModelNotFoundError, match="Model 'nope' not found under models"):
        registry.history("nope")
