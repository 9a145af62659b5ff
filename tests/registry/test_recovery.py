"""Crashes and disk faults at every step: the registry stays consistent and retries converge.

The fault-injection harness is :mod:`testkit.registry_faults`; here a sample of its
points runs in the normal suite, each issue's window is hit on purpose, and the whole
matrix (every point, SIGKILL/ENOSPC/EIO) runs with ``-m long`` and in ``make bench``.
"""

from __future__ import annotations

import errno
import multiprocessing
import os
import signal
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from ml.errors import RegistryStorageError, TookEffectError
from ml.registry import journal, recovery
from ml.registry.model_registry import ModelRegistry
from testkit import registry_faults as faults
from testkit.registry import check_consistent, kill_trials, leftovers, make_run_dir

MakeRun = Callable[..., Path]


def _scenario(name: str) -> faults.Scenario:
    return next(s for s in faults.SCENARIOS if s.name == name)


def _point_after(prepared: faults.Prepared, label_start: str) -> int:
    """The mutation right after the first one whose label starts with ``label_start``."""
    return next(i for i, label in enumerate(prepared.points) if label.startswith(label_start)) + 1


@pytest.mark.parametrize(
    ("scenario", "after"),
    [
        ("register", "rename(/staging/ctr_model/.tmp-"),  # issue 11 item 1
        ("promote", "replace(/production/ctr_model/.current-"),  # item 2
        ("rollback", "replace(/production/ctr_model/.current-"),
        ("delete", "rename(/production/ctr_model/v2"),
    ],
)
@pytest.mark.parametrize("kind", ["sigkill", "enospc"])
def test_a_fault_right_after_the_point_of_no_return_is_recorded_and_retried_once(
    tmp_path: Path, scenario: str, after: str, kind: str
) -> None:
    prepared = faults.prepare(_scenario(scenario), tmp_path)
    found = faults.trial(prepared, _point_after(prepared, after), kind, tmp_path)
    assert found["fired"]
    assert found["problems"] == []
    assert not found["unrecorded"] and not found["duplicate"]


@pytest.mark.parametrize(
    ("scenario", "says"),
    [
        ("register", "Model 'ctr_model' v2 was registered in staging"),
        ("promote", "Model 'ctr_model' v2 was promoted to production (current -> v2)"),
        ("rollback", "Model 'ctr_model' was rolled back from v2 to v1 (current -> v1)"),
        ("delete", "Model 'ctr_model' v2 was deleted from production (archived to .archive/v2."),
        ("delete-staging", "Model 'ctr_model' v3 was deleted from staging (archived to"),
    ],
)
def test_a_disk_fault_after_the_point_of_no_return_says_the_change_took_effect(
    scenario: str, says: str
) -> None:
    """Issue 26.2: ENOSPC/EIO at the last mutations raised as if the call had failed.

    The last 16 points of the operation (the point of no return and everything after it)
    and the first, ENOSPC (EIO at the history append): an error says the change stands
    exactly when it did take effect, and never otherwise."""
    with faults.scratch() as tmp:
        prepared = faults.prepare(_scenario(scenario), tmp)
        history = prepared.points.index("open(/.registry/ctr_model/history.jsonl)")
        last = range(max(0, len(prepared.points) - 16), len(prepared.points))
        trials = [(k, "enospc") for k in (0, *last)] + [(history, "eio")]
        after = 0
        for k, kind in trials:
            found = faults.trial(prepared, k, kind, tmp)
            assert found["problems"] == [], found["problems"]
            claims = "The change stands" in found["error"]
            assert claims == (found["took_effect"] and found["outcome"] != "ok"), found
            if claims:
                after += 1
                assert "TookEffectError" in found["error"] and says in found["error"]
                assert "recovered: true" in found["error"]  # finished before answering
    assert after >= 5  # the sync, the index, published-<stage>, the history, the intent


def test_a_persistent_disk_fault_after_the_change_says_how_to_finish_it(
    registry: ModelRegistry, make_run: MakeRun, monkeypatch: pytest.MonkeyPatch
) -> None:
    registry.register(make_run())
    registry.register(make_run())
    registry.promote_to_production("ctr_model", "v1")

    def disk_full(*args: object, **kwargs: object) -> None:
        raise OSError(errno.ENOSPC, "No space left on device", "history.jsonl")

    monkeypatch.setattr(journal, "append", disk_full)
    with pytest.raises(TookEffectError) as info:
        registry.promote_to_production("ctr_model", "v2")
    monkeypatch.undo()
    message = str(info.value.strerror)
    assert message.startswith("Model 'ctr_model' v2 was promoted to production (current -> v2)")
    assert "No space left on device" in message and "`ctr-pipeline registry gc`" in message
    assert isinstance(info.value, RegistryStorageError) and info.value.operation["to"] == "v2"
    assert registry.current_version("ctr_model") == "v2"  # it did take effect
    registry.gc(min_age=0)  # as the message says: records it
    assert [e["event"] for e in registry.history("ctr_model")] == [
        "register",
        "register",
        "promote",
        "promote",
    ]
    assert check_consistent(registry, "ctr_model") == []
    assert registry.promote_to_production("ctr_model", "v2").version == "v2"  # the retry


def test_a_disk_fault_before_the_point_of_no_return_does_not_claim_the_change(
    registry: ModelRegistry, make_run: MakeRun, monkeypatch: pytest.MonkeyPatch
) -> None:
    registry.register(make_run())
    registry.register(make_run())
    registry.promote_to_production("ctr_model", "v1")

    def disk_full(*args: object, **kwargs: object) -> None:
        raise OSError(errno.ENOSPC, "No space left on device", "current")

    monkeypatch.setattr(recovery, "set_current", disk_full)
    with pytest.raises(RegistryStorageError) as info:
        registry.promote_to_production("ctr_model", "v2")
    assert not isinstance(info.value, TookEffectError)
    assert "was promoted" not in str(info.value)
    monkeypatch.undo()
    assert registry.current_version("ctr_model") == "v1"


@pytest.mark.slow
def test_fault_matrix_sample_leaves_no_inconsistency() -> None:
    with faults.scratch() as tmp:
        summary = faults.run_matrix(tmp, every=7)
    assert summary["problems"] == []
    assert summary["trials"] >= 25 and summary["fired"] == summary["trials"]
    assert set(summary["points"]) == {s.name for s in faults.SCENARIOS}


@pytest.mark.slow
@pytest.mark.long
def test_fault_matrix_every_point_every_kind() -> None:
    with faults.scratch() as tmp:
        summary = faults.run_matrix(tmp)
    assert summary["problems"] == []
    assert (summary["inconsistent"], summary["duplicate"]) == (0, 0)


def test_a_failed_history_append_is_recovered_before_the_error_is_raised(
    registry: ModelRegistry, make_run: MakeRun, monkeypatch: pytest.MonkeyPatch
) -> None:
    run = make_run()
    original = journal.append
    calls = iter(range(100))

    def fail_once(*args: object, **kwargs: object) -> None:
        if next(calls) == 0:
            raise OSError(errno.ENOSPC, "No space left on device", "history.jsonl")
        original(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(journal, "append", fail_once)
    with pytest.raises(RegistryStorageError, match="No space left on device"):
        registry.register(run)
    assert check_consistent(registry, "ctr_model") == []  # recorded by the writer's recovery
    again = registry.register(run, force=True)  # the retry of a forced call: no second version
    assert (again.version, again.created) == ("v1", False)
    assert [e["event"] for e in registry.history("ctr_model")] == ["register"]
    assert registry.history("ctr_model")[0]["recovered"] is True


def test_a_recovered_rollback_is_claimed_once(
    registry: ModelRegistry, make_run: MakeRun, monkeypatch: pytest.MonkeyPatch
) -> None:
    for _ in range(3):
        registry.register(make_run())
    for v in ("v1", "v2", "v3"):
        registry.promote_to_production("ctr_model", v)

    def crash(self: recovery.Session, intent: dict[str, object]) -> None:
        raise RuntimeError("died before answering")

    monkeypatch.setattr(recovery.Session, "commit", crash)
    with pytest.raises(RuntimeError, match="died before answering"):
        registry.rollback("ctr_model")  # took effect, then failed before answering
    monkeypatch.undo()
    assert registry.current_version("ctr_model") == "v2"
    assert registry.rollback("ctr_model").version == "v2"  # the retry: converges
    assert registry.rollback("ctr_model").version == "v1"  # a new call: rolls back
    assert [e["event"] for e in registry.history("ctr_model")][-2:] == ["rollback", "rollback"]


def test_sigkill_at_random_moments_leaves_a_consistent_registry(
    registry: ModelRegistry, home: Path
) -> None:
    runs = [make_run_dir(home / "runs" / f"r{i}", bytes([i]) * (128 << 10)) for i in range(3)]
    result = kill_trials(registry.base_dir, "ctr_model", runs, trials=8, max_delay=0.4, seed=7)
    assert result["problems"] == []
    assert result["killed"] == 8
    assert leftovers(registry, "ctr_model") == []
    versions = registry.list_models("staging")["ctr_model"]
    assert versions[-1] == result["final_version"]


def _slow_register(base: str, run: str) -> None:
    from ml.registry import _fs

    original = _fs.copy_many_hashed

    def slow(pairs: list[tuple[Path, Path]], *, mode: int | None = None) -> list[tuple[str, int]]:
        out = original(pairs, mode=mode)
        time.sleep(30)  # killed here: the copy is on disk, nothing is published
        return out

    _fs.copy_many_hashed = slow  # type: ignore[assignment]
    ModelRegistry(base).register(run)


def test_gc_after_a_writer_killed_mid_copy(registry: ModelRegistry, home: Path) -> None:
    """A writer stopped inside its copy leaves only a temp dir that readers ignore."""
    run = make_run_dir(home / "runs" / "big", os.urandom(1 << 20))
    registry.register(make_run_dir(home / "runs" / "small", b"small"))
    proc = multiprocessing.get_context("fork").Process(
        target=_slow_register, args=(str(registry.base_dir), str(run))
    )
    proc.start()
    deadline = time.monotonic() + 20
    while not any(".tmp-" in p for p in leftovers(registry, "ctr_model")):
        assert time.monotonic() < deadline
        time.sleep(0.02)
    time.sleep(0.2)
    assert registry.gc(min_age=0).removed == []  # its writer is alive: kept
    assert proc.pid is not None
    os.kill(proc.pid, signal.SIGKILL)
    proc.join()
    assert registry.list_models("staging") == {"ctr_model": ["v1"]}
    assert check_consistent(registry, "ctr_model") == []
    assert len(registry.gc(min_age=0).removed) == 1
    assert registry.register(run).version == "v2"


def _promote_and_die(base: str) -> None:
    recovery.set_current = lambda *args: os._exit(9)  # type: ignore[assignment]
    ModelRegistry(base).promote_to_production("ctr_model", "v2")


def test_a_promotion_retried_before_any_recovery_copies_again(
    registry: ModelRegistry, make_run: MakeRun, home: Path
) -> None:
    """The dead promotion's production copy is there when the retry looks, and gone
    (undone by recovery) once it holds the lock: the retry must copy it again."""
    registry.register(make_run())
    registry.register(make_run())
    registry.promote_to_production("ctr_model", "v1")
    proc = multiprocessing.get_context("fork").Process(
        target=_promote_and_die, args=(str(registry.base_dir),)
    )
    proc.start()
    proc.join(30)
    assert proc.exitcode == 9
    assert (home / "models" / "production" / "ctr_model" / "v2" / "MANIFEST.json").exists()
    promo = registry.promote_to_production("ctr_model", "v2")
    assert (promo.previous, promo.version, promo.changed) == ("v1", "v2", True)
    assert check_consistent(registry, "ctr_model") == []
    assert [e["event"] for e in registry.history("ctr_model")] == [
        "register",
        "register",
        "promote",
        "promote",
    ]
