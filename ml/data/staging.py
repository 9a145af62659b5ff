"""Publish a features directory atomically: build it beside the target, then rename it.

:func:`staged_features_dir` gives the writer an empty temp directory
``.<name>.tmp-<pid>-<id>`` next to the target. When the writer finishes, every file and
directory in it is fsynced, the target is checked again (it may have changed while the
data was written) and the temp directory is renamed into place; an existing target (one
that :func:`ml.data.layout.check_target` allowed to be replaced) is first renamed aside and
deleted only after the new one is in place. On any failure the temp directory is removed
and the target is untouched, so a reader sees the old data, the new data or nothing, never
half of it. A temp directory left by a killed process is removed by the next run.

A bucket prefix (``s3://...``) has no rename: :func:`staged_remote_features_dir` stages
the files locally, then deletes the old ``schema.json`` (the writer's marker), uploads
the splits and writes ``schema.json`` last, so a prefix holding a marker holds a whole
import. A reader that validates during an upload sees the stamps (ETags) change and is
told to retry (:func:`ml.data.validate.validate_data`).
"""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ml.errors import DataError, StorageError, is_environment_oserror, storage_error
from ml.fsutil import fsync_dir, fsync_path


@contextmanager
def staged_features_dir(target: Path, check: Callable[[], None]) -> Iterator[Path]:
    """Yield a temp directory that becomes ``target`` when the ``with`` block succeeds.

    Args:
        target: the absolute output directory.
        check: raises when ``target`` may not be written; called before staging and again
            just before the rename.

    Raises:
        StorageError: disk full or an I/O error while writing (the temp dir is removed).
    """
    check()
    target.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temp_dirs(target)
    tmp = target.parent / f".{target.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    tmp.mkdir()
    try:
        yield tmp
        fsync_tree(tmp)
        check()
        _replace_dir(tmp, target)
    except OSError as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        if is_environment_oserror(exc) and not isinstance(exc, StorageError):
            raise storage_error(exc, "writing the features directory", target) from exc
        raise
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def fsync_tree(root: Path) -> None:
    """fsync every file and directory under ``root`` (directories after their entries)."""
    for dirpath, _dirs, files in os.walk(root, topdown=False):
        for name in files:
            fsync_path(Path(dirpath) / name)
        fsync_dir(dirpath)


def remove_stale_temp_dirs(target: Path) -> None:
    """Remove temp (and moved-aside) dirs left beside ``target`` by processes that died."""
    for stale in target.parent.glob(f".{target.name}.*-*-*"):
        kind, _, rest = stale.name[len(target.name) + 2 :].partition("-")
        if kind not in ("tmp", "old"):
            continue
        try:
            pid = int(rest.split("-", 1)[0])
        except ValueError:
            continue
        if pid == os.getpid():
            continue
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            shutil.rmtree(stale, ignore_errors=True)
        except PermissionError:
            pass


def _replace_dir(tmp: Path, target: Path) -> None:
    """Rename ``tmp`` to ``target``, moving an existing ``target`` aside first."""
    old: Path | None = None
    if target.exists():
        old = target.parent / f".{target.name}.old-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        target.rename(old)
    try:
        tmp.rename(target)
    except BaseException:
        if old is not None:
            old.rename(target)
        raise
    fsync_dir(target.parent)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


@contextmanager
def staged_remote_features_dir(target: str, check: Callable[[], None]) -> Iterator[Path]:
    """Yield a local temp directory whose files are uploaded to ``target`` (a URL) when
    the ``with`` block succeeds (``schema.json`` last); nothing is uploaded otherwise.

    Raises:
        StorageLayerError: the bucket is missing, access is denied, the endpoint is down.
    """
    from ml import paths
    from ml.data.layout import DATA_FILE, SCHEMA_FILE, SPLITS
    from ml.storage.files import store_and_key

    check()
    cache = paths.base_dir() / ".cache" / "staging"
    cache.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="features-", dir=cache) as tmp:
        yield Path(tmp)
        check()
        store, prefix = store_and_key(target)
        marker = f"{prefix}/{SCHEMA_FILE}"
        store.delete([marker])
        for split in SPLITS:
            local = Path(tmp) / split / DATA_FILE
            if local.is_file():
                store.upload_file(f"{prefix}/{split}/{DATA_FILE}", local)
        if (Path(tmp) / SCHEMA_FILE).is_file():
            store.upload_file(marker, Path(tmp) / SCHEMA_FILE)


def staged(
    target: Path | str,
    *,
    overwrite: bool,
    may_replace: tuple[str, ...],
    error: type[DataError],
    command: str,
) -> Any:
    """The staging context for ``target``: a local directory renamed into place, or a
    bucket prefix uploaded to, after :func:`ml.data.layout.check_target` (or its bucket
    form) allowed it."""
    import functools

    from ml.data import layout

    if isinstance(target, str):
        remote = functools.partial(
            layout.check_remote_target,
            target,
            overwrite=overwrite,
            may_replace=may_replace,
            error=error,
            command=command,
        )
        return staged_remote_features_dir(target, remote)
    local = functools.partial(
        layout.check_target,
        target,
        overwrite=overwrite,
        may_replace=may_replace,
        error=error,
        command=command,
    )
    return staged_features_dir(target, local)
