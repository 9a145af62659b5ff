"""``ModelRegistry`` on an object store: what ``ModelRegistry("s3://bucket/models")`` returns.

:class:`ObjectStoreRegistry` is a :class:`~ml.registry.model_registry.ModelRegistry` with
the spec's API and the same layout names, over the primitives in
:mod:`ml.registry.objectstore` (reading) and :mod:`ml.registry.objectstore_write`
(changing). Errors of the store itself (missing bucket, denied access, endpoint down, a
lost conditional write) are the storage errors of :mod:`ml.errors`: user errors exit 2,
retryable ones 3.

The canary setting lives in the pointer object beside ``current`` (one GET tells a
service both); retention (``gc --keep-last``) is :mod:`ml.registry.objectstore_retention`.
``path_of`` returns a verified local copy (a cache under
the base directory), so code that reads a version's directory works unchanged.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

from ml import paths, storage
from ml.errors import IntegrityError, ModelNotFoundError, NoPreviousVersionError
from ml.registry import objectstore as obj
from ml.registry import objectstore_manage as manage
from ml.registry import objectstore_production as prod
from ml.registry import objectstore_retention as retention
from ml.registry import objectstore_write as write
from ml.registry.cleanup import DEFAULT_GC_MIN_AGE, GcReport
from ml.registry.integrity import VerifyReport
from ml.registry.journal import Audit
from ml.registry.layout import (
    CURRENT,
    METADATA,
    MODEL_FILE,
    PRODUCTION,
    STAGING,
    validate_name,
    validate_version,
)
from ml.registry.model_registry import ModelRegistry, check_keep_last
from ml.registry.production import Promotion
from ml.registry.publish import ExtraFiles, RegisteredVersion
from ml.storage.store import Version


class ObjectStoreRegistry(ModelRegistry):
    """The registry below a URL (``s3://bucket/prefix``); see :mod:`ml.registry.objectstore`."""

    def __init__(
        self,
        base_dir: str | os.PathLike[str] | None = None,
        *,
        lock_timeout: float = 60.0,
        file_mode: int | None = None,
    ) -> None:
        self._store = storage.open_store(
            str(paths.registry_root() if base_dir is None else base_dir)
        )
        self._keys = obj.Keys(self._store)
        self.base_dir = self._store.show()
        self.lock_timeout = float(lock_timeout)
        self.file_mode = file_mode
        #: the pointer object last read per model, with its version (see _pointer)
        self._pointers: dict[str, tuple[Version, dict[str, Any]]] = {}

    def __repr__(self) -> str:
        return f"ModelRegistry({self.base_dir!r})"

    def _url(self, stage: str, name: str, version: str) -> Path:
        # RegisteredVersion/Promotion/VerifyReport hold a Path; here it is the URL as text
        return self._keys.url(stage, name, version)  # type: ignore[return-value]

    def get_canary(self, name: str) -> dict[str, Any] | None:
        """The canary (``version``, ``traffic``, ``since``, ``by``, ``reason``) or None."""
        return prod.canary_in(self._store, self._keys, name, self._pointer(validate_name(name)))

    def set_canary(
        self,
        name: str,
        version: str,
        traffic: float,
        *,
        by: str | None = None,
        reason: str | None = None,
    ) -> dict[str, Any] | None:
        fields = Audit(reason, by).fields()
        return prod.set_canary(
            self._store, self._keys, validate_name(name), version, traffic, fields
        )

    def clear_canary(self, name: str, *, by: str | None = None, reason: str | None = None) -> None:
        fields = Audit(reason, by).fields()
        prod.set_canary(self._store, self._keys, validate_name(name), None, 0.0, fields)

    def rollback_target(self, name: str) -> str | None:
        current = self.current_version(name)
        if current is None:
            return None
        events = prod.production_events(self._store, self._keys, name)
        published = set(obj.published(self._store, self._keys, name, PRODUCTION))
        return prod.rollback_target(events, current, published)

    def cache_dir(self, what: str) -> Path:
        """``$CTR_PIPELINE_HOME/.cache/registry/<store>/<what>``: derived local files."""
        return manage.cache_root(self._store) / what

    # --- reading ----------------------------------------------------------------------

    def list_models(self, stage: str = STAGING) -> dict[str, list[str]]:
        return obj.list_models(self._store, self._keys, stage)

    def list_versions(self, name: str, stage: str = STAGING) -> list[str]:
        nums = obj.published(self._store, self._keys, validate_name(name), stage)
        return [f"v{n}" for n in nums]

    def get_latest_version(self, name: str, stage: str = STAGING) -> str:
        return obj.latest_version(self._store, self._keys, name, stage)

    def current_version(self, name: str) -> str | None:
        cur = self._pointer(validate_name(name))
        return str(cur["version"]) if cur and cur.get("version") else None

    def _pointer(self, name: str) -> dict[str, Any] | None:
        """The pointer object, for readers: a conditional GET against the one read last
        (``If-None-Match``: a 304 without a body while it is unchanged), so a service
        polling ``current`` and the canary costs small requests only."""
        key = self._keys.current(name)
        cached = self._pointers.get(name)
        found = self._store.get_if_changed(key, cached[0] if cached else None)
        if found is None:
            self._pointers.pop(name, None)
            return None
        raw, version = found
        if raw is None and cached is not None:
            return cached[1]
        value = obj.loads(self._store, key, raw or b"")
        value = obj.check_pointer(self._store, self._keys, name, value)
        self._pointers[name] = (version, value)
        return value

    def resolve(self, name: str, ref: str = "latest", stage: str | None = None) -> tuple[str, str]:
        return obj.resolve(self._store, self._keys, name, ref, stage)

    def show(self, name: str, ref: str = "latest", stage: str | None = None) -> dict[str, Any]:
        stage, version = self.resolve(name, ref, stage)
        manifest = obj.require_version(self._store, self._keys, name, version, stage)
        meta = obj.read_json(self._store, self._keys.version(stage, name, version, METADATA))
        production = obj.published(self._store, self._keys, name, PRODUCTION)
        return {
            "name": name,
            "version": version,
            "stage": stage,
            "path": str(self._url(stage, name, version)),
            "current": stage == PRODUCTION and self.current_version(name) == version,
            "in_production": int(version[1:]) in production,
            "files": manifest.get("files", {}),
            "metadata": meta[0] if meta else {},
        }

    def path_of(self, name: str, version: str, stage: str = STAGING) -> Path:
        """A verified local copy of the version (downloaded once, then reused)."""
        return manage.local_copy(self._store, self._keys, validate_name(name), version, stage)

    def versions(self, name: str, *, last: int | None = None) -> list[dict[str, Any]]:
        return manage.versions(self._store, self._keys, name, last=last)

    def find_version(
        self, name: str, *, data_digest: str, config_digest: str, code_digest: str
    ) -> str | None:
        return manage.find_version(
            self._store,
            self._keys,
            name,
            data_digest=data_digest,
            config_digest=config_digest,
            code_digest=code_digest,
        )

    # --- writing ----------------------------------------------------------------------

    def register(
        self,
        run_dir: str | os.PathLike[str],
        name: str = "ctr_model",
        *,
        dag_id: str | None = None,
        run_id: str | None = None,
        force: bool = False,
        created_by: str | None = None,
        extra_files: ExtraFiles | None = None,
    ) -> RegisteredVersion:
        version, created = write.register(
            self._store,
            run_dir,
            name,
            dag_id=dag_id,
            run_id=run_id,
            force=force,
            created_by=created_by,
            extra_files=extra_files,
        )
        return RegisteredVersion(name, version, self._url(STAGING, name, version), created)

    def promote_to_production(
        self, name: str, version: str, reason: str | None = None, *, by: str | None = None
    ) -> Promotion:
        validate_name(name)
        validate_version(version)
        prod.copy_to_production(self._store, self._keys, name, version)
        fields = Audit(reason, by).fields()

        def event(current: str | None, seq: int, _: dict[str, Any]) -> dict[str, Any] | None:
            if current == version:
                return None
            return {"event": "promote", "from": current, "to": version, **fields}

        def mine(done: dict[str, Any]) -> bool:
            return done.get("event") == "promote" and done.get("to") == version

        record, previous = prod.move_current(self._store, self._keys, name, event, mine)
        path = self._url(PRODUCTION, name, version)
        return Promotion(name, version, previous, path, record is not None)

    def rollback(self, name: str, reason: str | None = None, *, by: str | None = None) -> Promotion:
        validate_name(name)
        store, keys = self._store, self._keys
        fields = Audit(reason, by).fields()

        def event(current: str | None, seq: int, _: dict[str, Any]) -> dict[str, Any] | None:
            if current is None:
                raise NoPreviousVersionError(
                    f"Model {name!r} has no current production version to roll back from; "
                    f"promote one with `ctr-pipeline registry promote {name} vN`"
                )
            events = prod.production_events(store, keys, name)[:seq]
            published = set(obj.published(store, keys, name, PRODUCTION))
            target = prod.rollback_target(events, current, published)
            if target is None:
                raise NoPreviousVersionError(
                    f"Model {name!r} has no production version before {current} under "
                    f"{store.show(PRODUCTION)} to roll back to; promote a version instead "
                    f"(`ctr-pipeline registry promote {name} vN`)"
                )
            return {"event": "rollback", "from": current, "to": target, **fields}

        if not obj.read_index(store, keys, name)[STAGING] and self.current_version(name) is None:
            raise ModelNotFoundError(
                f"Model {name!r} not found under {self.base_dir}; check the name with "
                "`ctr-pipeline registry list`"
            )

        def mine(done: dict[str, Any]) -> bool:
            same = all(done.get(k) == fields[k] for k in ("by", "reason"))
            return done.get("event") == "rollback" and same

        record, previous = prod.move_current(store, keys, name, event, mine)
        assert record is not None  # event() never returns None
        return Promotion(
            name, record["to"], previous, self._url(PRODUCTION, name, record["to"]), True
        )

    def history(self, name: str) -> list[dict[str, Any]]:
        validate_name(name)
        store, keys = self._store, self._keys
        production = prod.production_events(store, keys, name)
        published = set(obj.numbers(obj.read_index(store, keys, name), STAGING))
        registered = [  # an event whose version never reached the index is not history yet
            obj.loads(store, o.key, store.get(o.key))
            for o in store.list_objects(keys.meta(name, "registered") + "/")
            if int(o.key.rsplit("/", 1)[-1]) in published
        ]
        if not production and not registered:
            raise ModelNotFoundError(
                f"Model {name!r} not found under {self.base_dir} (no history); check the "
                "name with `ctr-pipeline registry list`"
            )
        return _merge(production, registered)

    def verify(
        self, name: str, version: str, stage: str = STAGING, *, raise_on_error: bool = False
    ) -> VerifyReport:
        validate_name(name)
        problems, sizes = obj.verify_files(self._store, self._keys, name, version, stage)
        report = VerifyReport(
            name, version, stage, self._url(stage, name, version), tuple(problems), sizes
        )
        if problems and raise_on_error:
            raise IntegrityError(
                f"Model {name!r} version {version} under {self._store.show(stage)} failed "
                f"verification: {'; '.join(problems)}; promote the version again from "
                "staging, or re-register the run",
                problems,
            )
        return report

    def load(self, name: str, ref: str = CURRENT, stage: str | None = None) -> Any:
        """Download the version once, verify the local copies, build the predictor."""
        stage, version = self.resolve(name, ref, stage)
        from ml.serving.predictor import Predictor  # torch is imported only here

        with tempfile.TemporaryDirectory(prefix="ctr-load-") as tmp:
            where = Path(tmp)
            problems, _ = obj.verify_files(self._store, self._keys, name, version, stage, where)
            if problems:
                raise IntegrityError(
                    f"Model {name!r} version {version} under {self._store.show(stage)} failed "
                    f"verification: {'; '.join(problems)}; promote the version again from "
                    "staging, or re-register the run",
                    problems,
                )
            return Predictor.load(where / MODEL_FILE)

    def delete(
        self,
        name: str,
        version: str,
        stage: str = STAGING,
        *,
        force: bool = False,
        reason: str | None = None,
        by: str | None = None,
    ) -> Path:
        url = manage.delete(
            self._store,
            self._keys,
            name,
            version,
            stage,
            force=force,
            audit=Audit(reason, by),
        )
        return url  # type: ignore[return-value]  # the URL as text (see _url)

    def gc(
        self,
        min_age: float = DEFAULT_GC_MIN_AGE,
        *,
        dry_run: bool | None = None,
        keep_last: int | None = None,
    ) -> GcReport:
        keep_last = check_keep_last(keep_last)
        if dry_run is None:
            dry_run = keep_last is not None  # retention deletes for good: ask first
        report = manage.gc(self._store, self._keys, min_age=min_age, dry_run=dry_run)
        if keep_last is not None:
            retention.retain(self._store, self._keys, keep_last, report)
        return report


def _merge(
    production: list[dict[str, Any]], registered: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """Production events in their log order, register events placed by time."""
    registered = sorted(registered, key=lambda e: (str(e.get("at")), str(e.get("version"))))
    out: list[dict[str, Any]] = []
    i = 0
    for ev in production:
        while i < len(registered) and str(registered[i].get("at")) <= str(ev.get("at")):
            out.append(registered[i])
            i += 1
        out.append(ev)
    out.extend(registered[i:])
    return out


__all__ = ["ObjectStoreRegistry"]
