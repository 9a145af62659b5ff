"""Reading a training run directory for registration, as untrusted input.

The run's file names come from :mod:`ml.training.run_dir`. The run directory itself may
be reached through a link (``runs/latest``); the files in it may not: a linked
``model_best.pt`` would copy whatever it points at (a private key, ``/etc/passwd``) into
the registry. Each failure says which file and which of missing, a link, unreadable, not
UTF-8 or not valid JSON/YAML it was.

A run in a bucket (``s3://bucket/runs/<run>``, :mod:`ml.training.remote_run`) is
downloaded into this host's working copy and read there; its identity (``location``: what
the registry records as the version's source and recognises a retried registration by)
is its URL, the same on every host, not the local copy's path.
"""

from __future__ import annotations

import errno
import json
import os
import stat
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import yaml

from ml import errors as ml_errors
from ml import paths
from ml.errors import InvalidRunError
from ml.registry import _fs
from ml.registry.layout import RUN_ARTIFACTS
from ml.registry.oserrors import translate_oserror
from ml.training.run_dir import COMPLETE, CONFIG_YAML, METRICS_JSON, RUN_JSON


@dataclass(frozen=True)
class RunSource:
    """A complete run directory, read: ``path`` is its resolved (real) local directory,
    ``location`` what identifies the run: its URL when it lives in a bucket, else
    ``path``."""

    path: Path
    run_info: dict[str, Any]
    metrics: dict[str, Any]
    config: dict[str, Any]
    location: str = ""

    def __post_init__(self) -> None:
        if not self.location:
            object.__setattr__(self, "location", str(self.path))


def read_run(run_dir: str | os.PathLike[str]) -> RunSource:
    """Check that ``run_dir`` (a path, or the URL of a run in a bucket) is complete and
    read its small files.

    Raises:
        InvalidRunError: missing, not COMPLETE, a file missing, empty, a link, unreadable
            or malformed.
        RegistryStorageError: an I/O error while reading.
        StorageLayerError: the bucket of a run URL cannot be read (named in the message).
    """
    from ml.storage.url import ObjectUrl, is_url
    from ml.training import remote_run

    if is_url(run_dir):
        url = ObjectUrl.parse(str(run_dir)).url()  # one spelling: the run's identity
        try:
            local = remote_run.complete_run(url)
        except ml_errors.TrainingError as exc:
            raise InvalidRunError(str(exc)) from exc
        return replace(_read_local(local), location=url)
    source = _read_local(run_dir)
    origin = remote_run.origin_url(source.path)
    return replace(source, location=origin) if origin else source


def _read_local(run_dir: str | os.PathLike[str]) -> RunSource:
    given = paths.resolve(run_dir)
    run = Path(os.path.realpath(given))
    if not _fs.is_real_dir(run):
        raise InvalidRunError(
            f"run directory {given} does not exist or is not a directory; pass the run "
            "directory that training printed (experiments/runs/<experiment>_<timestamp>)"
        )
    if not _fs.is_regular(run / COMPLETE):
        raise InvalidRunError(
            f"run directory {given} is not complete (no {COMPLETE} marker): training is "
            "still running or did not finish; wait for it or rerun training, then register"
        )
    for src in RUN_ARTIFACTS:
        _check_file(run, src)
    return RunSource(
        path=run,
        run_info=read_mapping(run / RUN_JSON, "JSON") if _exists(run / RUN_JSON) else {},
        metrics=read_mapping(run / METRICS_JSON, "JSON"),
        config=read_mapping(run / CONFIG_YAML, "YAML"),
    )


def _exists(path: Path) -> bool:
    return os.path.lexists(path)


def _check_file(run: Path, name: str) -> None:
    path = run / name
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        raise InvalidRunError(
            f"run directory {run} is marked complete but has no {name}; rerun training "
            "into a fresh run directory"
        ) from None
    if stat.S_ISLNK(st.st_mode):
        raise InvalidRunError(
            f"{path} is a symbolic link; the registry copies only regular files from a run "
            "(a link could expose any file it points at). Copy the real file into the run"
        )
    if not stat.S_ISREG(st.st_mode):
        raise InvalidRunError(f"{path} is not a regular file; rerun training")
    if st.st_size == 0:
        raise InvalidRunError(f"{path} is empty; rerun training")


def read_mapping(path: Path, kind: str) -> dict[str, Any]:
    """A JSON or YAML mapping from a run file, never following a link."""
    try:
        raw = _fs.read_regular(path)
    except OSError as exc:
        if ml_errors.is_environment_oserror(exc):
            raise translate_oserror(exc, "reading the run directory", path) from exc
        why = "is a symbolic link" if exc.errno == errno.ELOOP else "cannot be read"
        raise InvalidRunError(
            f"{path} {why} ({ml_errors.describe_oserror(exc)}); fix its permissions or "
            "rerun training"
        ) from exc
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidRunError(f"{path} is not UTF-8 text ({exc.reason}); rerun training") from exc
    try:
        data = json.loads(text) if kind == "JSON" else yaml.safe_load(text)
    except (ValueError, yaml.YAMLError) as exc:
        raise InvalidRunError(
            f"{path} is not valid {kind} ({exc}); rerun training to rewrite it"
        ) from exc
    if not isinstance(data, dict):
        raise InvalidRunError(
            f"{path} must hold a {kind} mapping, got {type(data).__name__}; rerun training"
        )
    return data


def check_checkpoint(copy: Path, source: Path) -> None:
    """Refuse a model file that is not a checkpoint this code can load.

    ``copy`` (the registry's copy, the bytes that will be published) goes through the
    shared loader (``torch.load(weights_only=True)``, the checkpoint keys and format
    version), so arbitrary bytes or a pickle that would run code never reach the
    registry. The tensors are memory-mapped, not read: checking a 100 MB checkpoint
    costs milliseconds, not a second pass over the file. Messages name ``source``.
    """
    from ml.training.checkpoint import load_checkpoint

    try:
        load_checkpoint(copy, mmap=True)
    except ml_errors.CheckpointError as exc:
        reason = str(exc).replace(str(copy), "it")
        raise InvalidRunError(
            f"{source} is not a model checkpoint this code can load ({reason}); register "
            "the run directory of a finished training"
        ) from exc
