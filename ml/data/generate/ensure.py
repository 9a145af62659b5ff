"""Generate the default synthetic features when, and only when, they are missing.

The one "generate if missing" rule for every caller (``ctr-pipeline run``, ``make run``,
the feature DAG): synthetic data is generated only when the configured features directory
*is* the default one (``data/features/v1`` under the base directory) and it does not exist,
is empty, or holds an incomplete earlier generator output. Any other directory is the
user's: it is never generated into, replaced or deleted; when it is missing, training
fails later with a message naming it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ml.data import layout
from ml.data.generate.catalog import DEFAULT_WORLD
from ml.data.generate.writer import DEFAULT_ROWS, DEFAULT_SEED, describe, generate_features
from ml.fsutil import display_path
from ml.storage.url import is_url

GENERATED = "generated"
PRESENT = "present"
NOT_DEFAULT = "not_default"
USER_DATA = "user_data"


@dataclass(frozen=True)
class EnsureResult:
    """What :func:`ensure_default_features` did.

    ``action`` is ``generated`` (``report`` holds the generator's report), ``present``
    (complete data was there), ``not_default`` (the configured directory is not the
    default one: nothing is ever generated there) or ``user_data`` (the default directory
    holds files the generator did not write: left as they are).
    """

    features_dir: Path | str  # a URL (a bucket) is never the default directory
    action: str
    report: dict[str, Any] | None = None

    @property
    def generated(self) -> bool:
        return self.action == GENERATED

    def lines(self) -> list[str]:
        """What happened, for the log (the generator's summary when it ran)."""
        shown = display_path(self.features_dir)
        if self.report is not None:
            rows = sum(self.report["rows"].values())
            return [f"📦 No features at {shown}: generated {rows:,} rows", *describe(self.report)]
        if self.action == NOT_DEFAULT:
            gone = isinstance(self.features_dir, Path) and not self.features_dir.exists()
            what = " (it does not exist)" if gone else ""
            return [f"📦 Using the configured features in {shown}{what}; never generated"]
        if self.action == USER_DATA:
            return [
                f"📦 {shown} holds files the generator did not write; using them as they are "
                "(nothing generated, nothing replaced)"
            ]
        return [f"📦 Using the existing features in {shown}"]


def ensure_default_features(
    features_dir: str | os.PathLike[str] | None = None,
    rows: int = DEFAULT_ROWS,
    seed: int = DEFAULT_SEED,
    *,
    world: str = DEFAULT_WORLD,
) -> EnsureResult:
    """Generate ``rows`` synthetic rows into the default features directory if it is missing.

    Args:
        features_dir: the configured features directory (``cfg.data.features_dir``; None:
            the default). Relative paths resolve against the base directory.
        rows: rows to generate when it is missing.
        seed: row seed.
        world: the world to generate.

    Returns:
        An :class:`EnsureResult`; print its ``lines()``.

    Raises:
        GenerationError: bad ``rows``/``seed``/``world``, or the directory changed under us
            (the generator refuses to touch data it did not write).
    """
    if is_url(features_dir):
        return EnsureResult(str(features_dir), NOT_DEFAULT)
    root = layout.features_root(features_dir)
    if not layout.is_default_dir(root):
        return EnsureResult(root, NOT_DEFAULT)
    if root.is_dir() and not layout.missing_splits(root):
        return EnsureResult(root, PRESENT)
    ours = layout.writer_of(root) == layout.GENERATOR and not layout.foreign_entries(root)
    if root.is_dir() and any(root.iterdir()) and not ours:
        return EnsureResult(root, USER_DATA)
    report = generate_features(root, rows=rows, seed=seed, overwrite=True, world=world)
    return EnsureResult(root, GENERATED, report)
