"""Where the pipeline's features come from: generate the default synthetic set only.

The features directory is generated only when it IS the default synthetic location
(``data/features/v1`` under the base directory) and does not exist yet; a user's own
directory is never created, written or replaced here (validation then says what is
missing).
"""

from __future__ import annotations

import os

from ml import paths


def ensure_features(features_dir: str | os.PathLike[str], *, rows: int) -> list[str]:
    """Generate the default features when they are missing; returns lines to print."""
    from ml.data.generate import describe, generate_features

    target = paths.resolve(features_dir)
    if target != paths.resolve(paths.FEATURES_DIR) or target.exists():
        return []
    report = generate_features(target, rows=rows)
    return [f"📦 No features at {target}: generated {rows:,} synthetic rows", *describe(report)]
