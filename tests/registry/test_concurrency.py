"""Several processes at once, and writers killed with SIGKILL (small sizes, a few seconds)."""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable
from pathlib import Path

from ml.registry.model_registry import ModelRegistry
from testkit.registry import check_consistent, kill_trials, leftovers, make_run_dir

MakeRun = Callable[..., Path]


def _register_many(base_dir: str, run_dirs: list[str], queue: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    reg = ModelRegistry(base_dir, lock_timeout=30)
    queue.put([reg.register(run).version for run in run_dirs])


def test_concurrent_registrations_from_processes_get_distinct_versions(
    registry: ModelRegistry, home: Path
) -> None:
    procs, per_proc = 4, 3
    runs = [
        [
            str(make_run_dir(home / "runs" / f"p{p}_{i}", f"model {p} {i}".encode() * 500))
            for i in range(per_proc)
        ]
        for p in range(procs)
    ]
    ctx = multiprocessing.get_context("fork")
    queue = ctx.Queue()
    workers = [
        ctx.Process(target=_register_many, args=(str(registry.base_dir), r, queue)) for r in runs
    ]
    for w in workers:
        w.start()
    got = [v for _ in workers for v in queue.get(timeout=60)]
    for w in workers:
        w.join(timeout=60)
        assert w.exitcode == 0
    total = procs * per_proc
    assert sorted(got, key=lambda v: int(v[1:])) == [f"v{i}" for i in range(1, total + 1)]
    assert registry.list_models("staging")["ctr_model"] == [f"v{i}" for i in range(1, total + 1)]
    assert check_consistent(registry, "ctr_model") == []
    assert len([e for e in registry.history("ctr_model") if e["event"] == "register"]) == total


def test_concurrent_registrations_of_the_same_run_create_one_version(
    registry: ModelRegistry, home: Path
) -> None:
    run = str(make_run_dir(home / "runs" / "same", b"same model" * 1000))
    ctx = multiprocessing.get_context("fork")
    queue = ctx.Queue()
    workers = [
        ctx.Process(target=_register_many, args=(str(registry.base_dir), [run], queue))
        for _ in range(4)
    ]
    for w in workers:
        w.start()
    got = [v for _ in workers for v in queue.get(timeout=60)]
    for w in workers:
        w.join(timeout=60)
    assert got == ["v1"] * 4
    assert registry.list_models("staging") == {"ctr_model": ["v1"]}


def test_sigkill_at_random_points_leaves_a_consistent_registry(
    registry: ModelRegistry, home: Path
) -> None:
    runs = [make_run_dir(home / "runs" / f"r{i}", bytes([i]) * (128 << 10)) for i in range(3)]
    result = kill_trials(registry.base_dir, "ctr_model", runs, trials=8, max_delay=0.25, seed=7)
    assert result["problems"] == []
    assert result["killed"] == 8
    assert leftovers(registry, "ctr_model") == []
    # After gc, registration still works and takes a fresh number.
    versions = registry.list_models("staging")["ctr_model"]
    assert versions[-1] == result["final_version"]
    assert len(set(versions)) == len(versions)


def test_gc_after_a_writer_killed_mid_copy(registry: ModelRegistry, home: Path) -> None:
    """A writer stopped inside its copy leaves only a temp dir that readers ignore."""
    import signal
    import time

    run = make_run_dir(home / "runs" / "big", os.urandom(8 << 20))
    ctx = multiprocessing.get_context("fork")
    registry.register(make_run_dir(home / "runs" / "small", b"small"))

    def _slow_register() -> None:
        import ml.registry._fs as fs

        original = fs.copy_many_hashed

        def slow(pairs: list[tuple[Path, Path]]) -> list[tuple[str, int]]:
            out = original(pairs)
            time.sleep(30)  # killed here: the copy is on disk, nothing is published
            return out

        fs.copy_many_hashed = slow  # type: ignore[assignment]
        ModelRegistry(str(registry.base_dir)).register(run)

    proc = ctx.Process(target=_slow_register)
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
