"""Fault injection for the object-store registry: a fault before each storage request.

:func:`fault_at` patches :class:`ml.storage.store.ObjectStore`'s request methods (every
GET, HEAD, LIST, PUT, COPY and DELETE goes through one of them) to count the requests,
and to fail just before request ``point``:

- ``"kill"``: raises :class:`Killed`, a ``BaseException`` that no handler in ``ml``
  catches, so the operation stops there as if its process died (no cleanup runs);
- ``"raise"``: raises :class:`ml.storage.StorageUnavailableError`, as an endpoint that
  dropped one request would (the operation must let it out as a retryable error).

:func:`converges` runs an operation with a fault at each point in turn, on a fresh
registry each time, retries it without faults, and compares the end state with a
fault-free run: the same versions, ``current`` and history, and a history that equals
the state.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from ml import storage
from ml.errors import StorageUnavailableError
from ml.registry.model_registry import ModelRegistry
from ml.storage.store import ObjectStore
from testkit.registry import history_problems

REQUESTS = (
    "get_versioned",
    "get_if_changed",
    "head",
    "list_objects",
    "list_dirs",
    "sha256",
    "download_file",
    "_put",
    "copy",
    "delete",
)


class Killed(BaseException):
    """The injected death of the process at a storage request."""


@contextmanager
def fault_at(point: int | None, kind: str = "kill") -> Iterator[list[str]]:
    """Count storage requests (their method names, in order); fail before ``point``."""
    calls: list[str] = []
    originals = {name: getattr(ObjectStore, name) for name in REQUESTS}

    def wrap(name: str, orig: Callable[..., Any]) -> Callable[..., Any]:
        def request(self: ObjectStore, *args: Any, **kwargs: Any) -> Any:
            calls.append(name)
            if point is not None and len(calls) == point:
                if kind == "kill":
                    raise Killed(f"killed before request {point} ({name})")
                raise StorageUnavailableError(f"injected failure of request {point}")
            return orig(self, *args, **kwargs)

        return request

    for name, orig in originals.items():
        setattr(ObjectStore, name, wrap(name, orig))
    try:
        yield calls
    finally:
        for name, orig in originals.items():
            setattr(ObjectStore, name, orig)


def state(reg: ModelRegistry, name: str) -> dict[str, Any]:
    """What a retry must reach: the listings, ``current``, the canary, the events and the
    objects of the versions (so a purge left nothing behind)."""
    events = reg.history(name)
    store = storage.open_store(str(reg.base_dir))
    canary = reg.get_canary(name)
    return {
        "staging": reg.list_models("staging").get(name, []),
        "production": reg.list_models("production").get(name, []),
        "current": reg.current_version(name),
        "canary": canary and (canary["version"], canary["traffic"]),
        "events": [(e["event"], e.get("version"), e.get("to")) for e in events],
        "objects": [o.key for s in ("staging", "production") for o in store.list_objects(s + "/")],
    }


def converges(
    base_url: str,
    setup: Callable[[ModelRegistry], None],
    operation: Callable[[ModelRegistry], Any],
    name: str,
    kinds: tuple[str, ...] = ("kill", "raise"),
) -> dict[str, Any]:
    """Fault at every request of ``operation``, retry, compare: counts and problems."""

    def fresh() -> ModelRegistry:
        reg = ModelRegistry(f"{base_url}/{uuid.uuid4().hex[:8]}")
        setup(reg)
        return reg

    reg = fresh()
    with fault_at(None) as calls:
        operation(reg)
    expected = state(reg, name)
    problems: list[str] = []
    for point in range(1, len(calls) + 1):
        for kind in kinds:
            reg = fresh()
            try:
                with fault_at(point, kind):
                    operation(reg)
                problems.append(f"{kind}@{point}: the operation did not fail")
            except (Killed, StorageUnavailableError):
                pass
            except Exception as exc:
                problems.append(f"{kind}@{point}: raised {exc!r}")
            operation(reg)  # the retry, without faults
            got = state(reg, name)
            if got != expected:
                problems.append(f"{kind}@{point}: {got} != {expected}")
            problems += [f"{kind}@{point}: {p}" for p in history_problems(reg, name)]
    return {"requests": len(calls), "problems": problems}
