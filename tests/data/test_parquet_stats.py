from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from ml.data import parquet_stats as ps


@pytest.fixture(params=[True, False], ids=["stats", "no-stats"])
def pf(request: pytest.FixtureRequest, tmp_path: Path) -> pq.ParquetFile:
    table = pa.table(
        {
            "y": pa.array([0, 1, None, 1, 1], pa.int64()),
            "x": pa.array([1.0, float("nan"), float("inf"), None, -float("inf")]),
            "n": pa.array([1, 2, 3, 4, 5]),
            "empty": pa.array([None] * 5, pa.int64()),
        }
    )
    path = tmp_path / "t.parquet"
    pq.write_table(table, path, row_group_size=2, write_statistics=request.param)
    return pq.ParquetFile(path)


def test_null_count(pf: pq.ParquetFile) -> None:
    assert ps.null_count(pf, "y", 0) == 1
    assert ps.null_count(pf, "x", 1) == 1
    assert ps.null_count(pf, "empty", 3) == 5


def test_int_min_max(pf: pq.ParquetFile) -> None:
    assert ps.int_min_max(pf, "y", 0) == (0, 1)
    assert ps.int_min_max(pf, "n", 2) == (1, 5)
    assert ps.int_min_max(pf, "empty", 3) == (None, None)


def test_count_positives(pf: pq.ParquetFile) -> None:
    assert ps.count_positives(pf, "y") == 3


def test_nonfinite(pf: pq.ParquetFile) -> None:
    assert ps.nonfinite(pf, "x", pa.float64()) == (1, 2)
    assert ps.nonfinite(pf, "n", pa.int64()) == (0, 0)
