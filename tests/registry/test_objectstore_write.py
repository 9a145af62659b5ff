"""Writing to the object-store registry: claims, crash convergence, contention (real S3)."""

from __future__ import annotations

import multiprocessing
from pathlib import Path

import pytest

from ml import storage
from ml.errors import ConditionFailedError, StorageUnavailableError
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
    with pytest.raises(ConditionFailedError):
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
        raise StorageUnavailableError("the writer died after the manifest")

    monkeypatch.setattr(objectstore_write, "_publish", die)
    with pytest.raises(StorageUnavailableError):
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
            raise StorageUnavailableError("killed before the manifest")
        return real(self, key, data)

    monkeypatch.setattr(ObjectStore, "put_if_absent", no_manifest)
    with pytest.raises(StorageUnavailableError):
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
@pytest.mark.parametrize(
    "op", ["register", "promote", "rollback", "delete", "canary", "canary_off", "retention"]
)
def test_an_operation_dying_at_any_request_converges_when_retried(
    base_url: str, make_run: MakeRun, op: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from ml.registry import cleanup
    from testkit.s3_faults import converges

    monkeypatch.setattr(cleanup, "RETENTION_MIN_AGE", -3600.0)  # every version is old
    runs = [make_run(r) for r in ("a", "b", "c")]

    def setup(reg: ModelRegistry) -> None:
        for run in runs[: 3 if op == "retention" else 2]:
            reg.register(run, "m")
        if op == "retention":  # v1 is purged, v2 is current, v3's objects (deleted) go too
            reg.promote_to_production("m", "v2")
            reg.delete("m", "v3")
            return
        if op != "register":
            reg.promote_to_production("m", "v1")
        if op in ("rollback", "delete"):
            reg.promote_to_production("m", "v2")
        if op == "canary_off":
            reg.set_canary("m", "v2", 0.2)

    operations = {
        "register": lambda reg: reg.register(runs[2], "m"),
        "promote": lambda reg: reg.promote_to_production("m", "v2", reason="r", by="me"),
        "rollback": lambda reg: reg.rollback("m", reason="r", by="me"),
        "delete": lambda reg: reg.delete("m", "v1", stage="production", reason="r", by="me"),
        "canary": lambda reg: reg.set_canary("m", "v2", 0.1, reason="r", by="me"),
        "canary_off": lambda reg: reg.clear_canary("m", reason="r", by="me"),
        "retention": lambda reg: reg.gc(min_age=0, keep_last=1, dry_run=False),
    }
    result = converges(base_url, setup, operations[op], "m")
    assert result["requests"] >= 3
    assert result["problems"] == []
