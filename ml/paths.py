"""One base directory for every path the project reads or writes.

A shell, an Airflow worker and a test run in different working directories, so no
path here is ever resolved against the current directory. The base directory is:

1. ``$CTR_PIPELINE_HOME`` when set;
2. otherwise the project checkout that holds this package (the directory with
   ``pyproject.toml`` above ``ml/``).

Relative paths (in the config, on the command line, in DAG params) resolve against
it; absolute paths are used as they are. A URL (``s3://bucket/prefix``) is never a
path: :func:`location` leaves it alone, and :func:`resolve`, which returns a local
path, refuses it instead of building a directory named ``s3:`` (see :mod:`ml.storage`).
"""

from __future__ import annotations

import os
from pathlib import Path

from ml.errors import BaseDirError

__all__ = ["base_dir", "location", "registry_root", "resolve"]

ENV_VAR = "CTR_PIPELINE_HOME"

#: Default locations under the base directory (the spec's layout).
FEATURES_DIR = "data/features/v1"
RUNS_DIR = "experiments/runs"
MODELS_DIR = "models"
DEFAULT_CONFIG = "config/model_config.yaml"
#: the registry root when none is given: a path or a URL (``s3://bucket/models``)
REGISTRY_ENV = "CTR_PIPELINE_REGISTRY"


def base_dir() -> Path:
    """Return the project's base directory (absolute), read from the environment each call."""
    env = os.environ.get(ENV_VAR)
    if env:
        path = Path(env).expanduser()
        if not path.is_absolute():
            raise BaseDirError(
                f"{ENV_VAR}={env!r} is relative; set it to an absolute path (e.g. {ENV_VAR}=$PWD)"
            )
        if not path.is_dir():
            raise BaseDirError(
                f"{ENV_VAR}={env!r} is not a directory; create it or point {ENV_VAR} at "
                "the project checkout"
            )
        return path
    checkout = Path(__file__).resolve().parent.parent
    if (checkout / "pyproject.toml").is_file():
        return checkout
    raise BaseDirError(
        f"cannot find the project base directory: set {ENV_VAR} to the directory that "
        "holds data/, experiments/ and models/"
    )


def registry_root() -> str:
    """``$CTR_PIPELINE_REGISTRY`` (a path or a URL such as ``s3://bucket/models``), else
    ``models`` (under the base directory): where every registry user looks by default."""
    return os.environ.get(REGISTRY_ENV, "").strip() or MODELS_DIR


def resolve(path: str | os.PathLike[str]) -> Path:
    """Resolve ``path`` against the base directory unless it is absolute.

    Raises:
        InvalidLocationError: ``path`` is a URL (this place takes a local path).
    """
    from ml.storage.url import is_url, redact_url

    if is_url(path):
        from ml.errors import InvalidLocationError

        raise InvalidLocationError(
            f"{redact_url(str(path))!r} is a URL, but a local path is needed here; URLs "
            "are accepted for the registry root (--base-dir, ModelRegistry(base_dir=...))"
        )
    p = Path(path).expanduser()
    return p if p.is_absolute() else base_dir() / p


def location(value: str | os.PathLike[str]) -> str | Path:
    """A URL unchanged (``s3://bucket/prefix``), or a local path resolved as :func:`resolve`."""
    from ml.storage.url import is_url

    if is_url(value):
        return str(value)
    return resolve(value)
