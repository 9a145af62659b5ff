"""Fault injection: a fault before each file-system mutation of a registry operation.

For each :class:`Scenario` (register, promote, rollback, delete, canary, gc, retention) a
template registry is built once, and the operation is run in a forked child that only
counts the file-system mutations it makes: ``os.mkdir``, ``rename``, ``replace``,
``unlink``, ``rmdir``, ``symlink``, ``open`` for writing, ``write``, ``pwrite``,
``ftruncate``, ``fsync``, ``fchmod``, ``copy_file_range`` (whoever calls them: the
registry, ``ml.fsutil``, ``shutil``, ``tempfile``). Then, for each point ``k`` and each
fault kind, the operation runs on a fresh copy of the template in a child that injects
the fault just before mutation ``k``:

- ``sigkill``: the process dies there;
- ``enospc`` / ``eio``: that call raises ``OSError`` (later calls succeed, as on a disk
  that was full for a moment); the operation must raise a registry error that is a
  :class:`ml.errors.StorageError` (retryable), never a bare ``OSError``.

The parent then checks :func:`testkit.registry.check_consistent` (the registry opens,
every listed version verifies, ``current`` resolves, no lock is held, the history agrees
with the state), retries the operation without faults, checks again, and compares the
result with one fault-free call: same versions, same ``current``, same history events
(a retry converges on what the first call meant, and never creates a second version).
"""

from __future__ import annotations

import errno
import json
import multiprocessing
import os
import re
import shutil
import signal
import tempfile
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ml.errors import RegistryError, StorageError
from ml.registry.layout import PRODUCTION, STAGING
from ml.registry.model_registry import ModelRegistry
from testkit.registry import (
    age_versions,
    check_consistent,
    history_problems,
    leftovers,
    make_run_dir,
)

NAME = "ctr_model"
KINDS = ("sigkill", "enospc", "eio")
_MUTATORS = (
    "mkdir",
    "rename",
    "replace",
    "unlink",
    "remove",
    "rmdir",
    "symlink",
    "open",
    "write",
    "pwrite",
    "ftruncate",
    "fsync",
    "fchmod",
    "copy_file_range",
)
_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND
_HEX = re.compile(r"[0-9a-f]{8,}")
Op = Callable[[ModelRegistry, list[Path]], object]


@dataclass(frozen=True)
class Scenario:
    """An operation under test and how to build the registry it starts from."""

    name: str
    prepare: Op
    operate: Op


def _prepare_gc(reg: ModelRegistry, runs: list[Path]) -> None:
    reg.register(runs[0], NAME)
    reg.promote_to_production(NAME, "v1")
    staging = reg.base_dir / STAGING / NAME
    (staging / ".tmp-deadwriter").mkdir()
    (staging / ".tmp-deadwriter" / "model.pt").write_bytes(b"half")
    (staging / "v7").mkdir()  # made by hand, no manifest
    (reg.base_dir / PRODUCTION / NAME / ".current-dead").symlink_to("v1")
    (reg.base_dir / ".registry" / NAME / "writers" / "deadwriter").write_text("")


def _register_all(count: int, *promote: str) -> Op:
    def prepare(reg: ModelRegistry, runs: list[Path]) -> None:
        for run in runs[:count]:
            reg.register(run, NAME)
        for version in promote:
            reg.promote_to_production(NAME, version)

    return prepare


def _retention(reg: ModelRegistry, runs: list[Path]) -> None:
    _register_all(5, "v1", "v2")(reg, runs)
    reg.delete(NAME, "v5", reason="old")
    age_versions(reg, NAME)


SCENARIOS = (
    Scenario("register", _register_all(1, "v1"), lambda r, runs: r.register(runs[1], NAME)),
    Scenario(
        "promote", _register_all(2, "v1"), lambda r, runs: r.promote_to_production(NAME, "v2")
    ),
    Scenario("rollback", _register_all(2, "v1", "v2"), lambda r, runs: r.rollback(NAME)),
    Scenario(
        "delete",
        _register_all(3, "v1", "v2"),
        lambda r, runs: r.delete(NAME, "v2", PRODUCTION, force=True),
    ),
    Scenario("delete-staging", _register_all(3, "v1"), lambda r, runs: r.delete(NAME, "v3")),
    Scenario(
        "canary",
        _register_all(3, "v1"),
        lambda r, runs: r.set_canary(NAME, "v2", 0.1, by="test", reason="canary"),
    ),
    Scenario("gc", _prepare_gc, lambda r, runs: r.gc(min_age=0)),
    Scenario("retention", _retention, lambda r, runs: r.gc(min_age=0, keep_last=1, dry_run=False)),
)


# --- the injection, inside the child ------------------------------------------------------


class _Injector:
    """Counts mutations; at mutation ``target`` applies ``kind`` (None: count only)."""

    def __init__(self, root: Path, target: int | None, kind: str | None) -> None:
        self.root, self.target, self.kind = str(root), target, kind
        self.labels: list[str] = []
        self.fired = False
        self._lock = threading.Lock()

    def _label(self, fn: str, args: tuple[Any, ...]) -> str:
        arg = args[0] if args else None
        if isinstance(arg, (str, os.PathLike)):
            shown = os.fspath(arg).replace(self.root, "")
            return f"{fn}({_HEX.sub('*', shown)})"
        return f"{fn}(fd)"

    def before(self, fn: str, args: tuple[Any, ...]) -> None:
        with self._lock:
            k = len(self.labels)
            self.labels.append(self._label(fn, args))
            fire = not self.fired and k == self.target
            self.fired = self.fired or fire
        if not fire:
            return
        if self.kind == "sigkill":
            os.kill(os.getpid(), signal.SIGKILL)
        code = errno.ENOSPC if self.kind == "enospc" else errno.EIO
        path = args[0] if args and isinstance(args[0], (str, os.PathLike)) else None
        raise OSError(code, os.strerror(code), *([os.fspath(path)] if path else []))


@contextmanager
def _injected(injector: _Injector) -> Iterator[None]:
    originals = {fn: getattr(os, fn) for fn in _MUTATORS if hasattr(os, fn)}

    def wrap(fn: str, original: Callable[..., Any]) -> Callable[..., Any]:
        def hooked(*args: Any, **kwargs: Any) -> Any:
            if fn != "open" or (len(args) > 1 and args[1] & _WRITE_FLAGS):
                injector.before(fn, args)
            return original(*args, **kwargs)

        return hooked

    for fn, original in originals.items():
        setattr(os, fn, wrap(fn, original))
    try:
        yield
    finally:
        for fn, original in originals.items():
            setattr(os, fn, original)


def _child(
    scenario: Scenario, base: str, runs: list[str], target: int | None, kind: str | None, out: str
) -> None:
    reg = ModelRegistry(base, lock_timeout=5)
    injector = _Injector(Path(base), target, kind)
    result: dict[str, Any] = {"outcome": "ok"}
    try:
        with _injected(injector):
            scenario.operate(reg, [Path(r) for r in runs])
    except RegistryError as exc:
        retryable = isinstance(exc, StorageError)
        result = {"outcome": "storage_error" if retryable else "registry_error", "error": repr(exc)}
    except BaseException as exc:
        result = {"outcome": "other_error", "error": repr(exc)}
    result["labels"] = injector.labels
    result["fired"] = injector.fired
    Path(out).write_text(json.dumps(result))
    os._exit(0)


def _run_child(
    scenario: Scenario, base: Path, runs: list[Path], target: int | None, kind: str | None
) -> dict[str, Any]:
    out = base.parent / f"{base.name}.result.json"
    out.unlink(missing_ok=True)
    ctx = multiprocessing.get_context("fork")
    args = (scenario, str(base), [str(r) for r in runs], target, kind, str(out))
    proc = ctx.Process(target=_child, args=args)
    proc.start()
    proc.join(120)
    if proc.exitcode == -signal.SIGKILL:
        return {"outcome": "killed", "fired": True}
    if not out.exists():
        return {"outcome": "other_error", "error": f"child exit code {proc.exitcode}"}
    result: dict[str, Any] = json.loads(out.read_text())
    return result


# --- the parent's side --------------------------------------------------------------------


def signature(reg: ModelRegistry) -> dict[str, Any]:
    """What one call of an operation must leave, whatever the crashes in between."""
    events = [
        tuple(ev.get(k) for k in ("event", "stage", "version", "from", "to", "was_current"))
        for ev in reg.history(NAME)
    ]
    return {
        STAGING: reg.list_models(STAGING).get(NAME, []),
        PRODUCTION: reg.list_models(PRODUCTION).get(NAME, []),
        "current": reg.current_version(NAME),
        "canary": (reg.get_canary(NAME) or {}).get("version"),
        "events": [list(e) for e in events],
    }


def _state(reg: ModelRegistry) -> tuple[Any, ...]:
    """Versions and ``current`` (no history: reading it would finish a pending intent)."""
    return (
        reg.list_models(STAGING).get(NAME, []),
        reg.list_models(PRODUCTION).get(NAME, []),
        reg.current_version(NAME),
    )


def _state_of(sig: dict[str, Any]) -> tuple[Any, ...]:
    return (sig[STAGING], sig[PRODUCTION], sig["current"])


@dataclass
class Prepared:
    """A scenario's template registry, its mutation points and the fault-free result."""

    scenario: Scenario
    template: Path
    runs: list[Path]
    points: list[str]
    reference: dict[str, Any]


def prepare(scenario: Scenario, workdir: Path) -> Prepared:
    runs = [make_run_dir(workdir / "runs" / f"r{i}", bytes([i + 1]) * 4096) for i in range(5)]
    template = workdir / f"{scenario.name}-template"
    scenario.prepare(ModelRegistry(template, lock_timeout=5), runs)
    probe = workdir / f"{scenario.name}-count"
    shutil.copytree(template, probe, symlinks=True)
    counted = _run_child(scenario, probe, runs, None, None)
    if counted["outcome"] != "ok":
        raise RuntimeError(f"{scenario.name} fails without faults: {counted}")
    reference = signature(ModelRegistry(probe, lock_timeout=5))
    shutil.rmtree(probe)
    return Prepared(scenario, template, runs, counted["labels"], reference)


def trial(prepared: Prepared, point: int, kind: str, workdir: Path) -> dict[str, Any]:
    """One fault at one point; returns the findings (``problems`` empty when all held)."""
    scenario = prepared.scenario
    base = workdir / f"{scenario.name}-{point}-{kind}"
    shutil.copytree(prepared.template, base, symlinks=True)
    result = _run_child(scenario, base, prepared.runs, point, kind)
    label = prepared.points[point] if point < len(prepared.points) else "?"
    where = f"{scenario.name}: {kind} before #{point} {label}"
    problems: list[str] = []
    if result["outcome"] == "other_error":
        problems.append(f"{where}: raised a non-registry error {result.get('error')}")
    if kind != "sigkill" and result["outcome"] == "registry_error":
        problems.append(f"{where}: a disk fault raised a non-retryable {result.get('error')}")
    reg = ModelRegistry(base, lock_timeout=5)
    took_effect = _state(reg) == _state_of(prepared.reference)
    # What readers see right after the fault, before anything recovers:
    problems += [
        f"{where}: after the fault: {p}" for p in check_consistent(reg, NAME, history=False)
    ]
    # The history (reading it finishes a dead writer's operation), on a copy, so that the
    # retry below meets the registry exactly as the fault left it:
    shutil.copytree(base, base.with_name(f"{base.name}-history"), symlinks=True)
    seen = ModelRegistry(base.with_name(f"{base.name}-history"), lock_timeout=5)
    recorded = history_problems(seen, NAME)
    unrecorded = bool(recorded)
    problems += [f"{where}: history after the fault: {p}" for p in recorded]
    shutil.rmtree(seen.base_dir, ignore_errors=True)
    if result["outcome"] != "ok":  # the call did not answer: its caller retries
        try:
            scenario.operate(reg, prepared.runs)
        except RegistryError as exc:
            problems.append(f"{where}: the retry failed: {exc!r}")
        problems += [f"{where}: after the retry: {p}" for p in check_consistent(reg, NAME)]
    final = signature(reg)
    if final != prepared.reference:
        problems.append(f"{where}: after the retry {final} != one call's {prepared.reference}")
    duplicate = len(final[STAGING]) > len(prepared.reference[STAGING])
    reg.gc(min_age=0)
    if leftovers(reg, NAME):
        problems.append(f"{where}: gc left {leftovers(reg, NAME)}")
    shutil.rmtree(base, ignore_errors=True)
    return {
        "where": where,
        "outcome": result["outcome"],
        "error": result.get("error", ""),
        "took_effect": took_effect,
        "fired": bool(result.get("fired")),
        "problems": problems,
        "unrecorded": unrecorded,
        "duplicate": duplicate,
    }


@contextmanager
def scratch() -> Iterator[Path]:
    """A temporary directory, on a RAM file system when there is one (``/dev/shm``): the
    faults are injected in the calls, not by the disk, and a trial there costs a fraction."""
    shm = "/dev/shm"
    base = shm if os.path.isdir(shm) and os.access(shm, os.W_OK) else None
    with tempfile.TemporaryDirectory(prefix="registry_faults_", dir=base) as tmp:
        yield Path(tmp)


def run_matrix(
    workdir: Path,
    scenarios: tuple[Scenario, ...] = SCENARIOS,
    kinds: tuple[str, ...] = KINDS,
    every: int = 1,
) -> dict[str, Any]:
    """Every ``every``-th mutation point of each scenario, each kind; a summary."""
    summary: dict[str, Any] = {
        "trials": 0,
        "fired": 0,
        "inconsistent": 0,
        "duplicate": 0,
        "unrecorded_after_fault": 0,
        "points": {},
        "problems": [],
    }
    for scenario in scenarios:
        prepared = prepare(scenario, workdir / scenario.name)
        summary["points"][scenario.name] = len(prepared.points)
        for k in range(0, len(prepared.points), every):
            for kind in kinds if every == 1 else (kinds[(k // every) % len(kinds)],):
                found = trial(prepared, k, kind, workdir / scenario.name)
                summary["trials"] += 1
                summary["fired"] += found["fired"]
                summary["inconsistent"] += bool(found["problems"])
                summary["duplicate"] += found["duplicate"]
                summary["unrecorded_after_fault"] += found["unrecorded"]
                summary["problems"] += found["problems"]
    return summary
