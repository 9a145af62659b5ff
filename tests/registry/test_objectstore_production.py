"""Production on the object-store registry: pending events, retries, contention (real S3)."""

from __future__ import annotations

import multiprocessing
from pathlib import Path

import pytest

from ml import storage
from ml.registry import objectstore_production
from ml.registry.model_registry import ModelRegistry
from ml.registry.objectstore import Keys, dumps
from testkit import s3 as s3kit
from testkit.registry import history_problems
from tests.registry.conftest import MakeRun


@pytest.fixture
def base_url(s3_env: str, home: Path) -> str:
    return f"{s3_env}/models"


def test_an_event_written_but_not_applied_is_finished_by_the_retry(
    base_url: str, make_run: MakeRun
) -> None:
    reg = ModelRegistry(base_url)
    for run in ("a", "b", "c"):
        reg.register(make_run(run), "m")
    reg.promote_to_production("m", "v1")
    store = storage.open_store(base_url)
    keys = Keys(store)
    objectstore_production.copy_to_production(store, keys, "m", "v2")
    # a promoter that died after writing event 2, before swapping the pointer:
    event = {"event": "promote", "from": "v1", "to": "v2", "seq": 2, "by": "x", "reason": None}
    store.put_if_absent(keys.event("m", 2), dumps(event))
    assert reg.current_version("m") == "v1"  # readers see the pointer, and never write
    assert history_problems(reg, "m") == []
    retry = reg.promote_to_production("m", "v2")
    assert (retry.version, retry.previous, retry.changed) == ("v2", "v1", True)
    assert [e.get("to") for e in reg.history("m") if e["event"] == "promote"] == ["v1", "v2"]
    assert history_problems(reg, "m") == []


def test_a_rollback_retried_after_its_event_was_written_rolls_back_once(
    base_url: str, make_run: MakeRun
) -> None:
    reg = ModelRegistry(base_url)
    for run in ("a", "b", "c"):
        reg.register(make_run(run), "m")
    for version in ("v1", "v2", "v3"):
        reg.promote_to_production("m", version)
    store = storage.open_store(base_url)
    keys = Keys(store)
    died = {"event": "rollback", "from": "v3", "to": "v2", "seq": 4, "by": "ops", "reason": "bad"}
    store.put_if_absent(keys.event("m", 4), dumps(died))
    retry = reg.rollback("m", reason="bad", by="ops")
    assert (retry.version, retry.previous, reg.current_version("m")) == ("v2", "v3", "v2")
    again = reg.rollback("m", reason="bad", by="ops")  # a new call: rolls back further
    assert (again.version, again.previous) == ("v1", "v2")
    assert history_problems(reg, "m") == []


@pytest.mark.slow
def test_concurrent_promotions_and_rollbacks_keep_history_equal_to_state(
    base_url: str, make_run: MakeRun
) -> None:
    reg = ModelRegistry(base_url)
    versions = [reg.register(make_run(f"r{i}"), "m").version for i in range(4)]
    reg.promote_to_production("m", "v1")
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(3) as pool:
        watcher = pool.apply_async(s3kit.watch_current, (base_url, "m", 6.0))
        flips = [
            pool.apply_async(s3kit.promote_and_roll_back, (base_url, "m", versions, 25, seed))
            for seed in (1, 2)
        ]
        failed = [f for job in flips for f in job.get(timeout=300)]
        reads, misses = watcher.get(timeout=300)
    assert failed == []
    assert reads > 0 and misses == 0
    assert history_problems(reg, "m") == []
    events = [e for e in reg.history("m") if e["event"] in ("promote", "rollback")]
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
    assert events[-1]["to"] == reg.current_version("m")
