"""Crash safety: how every change to a model is made, and how a dead writer's is finished.

The invariants, each kept by the code named:

1. **One writer per model.** Every change to ``<name>`` happens inside :func:`writing`,
   holding ``.registry/<name>/lock`` (``_lock.FileLock``). The kernel releases it when
   its holder dies, so a lock is never left behind.
2. **Intent first.** Before its first change a writer makes ``intent.json`` durable
   (:meth:`Session.begin`): the operation, its id and the history event it will record.
3. **One point of no return.** Each operation takes effect with one atomic rename or
   replace: ``.tmp-<id>`` -> ``vN`` (register, see :mod:`.publish`), a new link over
   ``current`` (promote, rollback, see :mod:`.production`), a new ``canary.json``
   (see :mod:`.canary`), ``vN`` -> ``.archive/...``
   or ``.tmp-<id>`` (delete, purge, see :mod:`.cleanup`). Readers see the state before
   it or after it, never between.
4. **Journal before answer.** After it, the writer updates the bookkeeping (index,
   ``published-<stage>``), appends the history event (fsynced) and only
   then clears the intent (durably) and returns (:meth:`Session.commit`).
5. **The next writer finishes the job.** A writer that finds a pending intent owns the
   lock, so the intent's writer is dead or failed (:func:`recover`). If the point of no
   return was passed, it completes steps 4 for it (the history line says
   ``recovered: true``) and keeps the intent as ``recovered`` until the dead writer's
   retry comes: the same call then returns that result instead of doing it twice
   (:meth:`Session.take`). Another operation replaces it: a retry that comes after
   someone else's change is a new call. Otherwise it undoes what came before the point of no return
   (a production copy made for a promotion, a ``current`` link removed by a delete) and
   forgets the intent. So ``registry history`` always agrees with ``registry list``,
   and a retry converges on what the first call meant.

A writer that fails with an exception runs the same recovery before it releases the
lock, so after a disk-full error the registry is already consistent.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ml.errors import CtrPipelineError, RegistryError, TookEffectError, describe_oserror
from ml.fsutil import fsync_dir
from ml.registry import _fs, canary, catalog, index, journal
from ml.registry._lock import FileLock
from ml.registry.layout import (
    HISTORY,
    INDEX,
    INTENT,
    LAST_VERSION,
    LINK_PREFIX,
    LOCK,
    METADATA,
    PRODUCTION,
    STAGES,
    STAGING,
    Layout,
    version_number,
)
from ml.registry.oserrors import os_errors

REGISTER, PROMOTE, ROLLBACK, DELETE = "register", "promote", "rollback", "delete"
#: set or clear the canary (see :mod:`ml.registry.canary`)
CANARY = canary.KIND


@dataclass
class Session:
    """A writer of one model, holding its lock (made by :func:`writing`)."""

    layout: Layout
    name: str
    #: an operation recovery finished for a writer that died before answering
    recovered: dict[str, Any] | None = field(default=None)

    def begin(self, kind: str, event: dict[str, Any], **fields: Any) -> dict[str, Any]:
        """Make the intent durable; returns it (pass it to :meth:`commit`)."""
        intent: dict[str, Any] = {"kind": kind, "op": journal.new_op_id()}
        intent.update(fields, state=journal.PENDING, event=event)
        journal.write_intent(self.layout, self.name, intent)
        self.recovered = None  # replaced: a retry can no longer claim it
        return intent

    def commit(self, intent: dict[str, Any]) -> None:
        """Bookkeeping, history event, intent cleared: the operation is answered."""
        complete(self.layout, self.name, intent, recovered=False)

    def take(self, kind: str, **match: Any) -> dict[str, Any] | None:
        """The recovered operation when this call is its retry (same kind and fields).

        Taking it acknowledges it: a later identical call is a new operation.
        """
        r = self.recovered
        if r is None or r.get("kind") != kind or any(r.get(k) != v for k, v in match.items()):
            return None
        journal.clear_intent(self.layout, self.name)
        self.recovered = None
        return r


@contextmanager
def writing(layout: Layout, name: str, timeout: float) -> Iterator[Session]:
    """Hold ``name``'s lock, finish a dead writer's operation, yield a :class:`Session`."""
    meta = layout.meta_dir(name)
    with os_errors(f"preparing the registry for model {name!r}", meta):
        layout.ensure_dir(meta)
        lock = FileLock(meta / LOCK, timeout, f"model {name!r}").__enter__()
    try:
        with os_errors(f"recovering model {name!r}", meta):
            for bookkeeping in (HISTORY, INTENT, INDEX, LAST_VERSION):
                layout.check_no_links(meta / bookkeeping)  # refuse before changing anything
            session = Session(layout, name, recover(layout, name))
            _backfill(layout, name)
        try:
            yield session
        except BaseException as exc:
            effect = _pending_effect(layout, name)
            with suppress(Exception):  # finish or undo what this call started
                recover(layout, name)
            if effect is not None and isinstance(exc, OSError):
                raise took_effect_error(layout, name, effect, exc) from exc
            raise
    finally:
        lock.__exit__(None, None, None)


def recover(layout: Layout, name: str) -> dict[str, Any] | None:
    """Complete or undo a pending intent (the lock must be held); the recovered one."""
    intent = journal.read_intent(layout, name)
    if intent is None:
        return None
    if intent.get("state") == journal.RECOVERED:
        return intent
    if _took_effect(layout, name, intent):
        complete(layout, name, intent, recovered=True)
        return {**intent, "state": journal.RECOVERED}
    _undo(layout, name, intent)
    journal.clear_intent(layout, name)
    return None


def _pending_effect(layout: Layout, name: str) -> dict[str, Any] | None:
    """This call's intent when its change took effect (past the point of no return)."""
    with suppress(Exception):
        intent = journal.read_intent(layout, name)
        if intent and intent.get("state") == journal.PENDING and _took_effect(layout, name, intent):
            return intent
    return None


def describe_change(name: str, intent: dict[str, Any]) -> str:
    """``Model 'm' v3 was promoted to production (current -> v3)`` for an intent."""
    kind, version = intent["kind"], intent.get("version")
    if kind == REGISTER:
        return f"Model {name!r} {version} was registered in staging"
    if kind == PROMOTE:
        return f"Model {name!r} {version} was promoted to production (current -> {version})"
    if kind == ROLLBACK:
        return (
            f"Model {name!r} was rolled back from {intent.get('from')} to {intent['to']} "
            f"(current -> {intent['to']})"
        )
    if kind == CANARY:
        event = intent.get("event") or {}
        if intent.get("to") is None:
            return f"Model {name!r}'s canary was turned off (was {event.get('from')})"
        share = float(event.get("traffic") or 0.0)
        return f"Model {name!r}'s canary is {intent['to']} for {share:.0%} of users"
    done = "purged" if intent["event"].get("purged") else f"archived to {intent['dest']}"
    return f"Model {name!r} {version} was deleted from {intent['stage']} ({done})"


def took_effect_error(
    layout: Layout, name: str, intent: dict[str, Any], exc: OSError
) -> TookEffectError:
    """The error of a call whose change took effect before its bookkeeping failed.

    The writer's recovery (run just before) usually finished the record; if the storage
    still fails, the intent stays pending and the next writer (``registry gc``, or any
    command on the model) finishes it. Either way a retry of the same call is safe: it
    returns this call's result and never makes the change twice.
    """
    cause: BaseException = exc
    while isinstance(cause, CtrPipelineError) and isinstance(cause.__cause__, OSError):
        cause = cause.__cause__  # the OS's own error, not a wrapper's advice to retry
    why = describe_oserror(cause) if isinstance(cause, OSError) else str(cause)
    where = getattr(cause, "filename", None)
    shown = f" ({layout.display(where)})" if where else ""
    intent_now = None
    with suppress(Exception):
        intent_now = journal.read_intent(layout, name)
    finished = intent_now is not None and intent_now.get("state") == journal.RECOVERED
    status = (
        "the registry then finished recording it itself (its history event says "
        "`recovered: true`); nothing is left to do"
        if finished
        else "it is recorded by the next registry command: free space or fix the storage, "
        "then run `ctr-pipeline registry gc`"
    )
    return TookEffectError(
        getattr(cause, "errno", None) or 0,
        f"{describe_change(name, intent)}; then completing the record (sync, index, "
        f"history) failed: {why}{shown}. The change stands and {status}. Retrying the "
        "same command is safe: it returns this result without doing it twice",
        intent,
    )


def recover_if_pending(layout: Layout, name: str, timeout: float) -> None:
    """For readers of the history: finish a dead writer's operation first, if allowed."""
    if not journal.has_intent(layout, name):
        return
    with suppress(RegistryError), writing(layout, name, timeout):
        pass  # a read-only registry keeps its pending intent for the next writer


def complete(layout: Layout, name: str, intent: dict[str, Any], *, recovered: bool) -> None:
    kind, n = intent["kind"], version_number(str(intent.get("version")))
    if kind == REGISTER and n is not None:
        index.append(layout, name, intent["index"])
        index.change_published(layout, STAGING, name, add=n)
    elif kind == PROMOTE and n is not None and intent.get("copied"):
        index.change_published(layout, PRODUCTION, name, add=n)
    elif kind == DELETE and n is not None:
        index.change_published(layout, intent["stage"], name, remove=n)
    event = {**intent["event"], "op": intent["op"]}
    if recovered:
        event["recovered"] = True
    if not (recovered and journal.recorded(layout, name, intent["op"])):
        journal.append(layout, name, event)
    if recovered:
        journal.write_intent(layout, name, {**intent, "state": journal.RECOVERED})
    else:
        journal.clear_intent(layout, name)


def _took_effect(layout: Layout, name: str, intent: dict[str, Any]) -> bool:
    kind = intent["kind"]
    if kind == REGISTER:
        version = intent["version"]
        if not layout.has_manifest(STAGING, name, version):
            return False
        path = layout.version_dir(STAGING, name, version) / METADATA
        meta = catalog.read_json(layout, path, "metadata")
        return bool(meta.get("created_at") == intent["created_at"])
    if kind in (PROMOTE, ROLLBACK):
        return catalog.current_version(layout, name) == str(intent["to"])
    if kind == DELETE:
        dest = layout.model_dir(intent["stage"], name) / intent["dest"]
        return os.path.lexists(dest)
    if kind == CANARY:
        return canary.took_effect(layout, name, intent)
    raise RegistryError(f"unknown operation {kind!r} in the intent of model {name!r}")


def _undo(layout: Layout, name: str, intent: dict[str, Any]) -> None:
    kind = intent["kind"]
    if kind == REGISTER:
        tmp = layout.model_dir(STAGING, name) / intent["tmp"]
        if os.path.lexists(tmp):
            _fs.remove_tree(tmp)
    elif kind == PROMOTE and intent.get("copied"):
        copy = layout.version_dir(PRODUCTION, name, intent["version"])
        if os.path.lexists(copy):
            discard_dir(layout, PRODUCTION, name, copy)
    elif (
        kind == DELETE
        and intent.get("was_current")
        and catalog.current_version(layout, name) is None
    ):
        set_current(layout, name, intent["version"])
    elif kind == CANARY:
        canary.undo(layout, name, intent)


def _backfill(layout: Layout, name: str) -> None:
    """Write the index files of a model registered before they existed."""
    for stage in STAGES:
        model_dir = layout.model_dir(stage, name)
        if index.published(layout, stage, name) is None and _fs.is_real_dir(model_dir):
            index.write_published(layout, stage, name, catalog.visible_numbers(layout, stage, name))
    if not os.path.lexists(layout.meta_file(name, INDEX)):
        numbers = catalog.visible_numbers(layout, STAGING, name)
        lines = []
        for n in numbers:
            path = layout.version_dir(STAGING, name, f"v{n}") / METADATA
            with suppress(RegistryError):
                lines.append(index.entry(catalog.read_json(layout, path, "metadata"), f"v{n}"))
        if lines or _fs.is_real_dir(layout.model_dir(STAGING, name)):
            index.write_all(layout, name, lines)


# --- the changes recovery may have to make itself ----------------------------------------


def set_current(layout: Layout, name: str, version: str | None) -> None:
    """Point ``production/<name>/current`` at ``version`` (None: remove it), atomically.

    A new relative link is made beside ``current`` and renamed over it, so a reader sees
    the old or the new target, never none; the directory is fsynced.
    """
    prod_dir = layout.model_dir(PRODUCTION, name)
    link = prod_dir / "current"
    if version is None:
        if os.path.islink(link):
            os.unlink(link)
            fsync_dir(prod_dir)
        return
    tmp_link = prod_dir / f"{LINK_PREFIX}{journal.new_op_id()}"
    os.symlink(version, tmp_link)  # relative: the tree can move as a whole
    try:
        os.replace(tmp_link, link)
    except BaseException:
        with suppress(OSError):
            tmp_link.unlink()
        raise
    fsync_dir(prod_dir)


def discard_dir(layout: Layout, stage: str, name: str, path: Path) -> None:
    """Remove a directory beside the versions: renamed to ``.tmp-<id>`` first (atomic,
    and a crash mid-removal leaves a temporary directory that gc removes), then deleted."""
    trash = layout.new_tmp(stage, name)
    os.rename(path, trash)
    fsync_dir(path.parent)
    _fs.remove_tree(trash)
