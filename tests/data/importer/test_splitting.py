from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from ml.data.importer import splitting
from ml.data.importer.csv_source import CsvSource
from ml.errors import DataImportError


def test_row_uniform_is_uniform_and_independent_of_blocks() -> None:
    whole = splitting.row_uniform(7, 0, 100_000)
    parts = np.concatenate([splitting.row_uniform(7, s, 1000) for s in range(0, 100_000, 1000)])
    np.testing.assert_array_equal(whole, parts)
    assert whole.min() >= 0 and whole.max() < 1 and abs(whole.mean() - 0.5) < 0.01
    assert not np.array_equal(whole[:100], splitting.row_uniform(8, 0, 100))


def test_ratio_assignment_follows_fractions() -> None:
    assign = splitting.ratio_assignment(1, 0, 200_000, (0.7, 0.2, 0.1))
    shares = np.bincount(assign, minlength=3) / len(assign)
    np.testing.assert_allclose(shares, [0.7, 0.2, 0.1], atol=0.005)


def test_time_sample_exact_when_small() -> None:
    sample = splitting.TimeSample(0)
    sample.add(np.arange(100, 0, -1))
    assert sample.cuts((0.8, 0.1, 0.1), "ts") == (81, 91)
    assign = splitting.time_assignment(np.arange(1, 101), (81, 91))
    assert np.bincount(assign).tolist() == [80, 10, 10]


def test_time_sample_bounded_and_close_when_large() -> None:
    sample = splitting.TimeSample(0, limit=5000)
    rng = np.random.default_rng(0)
    for _ in range(50):
        sample.add(rng.integers(0, 1_000_000, 10_000))
        assert len(sample.values) <= 2 * 5000 + 10_000
    c1, c2 = sample.cuts((0.8, 0.1, 0.1), "ts")
    assert abs(c1 - 800_000) < 20_000 and abs(c2 - 900_000) < 20_000


def test_time_ties_stay_together_and_too_few_values_is_error() -> None:
    sample = splitting.TimeSample(0)
    sample.add(np.array([1] * 50 + [2] * 30 + [3] * 20))
    c1, c2 = sample.cuts((0.5, 0.3, 0.2), "day")
    assign = splitting.time_assignment(np.array([1, 2, 3]), (c1, c2))
    assert assign.tolist() == [0, 1, 2]
    few = splitting.TimeSample(0)
    few.add(np.array([1] * 95 + [2] * 5))
    with pytest.raises(
        DataImportError,
        match=r"time column 'day' cannot be cut .*\['train', 'val'\] would get no rows",
    ):
        few.cuts((0.8, 0.1, 0.1), "day")


def test_time_values_of_timestamps_and_missing_time(tmp_path: Path) -> None:
    path = tmp_path / "a.csv"
    path.write_text("label,ts\n1,2024-01-01 10:00:00\n0,\n")
    src = CsvSource(path, "csv")
    ts = pa.array([0, None], pa.timestamp("s"))
    batch = pa.record_batch({"ts": ts})
    with pytest.raises(DataImportError, match=r"line 3, field 'ts': the time is empty"):
        splitting.time_values(batch, "ts", src, 0)
    ok = splitting.time_values(batch.slice(0, 1), "ts", src, 0)
    assert ok.dtype == np.int64 and ok.tolist() == [0]
    nan = pa.record_batch({"t": pa.array([1.0, float("nan")])})
    with pytest.raises(DataImportError, match="the time is empty"):
        splitting.time_values(nan, "t", src, 0)
