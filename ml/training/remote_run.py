"""Training run directories in a bucket: a local working copy, uploaded as it is written.

A run directory at a URL (``output.runs_dir: s3://bucket/runs``) holds the files of
:mod:`ml.training.run_dir` as objects. Training works in a local copy
(:func:`working_copy`: ``$CTR_PIPELINE_HOME/.cache/runs/<bucket>/<key>``) and
:class:`RemoteRun` uploads each checkpoint as the trainer writes it (``model_best.pt``
before ``checkpoint_last.pt``, so the resume state never names a best epoch the bucket
lacks), then ``metrics.json``, ``run.json`` and ``COMPLETE`` last. A task retried on
another host (another base directory, no shared disk) finds the run by its key in the
bucket, downloads it (:meth:`RemoteRun.pull`) and resumes from the last uploaded epoch;
evaluation and registration download the complete run the same way. The bucket is the
only truth: a pull replaces the local copy whole.
"""

from __future__ import annotations

import json
import shutil
from datetime import datetime
from pathlib import Path
from typing import Any

from ml import paths
from ml.errors import ConditionFailedError, TrainingError
from ml.fsutil import utc_now
from ml.storage.files import store_and_key
from ml.storage.url import ObjectUrl, is_url, redact_url
from ml.training import run_dir as rd

CACHE_DIR = ".cache/runs"


def is_remote(location: object) -> bool:
    return is_url(location)


def working_copy(url: str) -> Path:
    """The local copy of the run at ``url`` under this host's base directory."""
    parsed = ObjectUrl.parse(url)
    return paths.base_dir() / CACHE_DIR / parsed.scheme / parsed.bucket / parsed.prefix


def origin_url(path: str | Path) -> str | None:
    """The URL of the run whose working copy ``path`` is (the inverse of
    :func:`working_copy`), or None for a directory that is not one: a run's identity is
    its place in the bucket, not the cache path, which differs from host to host."""
    from ml.errors import BaseDirError

    try:
        cache = (paths.base_dir() / CACHE_DIR).resolve()
    except BaseDirError:
        return None
    try:
        rel = Path(path).resolve().relative_to(cache)
    except ValueError:
        return None
    if len(rel.parts) < 3:
        return None
    scheme, bucket, *key = rel.parts
    return ObjectUrl(scheme, bucket, "/".join(key)).url()


def runs_for_key(runs_url: str, experiment_name: str, key: str) -> list[str]:
    """The run URLs of one pipeline run under ``runs_url``, oldest first."""
    store, prefix = store_and_key(runs_url)
    names = store.list_dirs(prefix + "/" if prefix else "")
    base = runs_url.rstrip("/")
    return [f"{base}/{n}" for n in rd.key_runs(names, experiment_name, key)]


def new_run(runs_url: str, experiment_name: str, *, key: str | None, when: datetime | None) -> str:
    """Claim a fresh run name under ``runs_url`` (``STARTED`` created with If-None-Match)."""
    store, prefix = store_and_key(runs_url)
    existing = (
        [u.rsplit("/", 1)[-1] for u in runs_for_key(runs_url, experiment_name, key)] if key else []
    )
    for name in rd.candidate_names(existing, experiment_name, key, when):
        try:
            store.put_if_absent(_key(prefix, name, rd.STARTED), (utc_now() + "\n").encode())
        except ConditionFailedError:
            continue
        return f"{runs_url.rstrip('/')}/{name}"
    raise TrainingError(f"could not claim a unique run name under {redact_url(runs_url)}")


def _key(prefix: str, *parts: str) -> str:
    return "/".join(p for p in (prefix, *parts) if p)


class RemoteRun:
    """One run directory in a bucket and its local working copy."""

    def __init__(self, url: str) -> None:
        self.url = url.rstrip("/")
        self.store, self.prefix = store_and_key(self.url)
        self.local = working_copy(self.url)
        self._pushed: dict[str, int] = {}

    def __str__(self) -> str:
        return redact_url(self.url)

    def exists(self, name: str) -> bool:
        return self.store.head(_key(self.prefix, name)) is not None

    def is_complete(self) -> bool:
        return self.exists(rd.COMPLETE)

    def read_json(self, name: str) -> dict[str, Any]:
        """A JSON object of the run (``run.json``, ``metrics.json``)."""
        raw = self.store.get(_key(self.prefix, name))
        try:
            value = json.loads(raw)
        except ValueError as exc:
            raise TrainingError(f"{self}/{name} is not valid JSON ({exc}); rerun training") from exc
        if not isinstance(value, dict):
            raise TrainingError(f"{self}/{name} does not hold a JSON object; rerun training")
        return value

    def push(self, *names: str) -> None:
        """Upload the named local files that changed since this object last pushed them."""
        for name in names:
            path = self.local / name
            if not path.is_file():
                continue
            stamp = path.stat().st_mtime_ns
            if self._pushed.get(name) == stamp:
                continue
            self.store.upload_file(_key(self.prefix, name), path)
            self._pushed[name] = stamp

    def remove(self, *names: str) -> None:
        self.store.delete([_key(self.prefix, n) for n in names])

    def pull(self, names: tuple[str, ...] | None = None) -> Path:
        """Replace the local copy with the run's objects (only ``names`` when given);
        ``COMPLETE`` comes down last. Returns the local copy."""
        objects = self.store.list_objects(self.prefix + "/")
        rels = [o.key[len(self.prefix) :].lstrip("/") for o in objects]
        wanted = [r for r in rels if "/" not in r and (names is None or r in names)]
        wanted.sort(key=lambda r: r == rd.COMPLETE)
        shutil.rmtree(self.local, ignore_errors=True)
        self.local.mkdir(parents=True, exist_ok=True)
        for rel in wanted:
            self.store.download_file(_key(self.prefix, rel), self.local / rel)
            self._pushed[rel] = (self.local / rel).stat().st_mtime_ns
        return self.local

    def start_fresh(self) -> Path:
        """An empty local copy for a run that starts now."""
        shutil.rmtree(self.local, ignore_errors=True)
        self.local.mkdir(parents=True, exist_ok=True)
        return self.local

    def push_checkpoint(self) -> None:
        """After an epoch: the best model first, then the resume state that names it."""
        self.push(rd.CONFIG_YAML, rd.MODEL_BEST, rd.CHECKPOINT_LAST)

    def push_complete(self) -> None:
        """The finished run: every file, ``COMPLETE`` last; the resume state removed."""
        others = sorted(
            p.name
            for p in self.local.iterdir()
            if p.is_file() and p.name not in (rd.COMPLETE, rd.CHECKPOINT_LAST)
        )
        self.push(*others)
        self.push(rd.COMPLETE)
        self.remove(rd.CHECKPOINT_LAST)


def complete_run(url: str) -> Path:
    """The local copy of the complete run at ``url`` (downloaded now).

    Raises:
        TrainingError: the run is not complete (no ``COMPLETE`` object).
    """
    run = RemoteRun(url)
    if not run.is_complete():
        raise TrainingError(
            f"training run {run} is not complete (no {rd.COMPLETE} object); clear train_model "
            "to finish it"
        )
    return run.pull()
