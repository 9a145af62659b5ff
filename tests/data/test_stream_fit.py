"""ml.data.stream_fit: the one-pass fit equals the in-memory fit while the sample holds
every value, and stays close beyond."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from ml.config import FeatureSpec
from ml.data.loading import load_split
from ml.data.preprocessing import Preprocessor
from ml.data.stream_fit import fit_streaming
from ml.errors import PreprocessingError


def test_streaming_fit_equals_the_in_memory_fit(
    mixed_features: Path, mixed_spec: FeatureSpec
) -> None:
    kw = {"min_frequency": 3, "numeric_nan": "impute", "numeric_bins": 8}
    whole = Preprocessor.fit(load_split(mixed_features, "train", mixed_spec), mixed_spec, **kw)
    streamed, rows = fit_streaming(mixed_features, mixed_spec, batch_rows=128, **kw)
    assert rows == 2000
    assert streamed.state_dict() == whole.state_dict()
    assert [f.kind for f in streamed.fields] == ["str", "int", "int"]  # item: whole floats


def test_hashed_fields_fit_streamed_as_in_memory_without_a_vocabulary(
    mixed_features: Path, mixed_spec: FeatureSpec
) -> None:
    import dataclasses

    spec = dataclasses.replace(mixed_spec, hash_buckets={"user": 97, "shop": 13})
    whole = Preprocessor.fit(load_split(mixed_features, "train", spec), spec, min_frequency=3)
    streamed, _ = fit_streaming(mixed_features, spec, batch_rows=128, min_frequency=3)
    assert streamed.state_dict() == whole.state_dict()
    assert [(f.vocab, f.buckets) for f in streamed.fields[:2]] == [((), 13), ((), 97)]


def test_min_frequency_is_applied_to_the_merged_counts(
    mixed_features: Path, mixed_spec: FeatureSpec
) -> None:
    # 2,000 rows over 60 users: every user is frequent overall, none in one 128-row slice
    pre, _ = fit_streaming(mixed_features, mixed_spec, min_frequency=20, batch_rows=128)
    assert len(pre.fields[1].vocab) > 40


def test_a_sample_smaller_than_the_data_gives_close_quantiles(
    mixed_features: Path, mixed_spec: FeatureSpec
) -> None:
    kw = {"min_frequency": 2, "numeric_bins": 4}
    whole = Preprocessor.fit(load_split(mixed_features, "train", mixed_spec), mixed_spec, **kw)
    sampled, _ = fit_streaming(mixed_features, mixed_spec, sample_size=500, batch_rows=100, **kw)
    assert [f.vocab for f in sampled.fields] == [f.vocab for f in whole.fields]  # exact
    for a, b in zip(sampled.numerics, whole.numerics, strict=True):
        assert a.edges != () and len(a.edges) == len(b.edges)
        assert abs(a.mean - b.mean) < 0.3 * b.std
        x = load_split(mixed_features, "train", mixed_spec)[a.name].to_numpy(np.float64)
        x = x[np.isfinite(x)]
        for edge, q in zip(a.edges, (0.25, 0.5, 0.75), strict=False):
            assert abs(np.mean(x <= edge) - q) < 0.08  # rank error of a 500-value sample
    again, _ = fit_streaming(mixed_features, mixed_spec, sample_size=500, batch_rows=100, **kw)
    assert again.state_dict() == sampled.state_dict()  # seeded


def test_nan_under_the_error_policy_names_the_row_group(
    mixed_features: Path, mixed_spec: FeatureSpec
) -> None:
    with pytest.raises(PreprocessingError, match=r"row group \d+ of 7: numeric column 'price'"):
        fit_streaming(mixed_features, mixed_spec, numeric_nan="error")
