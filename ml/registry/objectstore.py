"""The registry on an object store (``ModelRegistry("s3://bucket/models")``): keys, reading.

The same layout names as on disk, as object keys below the registry URL::

    staging/<name>/vN/{model.pt, config.yaml, metrics.json, metadata.json, ..., MANIFEST.json}
    production/<name>/vN/...            a verified copy of staging vN
    production/<name>/current           the pointer: {"version", "seq", "production", "deleted",
                                        "canary"}
    .registry/<name>/index.json         the published staging versions (read by listing)
    .registry/<name>/claims/<N>         the claim of number N (created with If-None-Match)
    .registry/<name>/registered/<N>     the register event of vN
    .registry/<name>/history/<k>        event k of the model log (promote, rollback, delete)

``<N>`` and ``<k>`` are zero-padded to 19 digits, so keys sort numerically. The invariants
of the local registry hold with an object store's primitives (docs/storage.md):

- one writer claims vN: a conditional create (``If-None-Match: *``) of ``claims/<N>``;
- a version appears whole: its files are uploaded, ``MANIFEST.json`` last, then it is
  added to ``index.json`` (compare-and-swap); readers list from the index only;
- ``current`` moves atomically: the pointer object is replaced with ``If-Match``; it
  also lists the production versions, so a copy becomes visible with the move;
- history equals state: event k of the model log is created (``If-None-Match``) before
  the pointer moves from ``seq`` k-1 to k; a writer that finds event k written but not
  applied applies it first, so one that died mid-way is completed. Readers never write:
  for them the state is the pointer, and the history stops at its seq.

Registering: :mod:`ml.registry.objectstore_write`; promote, rollback and the log:
:mod:`ml.registry.objectstore_production`; delete, versions, find_version:
:mod:`ml.registry.objectstore_manage`; the facade: :mod:`ml.registry.objectstore_api`.
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ml.errors import (
    ConditionFailedError,
    IntegrityError,
    InvalidNameError,
    ModelNotFoundError,
    StorageUnavailableError,
    VersionNotFoundError,
)
from ml.fsutil import sha256_file
from ml.registry.layout import (
    CURRENT,
    MANIFEST,
    META,
    PRODUCTION,
    STAGING,
    validate_name,
    validate_stage,
    validate_version,
    version_number,
)
from ml.storage.store import ObjectStore, Version

INDEX_KEY = "index.json"
#: the pointer's list of deleted staging versions (the index lists what was published)
DELETED = "deleted"
#: the pointer's canary setting (None: no canary); see objectstore_production.canary_record
CANARY = "canary"
#: the index's list of claimed numbers gc gave up on (their writer died): never published
ABANDONED = "abandoned"
PAD = 19
#: attempts of a compare-and-swap loop before giving up (each loses only to a writer
#: that made progress, so this bounds contention, not correctness)
CAS_ATTEMPTS = 200


def pad(n: int) -> str:
    return f"{n:0{PAD}d}"


class Keys:
    """Object keys of one registry (relative to its URL)."""

    def __init__(self, store: ObjectStore) -> None:
        self.store = store

    def version(self, stage: str, name: str, version: str, file: str = "") -> str:
        validate_version(version)
        return "/".join(p for p in (validate_stage(stage), validate_name(name), version, file) if p)

    def current(self, name: str) -> str:
        return f"{PRODUCTION}/{validate_name(name)}/{CURRENT}"

    def meta(self, name: str, *parts: str) -> str:
        return "/".join((META, validate_name(name), *parts))

    def claim(self, name: str, n: int) -> str:
        return self.meta(name, "claims", pad(n))

    def registered(self, name: str, n: int) -> str:
        return self.meta(name, "registered", pad(n))

    def event(self, name: str, seq: int) -> str:
        return self.meta(name, "history", pad(seq))

    def url(self, stage: str, name: str, version: str) -> str:
        return self.store.url.url(self.version(stage, name, version))


# --- small JSON objects -------------------------------------------------------------------


def dumps(obj: Any) -> bytes:
    return (json.dumps(obj, sort_keys=True, separators=(",", ":")) + "\n").encode()


def loads(store: ObjectStore, key: str, raw: bytes) -> Any:
    try:
        return json.loads(raw)
    except ValueError as exc:
        raise IntegrityError(
            f"{store.show(key)} is not valid JSON ({exc}); restore it from a backup or "
            "remove it (the registry rebuilds an index, never a manifest)"
        ) from exc


def read_json(store: ObjectStore, key: str) -> tuple[Any, Version] | None:
    found = store.get_versioned(key)
    if found is None:
        return None
    return loads(store, key, found[0]), found[1]


def cas_update(store: ObjectStore, key: str, change: Callable[[Any | None], Any | None]) -> Any:
    """Apply ``change`` to the JSON object at ``key`` with compare-and-swap, until it sticks.

    ``change`` gets the current value (None when absent) and returns the new one, or
    None to leave it. Returns the value written (or left).
    """
    for attempt in range(CAS_ATTEMPTS):
        found = read_json(store, key)
        old, version = (None, None) if found is None else found
        new = change(old)
        if new is None:
            return old
        try:
            if version is None:
                store.put_if_absent(key, dumps(new))
            else:
                store.put_if_match(key, dumps(new), version)
            return new
        except ConditionFailedError:
            time.sleep(random.uniform(0, min(0.05 * (attempt + 1), 0.5)))
    raise StorageUnavailableError(
        f"updating {store.show(key)}: {CAS_ATTEMPTS} concurrent changes in a row; retry"
    )


# --- the index ----------------------------------------------------------------------------


def empty_index() -> dict[str, Any]:
    return {"format_version": 1, STAGING: [], "last_claim": 0, "sources": {}}


def read_index(store: ObjectStore, keys: Keys, name: str) -> dict[str, Any]:
    found = read_json(store, keys.meta(name, INDEX_KEY))
    index = empty_index()
    if found is not None and isinstance(found[0], dict):
        index.update(found[0])
    return index


def numbers(index: dict[str, Any], stage: str) -> list[int]:
    """The numbers ``index`` lists for ``stage`` (the index or the pointer object)."""
    return sorted(int(n) for n in index.get(stage, []))


def published(store: ObjectStore, keys: Keys, name: str, stage: str) -> list[int]:
    """Visible version numbers: staging's from the index, production's from the pointer
    (it moves with the production versions it lists, so history and state agree)."""
    cur = read_current(store, keys, name)
    if validate_stage(stage) == STAGING:
        staged = numbers(read_index(store, keys, name), STAGING)
        gone = set(numbers(cur[0], DELETED)) if cur else set()
        return [n for n in staged if n not in gone]
    return numbers(cur[0], PRODUCTION) if cur else []


def model_names(store: ObjectStore) -> list[str]:
    return [n for n in store.list_dirs(META + "/") if _is_name(n)]


def _is_name(name: str) -> bool:
    try:
        validate_name(name)
    except InvalidNameError:
        return False
    return True


# --- reading ------------------------------------------------------------------------------


def list_models(store: ObjectStore, keys: Keys, stage: str) -> dict[str, list[str]]:
    validate_stage(stage)
    out: dict[str, list[str]] = {}
    for name in model_names(store):
        nums = published(store, keys, name, stage)
        if nums:
            out[name] = [f"v{n}" for n in nums]
    return out


def latest_version(store: ObjectStore, keys: Keys, name: str, stage: str) -> str:
    nums = published(store, keys, validate_name(name), stage)
    if not nums:
        raise model_not_found(store, name, stage)
    return f"v{nums[-1]}"


def model_not_found(store: ObjectStore, name: str, stage: str) -> ModelNotFoundError:
    hint = (
        f"register one with `ctr-pipeline registry register RUN_DIR --name {name}`"
        if stage == STAGING
        else f"promote one with `ctr-pipeline registry promote {name} vN`"
    )
    return ModelNotFoundError(f"Model {name!r} has no version under {store.show(stage)}; {hint}")


def read_current(
    store: ObjectStore, keys: Keys, name: str
) -> tuple[dict[str, Any], Version] | None:
    """The pointer object ``{"version", "seq", ...}`` and its version, or None.

    ``version`` is None when the current version was deleted (``delete --force``)."""
    found = read_json(store, keys.current(name))
    if found is None:
        return None
    value, version = found
    return check_pointer(store, keys, name, value), version


def check_pointer(store: ObjectStore, keys: Keys, name: str, value: Any) -> dict[str, Any]:
    """``value`` when it is a pointer object, else :class:`IntegrityError`."""
    pointed = value.get("version") if isinstance(value, dict) else None
    if not isinstance(value, dict) or (
        pointed is not None and version_number(str(pointed)) is None
    ):
        raise IntegrityError(
            f"{store.show(keys.current(name))} does not hold a version pointer; promote a "
            "version again to rewrite it"
        )
    return value


def require_version(
    store: ObjectStore, keys: Keys, name: str, version: str, stage: str
) -> dict[str, Any]:
    """The published version's manifest, or the right not-found error."""
    validate_version(version)
    nums = published(store, keys, name, stage)
    if int(version[1:]) in nums:
        found = read_json(store, keys.version(stage, name, version, MANIFEST))
        if found is not None and isinstance(found[0], dict):
            return found[0]
    if not [n for n in nums if n != int(version[1:])]:
        raise model_not_found(store, name, stage)
    shown = ", ".join(f"v{n}" for n in nums[-10:])
    raise VersionNotFoundError(
        f"Model {name!r} version {version} not found under {store.show(stage)}; available: {shown}"
    )


def resolve(
    store: ObjectStore, keys: Keys, name: str, ref: str, stage: str | None
) -> tuple[str, str]:
    """``(stage, version)`` for ``'current'``, ``'latest'`` or ``'vN'`` (as on disk)."""
    validate_name(name)
    if ref == CURRENT:
        if stage not in (None, PRODUCTION):
            raise InvalidNameError(
                f"'current' exists only in production, not in {stage!r}; use 'latest' or "
                "a version such as 'v3' with --stage staging"
            )
        cur = read_current(store, keys, name)
        if cur is None or cur[0].get("version") is None:
            raise ModelNotFoundError(
                f"Model {name!r} has no current production version "
                f"({store.show(keys.current(name))} is missing); promote one with "
                f"`ctr-pipeline registry promote {name} vN`"
            )
        return PRODUCTION, str(cur[0]["version"])
    stage = validate_stage(stage or STAGING)
    if ref == "latest":
        return stage, latest_version(store, keys, name, stage)
    if not isinstance(ref, str) or version_number(ref) is None:
        raise InvalidNameError(
            f"invalid version reference {ref!r}: use 'current', 'latest' or a version such as 'v3'"
        )
    require_version(store, keys, name, ref, stage)
    return stage, ref


def verify_files(
    store: ObjectStore,
    keys: Keys,
    name: str,
    version: str,
    stage: str,
    download_to: Path | None = None,
) -> tuple[list[str], dict[str, int]]:
    """Hash every object of the version and compare with its manifest: (problems, sizes).

    With ``download_to``, each file is downloaded there and the local copy is hashed:
    what was verified is what gets used, in one transfer."""
    manifest = require_version(store, keys, name, version, stage)
    files = manifest.get("files")
    if not isinstance(files, dict):
        return [f"{MANIFEST}: lists no files"], {}
    prefix = keys.version(stage, name, version) + "/"
    present = {o.key[len(prefix) :]: o.size for o in store.list_objects(prefix)}
    problems = [f"{f}: not in {MANIFEST}" for f in sorted(set(present) - set(files) - {MANIFEST})]
    for fname, want in sorted(files.items()):
        if fname not in present:
            problems.append(f"{fname}: missing")
            continue
        if download_to is None:
            digest, _ = store.sha256(prefix + fname)
        else:
            store.download_file(prefix + fname, download_to / fname)
            digest, _ = sha256_file(download_to / fname)
        if digest != want.get("sha256"):
            problems.append(f"{fname}: sha256 differs from {MANIFEST}")
    return problems, {f: s for f, s in present.items() if f != MANIFEST}
