"""Comparisons of registered versions, computed once and kept on disk.

Scoring two versions and bootstrapping their AUC difference takes seconds to minutes;
the result depends only on the versions' files, the rows scored and the options. So it
is stored under ``<registry>/.cards/<name>/compare/<key>.json``, where the key is a
digest of each version's ``MANIFEST.json`` (which covers every file of the version),
the split file's resolved path, size and modification time, the split, the number of
resamples and the seed. A repeat of the same request reads the file; a changed version
or data file makes a new key, never a stale answer. The newest :data:`KEEP` results
per model are kept. The Models page and the promotion check use it.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ml import paths
from ml.cards.compare import compare_versions, default_features_dir, version_stages
from ml.cards.files import CACHE_DIR
from ml.cards.stats import DEFAULT_BOOTSTRAP
from ml.data.layout import split_path
from ml.fsutil import atomic_write_bytes
from ml.registry.layout import MANIFEST

#: Results kept per model (the oldest beyond it are removed on each write).
KEEP = 64
_FORMAT = 1


def cache_key(
    registry: Any,
    name: str,
    versions: Sequence[str],
    features_dir: str | os.PathLike[str],
    *,
    split: str,
    n_boot: int,
    seed: int,
) -> str:
    """The digest naming one comparison (see the module doc for what goes in)."""
    stages = version_stages(registry, name, versions)
    manifests = []
    for v in versions:
        manifest = Path(registry.path_of(name, v, stages[v])) / MANIFEST
        manifests.append([v, hashlib.sha256(manifest.read_bytes()).hexdigest()])
    data = split_path(paths.resolve(features_dir), split)
    try:
        st = data.stat()
        stamp = [str(data.resolve()), st.st_size, st.st_mtime_ns]
    except OSError:
        stamp = [str(data), None, None]  # scoring reports the missing file
    key = {
        "format": _FORMAT,
        "name": name,
        "versions": manifests,
        "data": stamp,
        "split": split,
        "n_boot": n_boot,
        "seed": seed,
    }
    return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:32]


def cache_dir(registry: Any, name: str) -> Path:
    return Path(registry.cache_dir(CACHE_DIR)) / name / "compare"


def cached_compare_versions(
    registry: Any,
    name: str,
    versions: Sequence[str],
    *,
    features_dir: str | os.PathLike[str] | None = None,
    split: str = "test",
    n_boot: int = DEFAULT_BOOTSTRAP,
    seed: int = 0,
) -> dict[str, Any]:
    """:func:`ml.cards.compare.compare_versions`, answered from the cache when it can be.

    The result carries ``"cached": True`` when it was read from the cache.

    Raises:
        As ``compare_versions``.
    """
    if features_dir is None:
        stages = version_stages(registry, name, versions)
        features_dir = default_features_dir(registry, name, versions, stages)
    key = cache_key(registry, name, versions, features_dir, split=split, n_boot=n_boot, seed=seed)
    where = cache_dir(registry, name) / f"{key}.json"
    try:
        result: dict[str, Any] = json.loads(where.read_text(encoding="utf-8"))
        return {**result, "cached": True}
    except (OSError, ValueError):
        pass
    result = compare_versions(
        registry, name, versions, features_dir=features_dir, split=split, n_boot=n_boot, seed=seed
    )
    try:
        where.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(where, json.dumps(result, sort_keys=True).encode())
        _trim(where.parent)
    except OSError:
        pass  # a read-only registry: the answer is still right, only not kept
    return {**result, "cached": False}


def _trim(folder: Path) -> None:
    """Keep the newest :data:`KEEP` results in ``folder``."""
    entries = []
    for path in folder.glob("*.json"):
        try:
            entries.append((path.stat().st_mtime_ns, path))
        except OSError:
            continue
    for _, path in sorted(entries, reverse=True)[KEEP:]:
        path.unlink(missing_ok=True)
