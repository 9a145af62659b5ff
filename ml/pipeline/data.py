"""Where the pipeline's features come from: generate the default synthetic set only.

A thin front for :func:`ml.data.generate.ensure_default_features`, the one "generate if
missing" rule: only the default synthetic location (``data/features/v1``) is ever
generated, and only when it is missing; a user's own directory is never created, written
or replaced (validation then says what is missing).
"""

from __future__ import annotations

import os


def ensure_features(features_dir: str | os.PathLike[str], *, rows: int) -> list[str]:
    """Generate the default features when they are missing; returns lines to print."""
    from ml.data.generate import ensure_default_features

    return ensure_default_features(features_dir, rows=rows).lines()
