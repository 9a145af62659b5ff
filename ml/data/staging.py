"""Publish a features directory atomically: build it beside the target, then rename it.

:func:`staged_features_dir` gives the writer an empty temp directory
``.<name>.tmp-<pid>-<id>`` next to the target. When the writer finishes, every file and
directory in it is fsynced, the target is checked again (it may have changed while the
data was written) and the temp directory is renamed into place; an existing target (one
that :func:`ml.data.layout.check_target` allowed to be replaced) is first renamed aside and
deleted only after the new one is in place. On any failure the temp directory is removed
and the target is untouched, so a reader sees the old data, the new data or nothing, never
half of it. A temp directory left by a killed process is removed by the next run.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from ml.errors import StorageError, is_environment_oserror, storage_error
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
