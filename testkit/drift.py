"""Drift test support: a shifted copy of a features directory, versions with profiles."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from ml.data.layout import SPLITS, split_path
from ml.monitoring.profile import PROFILE_FILE, profile_bytes
from ml.registry.model_registry import ModelRegistry
from testkit.registry import make_run_dir


def shifted_copy(
    src: Path,
    dst: Path,
    *,
    price_scale: float = 2.5,
    device: str = "ctv",
    device_share: float = 0.5,
    seed: int = 0,
) -> Path:
    """Copy ``src`` to ``dst`` with ``item_price`` scaled and ``device_share`` of the rows'
    ``device_type`` set to ``device`` (a rare device becomes common); the other columns and
    the schema stay as they were."""
    shutil.copytree(src, dst)
    rng = np.random.default_rng(seed)
    for split in SPLITS:
        path = split_path(dst, split)
        table = pq.read_table(path)
        df = table.to_pandas()
        df["item_price"] = df["item_price"] * price_scale
        df.loc[rng.random(len(df)) < device_share, "device_type"] = device
        pq.write_table(pa.Table.from_pandas(df, schema=table.schema, preserve_index=False), path)
    return dst


def register_with_profile(
    registry: ModelRegistry, run: Path, profile: dict[str, Any] | None, *, promote: bool = True
) -> str:
    """Register a fake run (with the profile, if any) and optionally promote it."""
    make_run_dir(run, run.name.encode() * 10)
    extra = {PROFILE_FILE: profile_bytes(profile)} if profile is not None else None
    version = registry.register(run, "ctr_model", extra_files=extra).version
    if promote:
        registry.promote_to_production("ctr_model", version)
    return version
