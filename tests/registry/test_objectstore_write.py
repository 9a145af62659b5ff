"""Writing to the object-store registry: claims, crash convergence, contention (real S3)."""

from __future__ import annotations

import multiprocessing
from pathlib import Path

import pytest

from ml import storage
from ml.registry import objectstore_write
from ml.registry.model_registry import ModelRegistry
from ml.registry.objectstore import Keys, dumps, read_index
from testkit import s3 as s3kit
from testkit.registry import history_problems
from tests.registry.conftest import MakeRun


@pytest.fixture
def base_url(s3_env: str, home: Path) -> str:
    return f"{s3_env}/models"


def test_a_taken_claim_makes_the_writer_take_the_next_number(
    base_url: str, make_run: MakeRun
) -> None:
    store = storage.open_store(base_url)
    keys = Keys(store)
    store.put_if_absent(keys.claim("m", 1), dumps({"source_key": "someone else"}))
    with pytest.raises(storage.ConditionFailedError):
        store.put_if_absent(keys.claim("m", 1), dumps({"source_key": "a second claim"}))
    reg = ModelRegistry(base_url)
    assert reg.register(make_run("a"), "m").version == "v2"
    assert reg.list_models() == {"m": ["v2"]}  # v1 was claimed, never published: not shown


def test_a_version_without_its_index_entry_is_invisible_until_the_retry(
    base_url: str, make_run: MakeRun, monkeypatch: pytest.MonkeyPatch
) -> None:
    reg = ModelRegistry(base_url)
    run = make_run("a")
    real = objectstore_write._publish

    def die(*args: object, **kwargs: object) -> None:
        raise storage.StorageUnavailableError("the writer died after the manifest")

    monkeypatch.setattr(objectstore_write, "_publish", die)
    with pytest.raises(storage.StorageUnavailableError):
        reg.register(run, "m")
    assert reg.list_models() == {}
    assert storage.open_store(base_url).exists("staging/m/v1/MANIFEST.json")
    monkeypatch.setattr(objectstore_write, "_publish", real)
    again = reg.register(run, "m")
    assert (again.version, again.created) == ("v1", True)  # its own claim, finished
    assert reg.list_models() == {"m": ["v1"]} and reg.verify("m", "v1").ok
    assert [e["event"] for e in reg.history("m")] == ["register"]


def test_a_writer_dying_before_the_manifest_leaves_nothing_visible(
    base_url: str, make_run: MakeRun, monkeypatch: pytest.MonkeyPatch
) -> None:
    from ml.storage.store import ObjectStore, Version

    reg = ModelRegistry(base_url)
    run = make_run("a")
    real = ObjectStore.put_if_absent

    def no_manifest(self: ObjectStore, key: str, data: bytes) -> Version:
        if key.endswith("MANIFEST.json"):
            raise storage.StorageUnavailableError("killed before the manifest")
        return real(self, key, data)

    monkeypatch.setattr(ObjectStore, "put_if_absent", no_manifest)
    with pytest.raises(storage.StorageUnavailableError):
        reg.register(run, "m")
    monkeypatch.setattr(ObjectStore, "put_if_absent", real)
    assert reg.list_models() == {}
    with pytest.raises(Exception, match="no version"):
        reg.get_latest_version("m")
    assert reg.register(run, "m").version == "v1"
    assert (
        read_index(storage.open_store(base_url), Keys(storage.open_store(base_url)), "m")[
            "last_claim"
        ]
        == 1
    )


def test_an_event_written_but_not_applied_is_finished_by_the_retry(
    base_url: str, make_run: MakeRun
) -> None:
    reg = ModelRegistry(base_url)
    for run in ("a", "b", "c"):
        reg.register(make_run(run), "m")
    reg.promote_to_production("m", "v1")
    store = storage.open_store(base_url)
    keys = Keys(store)
    objectstore_write.copy_to_production(store, keys, "m", "v2")
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
def test_eight_processes_registering_five_each_get_v1_to_v40(
    base_url: str, make_run: MakeRun
) -> None:
    runs = [[str(make_run(f"p{p}r{r}")) for r in range(5)] for p in range(8)]
    with multiprocessing.get_context("spawn").Pool(8) as pool:
        results = pool.starmap(s3kit.register_all, [(base_url, "m", r) for r in runs])
    got = sorted(v for proc in results for v in proc)
    assert len(got) == 40 and len(set(got)) == 40
    reg = ModelRegistry(base_url)
    assert reg.list_models() == {"m": [f"v{n}" for n in range(1, 41)]}
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


@pytest.mark.slow
@pytest.mark.parametrize("op", ["register", "promote", "rollback"])
def test_an_operation_dying_at_any_request_converges_when_retried(
    base_url: str, make_run: MakeRun, op: str
) -> None:
    from testkit.s3_faults import converges

    runs = [make_run(r) for r in ("a", "b", "c")]

    def setup(reg: ModelRegistry) -> None:
        for run in runs[:2]:
            reg.register(run, "m")
        if op != "register":
            reg.promote_to_production("m", "v1")
        if op == "rollback":
            reg.promote_to_production("m", "v2")

    operations = {
        "register": lambda reg: reg.register(runs[2], "m"),
        "promote": lambda reg: reg.promote_to_production("m", "v2", reason="r", by="me"),
        "rollback": lambda reg: reg.rollback("m", reason="r", by="me"),
    }
    result = converges(base_url, setup, operations[op], "m")
    assert result["requests"] >= 3
    assert result["problems"] == []
