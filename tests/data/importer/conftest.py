"""Small source files in every format the importer reads."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest


@pytest.fixture
def clicks_csv(tmp_path: Path) -> Path:
    """600 rows: ts (epoch seconds), user (text), site (int), price (float), click."""
    rng = np.random.default_rng(0)
    path = tmp_path / "clicks.csv"
    lines = ["ts,user,site,price,click"]
    for i in range(600):
        lines.append(
            f"{1_700_000_000 + 10 * i},u{rng.integers(0, 40):03d},{rng.integers(0, 9)},"
            f"{rng.random() * 10:.2f},{int(rng.random() < 0.3)}"
        )
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture
def criteo_txt(tmp_path: Path) -> Path:
    """300 rows in Criteo's layout: label, 13 ints, 26 hex categories, tabs, empty = missing."""
    rng = np.random.default_rng(1)
    path = tmp_path / "day_0.txt"
    rows = []
    for _ in range(300):
        ints = [str(rng.integers(-1, 50)) if rng.random() > 0.2 else "" for _ in range(13)]
        cats = [f"{rng.integers(0, 30):08x}" if rng.random() > 0.1 else "" for _ in range(26)]
        rows.append("\t".join([str(int(rng.random() < 0.25)), *ints, *cats]))
    path.write_text("\n".join(rows) + "\n")
    return path


@pytest.fixture
def frappe_libfm(tmp_path: Path) -> Path:
    """400 libFM rows, labels -1/1, three one-hot fields in index ranges 0-99, 100-149, 150-159."""
    rng = np.random.default_rng(2)
    path = tmp_path / "frappe.libfm"
    rows = [
        f"{rng.choice(['-1', '1'])} {rng.integers(0, 100)}:1 {100 + rng.integers(0, 50)}:1 "
        f"{150 + rng.integers(0, 10)}:1"
        for _ in range(400)
    ]
    path.write_text("\n".join(rows) + "\n")
    return path


@pytest.fixture
def parquet_splits(tmp_path: Path) -> dict[str, Path]:
    """train/val/test parquet: a bool label, an int id, a dictionary string and a float."""
    rng = np.random.default_rng(3)
    out = {}
    for split, n in (("train", 300), ("val", 60), ("test", 60)):
        table = pa.table(
            {
                "clicked": pa.array(rng.random(n) < 0.3),
                "shop": pa.array(rng.integers(0, 20, n).astype(np.int32)),
                "color": pa.array(rng.choice(["red", "blue"], n)).dictionary_encode(),
                "x": pa.array(rng.random(n)),
            }
        )
        out[split] = tmp_path / f"{split}.parquet"
        pq.write_table(table, out[split])
    return out
