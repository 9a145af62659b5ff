"""Where a version came from: who, which run, which data, config and code, which libraries.

:func:`build_metadata` writes a version's ``metadata.json``. The code's identity
(:func:`ml.provenance.code_version`, recorded by the trainer in ``run.json``) is copied
from the run, so "nothing changed since vN" compares code as well as data and config.
"""

from __future__ import annotations

import functools
import getpass
import hashlib
import json
import os
import platform
import socket
from typing import Any

from ml import paths
from ml.errors import BaseDirError
from ml.provenance import git_commit
from ml.registry.layout import FORMAT_VERSION

#: keys of run.json copied into metadata["training"]
_TRAINING_KEYS = (
    "config_digest",
    "seed",
    "started_at",
    "finished_at",
    "device",
    "hostname",
    "torch_version",
)


def default_user() -> str:
    """``user@host`` of this process (what ``created_by`` and history ``by`` default to)."""
    try:
        user = getpass.getuser()
    except Exception:  # no passwd entry in some containers
        user = f"uid{os.getuid()}"
    return f"{user}@{socket.gethostname()}"


@functools.lru_cache(maxsize=1)
def library_versions() -> dict[str, str | None]:
    """Versions of the libraries a model depends on, without importing them."""
    from importlib import metadata

    out: dict[str, str | None] = {"python": platform.python_version()}
    for dist in ("torch", "numpy", "pandas"):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            out[dist] = None
    return out


def canonical_digest(obj: Any) -> str:
    """sha256 of ``obj`` as canonical JSON (sorted keys, no spaces): ``Config.digest()``."""
    blob = json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(blob.encode()).hexdigest()


def project_commit() -> str | None:
    """The commit checked out in the project base directory, or None."""
    try:
        return git_commit(paths.base_dir())
    except BaseDirError:
        return None


def source_key(run_dir: str, model_sha256: str) -> str:
    """What identifies "the same run" for idempotent registration."""
    return hashlib.sha256(f"{run_dir}\0{model_sha256}".encode()).hexdigest()


def build_metadata(
    *,
    name: str,
    created_by: str,
    run_dir: str,
    model_sha256: str,
    dag_id: str | None,
    run_id: str | None,
    run_info: dict[str, Any],
    metrics: dict[str, Any],
    config: dict[str, Any],
    config_sha256: str,
) -> dict[str, Any]:
    """``metadata.json`` of a new version, without ``version`` and ``created_at``.

    ``config_digest`` is ``run.json``'s when the run recorded one (it is the digest the
    trainer computed), else the canonical digest of ``config.yaml``; ``code_version`` is
    ``run.json``'s (the code that trained) plus ``git_commit`` of the project checkout.
    """
    recorded_code = run_info.get("code_version")
    code: dict[str, Any] = {"package": None, "source_digest": None}
    if isinstance(recorded_code, dict):
        code.update({k: recorded_code.get(k) for k in ("package", "source_digest")})
    code["git_commit"] = project_commit()
    config_digest = run_info.get("config_digest")
    if not isinstance(config_digest, str) or not config_digest:
        config_digest = canonical_digest(config)
    return {
        "format_version": FORMAT_VERSION,
        "name": name,
        "created_by": created_by,
        "source": {
            "run_dir": run_dir,
            "model_sha256": model_sha256,
            "dag_id": dag_id if dag_id is not None else run_info.get("dag_id"),
            "run_id": run_id if run_id is not None else run_info.get("run_id"),
        },
        "data_fingerprint": run_info.get("data_fingerprint"),
        "features_dir": run_info.get("features_dir"),
        "config_digest": config_digest,
        "config_sha256": config_sha256,
        "code_version": code,
        "libraries": library_versions(),
        "metrics": {k: v for k, v in metrics.items() if k != "history"},
        "training": {k: run_info.get(k) for k in _TRAINING_KEYS},
    }


def lineage_digests(metadata: dict[str, Any]) -> tuple[Any, Any, Any]:
    """``(data digest, config digest, code source digest)`` recorded in ``metadata``."""
    data = metadata.get("data_fingerprint")
    code = metadata.get("code_version")
    return (
        data.get("digest") if isinstance(data, dict) else None,
        metadata.get("config_digest"),
        code.get("source_digest") if isinstance(code, dict) else None,
    )
