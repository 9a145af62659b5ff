"""``ModelRegistry``: the project's system of record for trained models (the spec's class).

A facade over modules with one job each; read them for how things work:

- :mod:`.layout`: the on-disk layout (every file and directory name), name validation;
- :mod:`.catalog`: reading (list, latest, current, resolve, show, find_version);
- :mod:`.publish`: registering a run as a new version (and the ``extra_files`` hook);
- :mod:`.production`: promotion to production, the ``current`` link, rollback;
- :mod:`.canary`: the canary setting beside ``current`` (a share of traffic);
- :mod:`.journal`: the history journal and the intent of the operation in flight;
- :mod:`.recovery`: the crash-safety protocol every change follows;
- :mod:`.integrity`: verify and load; :mod:`.cleanup`: delete, gc, retention;
- :mod:`.index`: the per-model index; :mod:`.provenance`: lineage and code version.

Every error is a :class:`~ml.errors.RegistryError` (see :mod:`ml.errors`); an OS
error becomes one that names the path and the cause. See docs/registry.md.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from ml import paths
from ml.errors import InvalidNameError, ModelNotFoundError
from ml.registry import (
    canary,
    catalog,
    cleanup,
    integrity,
    journal,
    production,
    publish,
    recovery,
)
from ml.registry.cleanup import DEFAULT_GC_MIN_AGE, GcReport
from ml.registry.integrity import VerifyReport
from ml.registry.journal import Audit
from ml.registry.layout import CURRENT, STAGES, STAGING, Layout, validate_name, validate_stage
from ml.registry.oserrors import os_errors
from ml.registry.production import Promotion
from ml.registry.publish import ExtraFiles, RegisteredVersion
from ml.storage.url import is_url

__all__ = ["ModelRegistry"]


class ModelRegistry:
    """Versioned, verifiable, crash-safe and multi-process-safe model storage.

    Args:
        base_dir: registry root; a relative path resolves against the project base
            directory (``ml.paths.resolve``), never the working directory; a URL
            (``s3://bucket/models``) gives the object-store registry. Default:
            ``$CTR_PIPELINE_REGISTRY``, else ``models``. The root
            itself may be a symbolic link; nothing below it is ever followed.
        lock_timeout: seconds to wait for another process holding a model's lock
            before raising :class:`~ml.errors.RegistryLockTimeoutError`.
        file_mode: permission bits of registered files; None keeps each run file's own
            (a private ``0600`` checkpoint stays private).
    """

    def __new__(cls, base_dir: str | os.PathLike[str] | None = None, **_: Any) -> Any:
        """A URL (``s3://bucket/models``) gives the object-store registry (same API)."""
        if cls is ModelRegistry and is_url(paths.registry_root() if base_dir is None else base_dir):
            from ml.registry.objectstore_api import ObjectStoreRegistry

            return super().__new__(ObjectStoreRegistry)
        return super().__new__(cls)

    def __init__(
        self,
        base_dir: str | os.PathLike[str] | None = None,
        *,
        lock_timeout: float = 60.0,
        file_mode: int | None = None,
    ) -> None:
        self._layout = Layout(paths.registry_root() if base_dir is None else base_dir)
        self.base_dir: Path | str = self._layout.base_dir
        self.lock_timeout = float(lock_timeout)
        self.file_mode = file_mode

    def __repr__(self) -> str:
        return f"ModelRegistry({str(self.base_dir)!r})"

    # --- reading ----------------------------------------------------------------------

    def list_models(self, stage: str = STAGING) -> dict[str, list[str]]:
        """Every model in ``stage`` with its visible versions, in numeric order.

        Returns:
            ``{'ctr_model': ['v1', 'v2', 'v3']}``; models without a visible version
            are left out. A ``vN`` directory without ``MANIFEST.json`` is not visible.
        """
        with os_errors("listing models", self.base_dir):
            return catalog.list_models(self._layout, stage)

    def list_versions(self, name: str, stage: str = STAGING) -> list[str]:
        """Visible versions of ``name`` in ``stage`` (empty when there are none)."""
        with os_errors(f"listing model {name!r}", self.base_dir):
            return [f"v{n}" for n in catalog.visible_numbers(self._layout, stage, name)]

    def get_latest_version(self, name: str, stage: str = STAGING) -> str:
        """The highest visible version of ``name`` in ``stage``, e.g. ``'v3'``.

        Raises:
            ModelNotFoundError: the model has no visible version in ``stage``.
        """
        with os_errors(f"listing model {name!r}", self.base_dir):
            return catalog.latest_version(self._layout, name, stage)

    def current_version(self, name: str) -> str | None:
        """The version ``production/<name>/current`` points at, or None if there is none."""
        with os_errors(f"reading {name!r}'s current version", self.base_dir):
            return catalog.current_version(self._layout, name)

    def resolve(self, name: str, ref: str = "latest", stage: str | None = None) -> tuple[str, str]:
        """Turn ``ref`` (``'current'``, ``'latest'`` or ``'vN'``) into ``(stage, version)``.

        ``stage`` defaults to production for ``'current'`` and staging otherwise.
        """
        with os_errors(f"resolving {name!r} {ref!r}", self.base_dir):
            return catalog.resolve(self._layout, name, ref, stage)

    def path_of(self, name: str, version: str, stage: str = STAGING) -> Path:
        """Directory of a visible version (raises when it does not exist)."""
        with os_errors(f"looking up {name!r} {version}", self.base_dir):
            return self._layout.require_version(validate_stage(stage), name, version)

    def show(self, name: str, ref: str = "latest", stage: str | None = None) -> dict[str, Any]:
        """Everything known about one version: metadata, files, stage and whether current."""
        with os_errors(f"reading {name!r} {ref!r}", self.base_dir):
            return catalog.show(self._layout, name, ref, stage)

    def versions(self, name: str, *, last: int | None = None) -> list[dict[str, Any]]:
        """One record per visible version, oldest first: ``version``, ``stages``,
        ``current``, ``created_at``, ``test_auc``, ``test_logloss``, ``dag_id``, ``run_id``,
        ``run_dir`` (from the per-model index). ``last`` keeps the newest ``last``."""
        with os_errors(f"listing model {name!r}", self.base_dir):
            return catalog.version_records(self._layout, name, last=last)

    def find_version(
        self, name: str, *, data_digest: str, config_digest: str, code_digest: str
    ) -> str | None:
        """The newest visible version trained on the same data, config and code, or None.

        Compares ``data_fingerprint.digest``, ``config_digest`` and
        ``code_version.source_digest`` of each version's ``metadata.json`` (found through
        the per-model index, so it stays fast with many versions).
        """
        with os_errors(f"searching model {name!r}", self.base_dir):
            return catalog.find_version(
                self._layout,
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
        """Register a complete training run as the next staging version of ``name``.

        Copies ``model_best.pt`` (as ``model.pt``, after checking it loads with
        ``torch.load(weights_only=True)`` and has the checkpoint keys), ``config.yaml``
        and ``metrics.json``, adds ``extra_files``, writes ``metadata.json`` (lineage) and
        ``MANIFEST.json`` (sha256 of every file), and publishes the version atomically.
        Registering the same run again (same resolved run directory, or the same URL
        for a run in a bucket, even from another host's working copy of it, and same
        model digest) returns the existing version with ``created=False`` unless
        ``force``; a retry after a crash never creates a second version.

        Args:
            run_dir: training run directory (relative → against the base directory),
                or the URL of a run in a bucket (``s3://bucket/runs/<run>``: downloaded
                into this host's working copy first).
            name: model name.
            dag_id: Airflow DAG id for the lineage (default: the run's ``run.json``).
            run_id: Airflow run id for the lineage (default: the run's ``run.json``).
            force: register a new version even if this run is already registered.
            created_by: who registers; defaults to ``user@host``.
            extra_files: more files for the version (a model card, a data profile):
                ``{plain file name: bytes | path}``, or a callable given the new
                version (``'v7'``) that returns one, called under the model's lock once
                the number is known (keep it quick). Covered by the manifest, so
                ``verify``, ``promote_to_production`` and ``load`` check them.

        Returns:
            The :class:`RegisteredVersion`.

        Raises:
            InvalidRunError: the run directory is missing, not COMPLETE, unreadable, or
                its model is not a loadable checkpoint.
            ExtraFileError: an extra file's name is not plain or is the registry's own.
            InvalidNameError: ``name`` is malformed.
            LockTimeoutError: another writer held the model's lock too long.
            RegistryStorageError: disk full or an I/O error (a retry is safe).
        """
        with os_errors(f"registering {run_dir} as {name!r}", self.base_dir):
            return publish.register(
                self._layout,
                run_dir,
                name,
                lock_timeout=self.lock_timeout,
                dag_id=dag_id,
                run_id=run_id,
                force=force,
                created_by=created_by,
                extra_files=extra_files,
                file_mode=self.file_mode,
            )

    def promote_to_production(
        self, name: str, version: str, reason: str | None = None, *, by: str | None = None
    ) -> Promotion:
        """Copy staging ``version`` to production (verified) and point ``current`` at it.

        Promoting the version that is already current changes nothing (``changed=False``).

        Raises:
            VersionNotFoundError / ModelNotFoundError: no such staging version.
            IntegrityError: the staging version fails verification.
            AlreadyExistsError: production holds a different ``version`` directory.
        """
        with os_errors(f"promoting {name!r} {version}", self.base_dir):
            return production.promote(
                self._layout, name, version, lock_timeout=self.lock_timeout, audit=Audit(reason, by)
            )

    def rollback(self, name: str, reason: str | None = None, *, by: str | None = None) -> Promotion:
        """Point ``current`` back at the production version it pointed at before.

        The previous version comes from the history: promotions push, rollbacks pop, and
        versions deleted from production since are skipped.

        Raises:
            NoPreviousVersionError: nothing to roll back to.
        """
        with os_errors(f"rolling back {name!r}", self.base_dir):
            return production.rollback(
                self._layout, name, lock_timeout=self.lock_timeout, audit=Audit(reason, by)
            )

    def set_canary(
        self,
        name: str,
        version: str,
        traffic: float,
        *,
        by: str | None = None,
        reason: str | None = None,
    ) -> dict[str, Any] | None:
        """Send ``traffic`` (0 < t < 1) of running services' users to ``version``.

        Raises:
            NotFoundError: no such version. VersionInUseError: it is ``current``.
            ServingError: ``traffic`` is not strictly between 0 and 1.
        """
        with os_errors(f"setting the canary of {name!r}", self.base_dir):
            return production.set_canary(
                self._layout, name, version, traffic,
                lock_timeout=self.lock_timeout, audit=Audit(reason, by),
            )  # fmt: skip

    def clear_canary(self, name: str, *, by: str | None = None, reason: str | None = None) -> None:
        """Turn the canary off (every user goes to ``current``); a no-op when it is off."""
        with os_errors(f"clearing the canary of {name!r}", self.base_dir):
            production.set_canary(
                self._layout,
                name,
                None,
                0.0,
                lock_timeout=self.lock_timeout,
                audit=Audit(reason, by),
            )

    def get_canary(self, name: str) -> dict[str, Any] | None:
        """The canary (``version``, ``traffic``, ``since``, ``by``, ``reason``) or None."""
        validate_name(name)
        with os_errors(f"reading the canary of {name!r}", self.base_dir):
            return canary.read(self._layout, name)

    def rollback_target(self, name: str) -> str | None:
        """The version ``rollback`` would go back to now, or None (nothing to go back to)."""
        validate_name(name)
        with os_errors(f"reading {name!r}'s production history", self.base_dir):
            current = catalog.current_version(self._layout, name)
            return production.rollback_target(self._layout, name, current) if current else None

    def cache_dir(self, what: str) -> Path:
        """A local directory for files derived from versions (rendered cards): ``what``
        under the registry root here, under ``$CTR_PIPELINE_HOME/.cache`` for a bucket."""
        return self._layout.base_dir / what

    def history(self, name: str) -> list[dict[str, Any]]:
        """All recorded events for ``name``, oldest first.

        Each event has ``at`` (UTC), ``event`` (register, promote, rollback, delete),
        ``by``, ``op`` and event fields (``version``; ``from``/``to``; ``reason``). An
        operation whose writer died is completed first, so the history agrees with
        what ``list_models`` shows.

        Raises:
            ModelNotFoundError: the registry has never seen ``name``.
        """
        validate_name(name)
        layout = self._layout
        with os_errors(f"reading the history of {name!r}", self.base_dir):
            recovery.recover_if_pending(layout, name, self.lock_timeout)
            events = journal.read(layout, name)
            if not events and not any(os.path.isdir(layout.model_dir(s, name)) for s in STAGES):
                raise ModelNotFoundError(
                    f"Model {name!r} not found under {layout.display(self.base_dir)} (no "
                    "history, no staging or production directory); check the name with "
                    "`ctr-pipeline registry list`"
                )
            return events

    def verify(
        self, name: str, version: str, stage: str = STAGING, *, raise_on_error: bool = False
    ) -> VerifyReport:
        """Recompute every file's sha256 and compare with ``MANIFEST.json``.

        Returns:
            A :class:`VerifyReport`; ``report.problems`` names each missing, changed,
            linked or unlisted file.

        Raises:
            VersionNotFoundError: no such version directory.
            IntegrityError: with ``raise_on_error`` when a problem was found.
        """
        with os_errors(f"verifying {name!r} {version}", self.base_dir):
            return integrity.verify(
                self._layout, name, version, stage, raise_on_error=raise_on_error
            )

    def load(self, name: str, ref: str = CURRENT, stage: str | None = None) -> Any:
        """A predictor ready to score, for ``ref`` = ``'current'``, ``'latest'`` or ``'vN'``.

        The version is verified against its manifest first; then
        ``ml.serving.predictor.Predictor.load(<version>/model.pt)`` builds the predictor.

        Raises:
            NotFoundError: unknown model/version, or no current version.
            IntegrityError: a file differs from the manifest.
        """
        with os_errors(f"loading {name!r} {ref!r}", self.base_dir):
            return integrity.load(self._layout, name, ref, stage)

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
        """Soft-delete a version: move it to ``<stage>/<name>/.archive/``.

        It disappears from listing, ``latest`` and ``load``; its number is never handed
        out again. Deleting the version production's ``current`` points at is refused
        unless ``force`` (then ``current`` is removed too).

        Returns:
            Where the version was archived.

        Raises:
            VersionInUseError: it is production's current version and ``force`` is False.
        """
        with os_errors(f"deleting {name!r} {version}", self.base_dir):
            return cleanup.delete(
                self._layout,
                name,
                version,
                stage,
                lock_timeout=self.lock_timeout,
                force=force,
                audit=Audit(reason, by),
            )

    def gc(
        self,
        min_age: float = DEFAULT_GC_MIN_AGE,
        *,
        dry_run: bool | None = None,
        keep_last: int | None = None,
    ) -> GcReport:
        """Clean up what crashed writers (or hands) left, and apply retention.

        Temporary directories whose writer is dead (nobody holds their writer lock),
        stray links and bookkeeping temp files are removed; a ``vN`` entry without a
        manifest is moved to ``.archive/``. Only entries older than ``min_age`` seconds
        are touched. With ``keep_last``, versions beyond the newest ``keep_last`` of each
        stage are purged for good, except production's ``current``, its rollback target
        and anything younger than a day; so are archived versions older than a day.

        Args:
            dry_run: report without changing anything. Default: True with ``keep_last``
                (retention deletes for good), else False.
        """
        keep_last = check_keep_last(keep_last)
        if dry_run is None:
            dry_run = keep_last is not None
        with os_errors("cleaning the registry", self.base_dir):
            return cleanup.gc(
                self._layout,
                lock_timeout=self.lock_timeout,
                min_age=min_age,
                dry_run=dry_run,
                keep_last=keep_last,
            )


def check_keep_last(keep_last: Any) -> int | None:
    """``keep_last`` when it is None or a whole number >= 0, else :class:`InvalidNameError`."""
    if keep_last is not None and (
        isinstance(keep_last, bool) or not isinstance(keep_last, int) or keep_last < 0
    ):
        raise InvalidNameError(f"keep_last must be a whole number >= 0, got {keep_last!r}")
    return keep_last
