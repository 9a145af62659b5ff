from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pytest
import torch

from ml.config import FeatureSpec
from ml.data.preprocessing import OOV_ID, Preprocessor
from ml.errors import PreprocessingError

SPEC = FeatureSpec(label="click", categorical=("site", "user"), numeric=("price",))


def _train() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "site": ["a", "a", "b", "b", "b", "c"],  # c is rare (1 < min_frequency 2)
            "user": [10, 10, 10, 20, 20, 30],  # 30 is rare
            "price": [1.0, 2.0, 3.0, 4.0, 5.0, 6.0],
            "click": [0, 1, 0, 1, 0, 1],
        }
    )


def test_preprocessor_min_frequency_sends_rare_categories_to_oov() -> None:
    pre = Preprocessor.fit(_train(), SPEC, min_frequency=2)
    assert pre.vocab_sizes == [3, 3]  # {a, b} + OOV, {10, 20} + OOV
    cat, _ = pre.transform(_train())
    assert cat[:, 0].tolist() == [1, 1, 2, 2, 2, OOV_ID]
    assert cat[:, 1].tolist() == [1, 1, 1, 2, 2, OOV_ID]
    assert cat.dtype == np.int32


def test_preprocessor_min_frequency_one_keeps_every_category() -> None:
    pre = Preprocessor.fit(_train(), SPEC, min_frequency=1)
    assert pre.vocab_sizes == [4, 4]


def test_preprocessor_unseen_and_missing_categories_map_to_oov() -> None:
    pre = Preprocessor.fit(_train(), SPEC, min_frequency=2)
    rows = pd.DataFrame({"site": ["b", "zzz", None], "user": [20, 999, -5], "price": [1.0] * 3})
    cat, _ = pre.transform(rows)
    assert cat.tolist() == [[2, 2], [OOV_ID, OOV_ID], [OOV_ID, OOV_ID]]


def test_preprocessor_accepts_other_dtypes_for_the_same_values() -> None:
    pre = Preprocessor.fit(_train(), SPEC, min_frequency=2)
    rows = pd.DataFrame(
        {
            "site": pd.Categorical(["b", "a", "nope", None]),
            "user": ["20", "10", "x", None],  # ids arriving as text (e.g. from JSON)
            "price": [1.0] * 4,
        }
    )
    cat, _ = pre.transform(rows)
    assert cat.tolist() == [[2, 2], [1, 1], [OOV_ID, OOV_ID], [OOV_ID, OOV_ID]]


def test_preprocessor_standardizes_numerics_with_train_statistics() -> None:
    pre = Preprocessor.fit(_train(), SPEC)
    _, num = pre.transform(_train())
    assert num.dtype == np.float32
    assert num[:, 0].mean() == pytest.approx(0.0, abs=1e-6)
    assert num[:, 0].std() == pytest.approx(1.0, abs=1e-5)
    _, other = pre.transform(pd.DataFrame({"site": ["a"], "user": [10], "price": [3.5]}))
    assert other[0, 0] == pytest.approx(0.0, abs=1e-6)  # 3.5 is the train mean


def test_a_float64_value_is_binned_as_its_float32_training_copy() -> None:
    """Training reads numerics as float32 (ml.data.loading), the scoring service and batch
    scoring read parquet's float64: a value just below a bin edge in float64 that rounds
    to the edge in float32 falls in the same bin either way (no train/serve skew)."""
    rng = np.random.default_rng(0)
    train = pd.DataFrame(
        {
            "site": ["a"] * 200,
            "user": [10] * 200,
            "price": rng.lognormal(0.0, 1.0, 200).astype(np.float32),
            "click": [0, 1] * 100,
        }
    )
    pre = Preprocessor.fit(train, SPEC, numeric_bins=4)
    edge = pre.numerics[0].edges[1]
    below = np.nextafter(edge, -np.inf)  # float64 below the edge, float32 equal to it
    assert np.float32(below) == np.float32(edge) and below < edge
    rows = {"site": ["a"], "user": [10]}
    cat64, num64 = pre.transform(pd.DataFrame(rows | {"price": np.array([below])}))
    cat32, num32 = pre.transform(
        pd.DataFrame(rows | {"price": np.array([below], dtype=np.float32)})
    )
    np.testing.assert_array_equal(cat64, cat32)
    np.testing.assert_array_equal(num64, num32)


def test_preprocessor_imputes_nan_and_inf_with_train_mean() -> None:
    train = _train()
    train.loc[0, "price"] = np.nan
    train.loc[1, "price"] = np.inf
    pre = Preprocessor.fit(train, SPEC, numeric_nan="impute")
    mean = pre.state_dict()["numeric"][0]["mean"]
    assert mean == pytest.approx(np.mean([3.0, 4.0, 5.0, 6.0]))
    _, num = pre.transform(train)
    assert num[0, 0] == 0.0 and num[1, 0] == 0.0  # the mean standardizes to 0
    assert np.isfinite(num).all()


def test_preprocessor_error_policy_names_file_and_column() -> None:
    train = _train()
    train.loc[2, "price"] = np.nan
    with pytest.raises(
        PreprocessingError, match=r"train/data\.parquet: numeric column 'price' has 1 NaN"
    ):
        Preprocessor.fit(train, SPEC, numeric_nan="error", source="f/train/data.parquet")
    pre = Preprocessor.fit(_train(), SPEC, numeric_nan="error")
    with pytest.raises(PreprocessingError, match=r"'price'.*inf"):
        pre.transform(pd.DataFrame({"site": ["a"], "user": [1], "price": [np.inf]}), source="val")


def test_preprocessor_missing_column_is_named() -> None:
    pre = Preprocessor.fit(_train(), SPEC)
    with pytest.raises(PreprocessingError, match=r"missing feature column\(s\) \['price'\]"):
        pre.transform(pd.DataFrame({"site": ["a"], "user": [1]}))


def test_preprocessor_text_in_numeric_column_is_an_error() -> None:
    pre = Preprocessor.fit(_train(), SPEC)
    with pytest.raises(PreprocessingError, match=r"'price' holds non-numeric value.*'cheap'"):
        pre.transform(pd.DataFrame({"site": ["a"], "user": [1], "price": ["cheap"]}))


def test_preprocessor_vocabulary_does_not_depend_on_row_order() -> None:
    df = _train()
    shuffled = df.sample(frac=1.0, random_state=1).reset_index(drop=True)
    a = Preprocessor.fit(df, SPEC).state_dict()
    b = Preprocessor.fit(shuffled, SPEC).state_dict()
    assert a["categorical"] == b["categorical"]


def test_preprocessor_state_round_trips_through_weights_only_load() -> None:
    pre = Preprocessor.fit(_train(), SPEC, min_frequency=2)
    buf = io.BytesIO()
    torch.save({"preprocessor": pre.state_dict()}, buf)
    buf.seek(0)
    state = torch.load(buf, weights_only=True)["preprocessor"]
    again = Preprocessor.from_state(state)
    rows = pd.DataFrame({"site": ["a", "q"], "user": [20, 31], "price": [2.0, np.nan]})
    for x, y in zip(pre.transform(rows), again.transform(rows), strict=True):
        np.testing.assert_array_equal(x, y)


def test_preprocessor_bad_state_is_an_error() -> None:
    with pytest.raises(PreprocessingError, match="malformed"):
        Preprocessor.from_state({"format_version": 1})
    with pytest.raises(PreprocessingError, match="format_version 99"):
        Preprocessor.from_state({"format_version": 99})


def test_numerics_are_clipped_scaled_and_binned_for_heavy_tails() -> None:
    from ml.config import FeatureSpec
    from ml.data.preprocessing import Preprocessor

    rng = np.random.default_rng(0)
    followers = rng.pareto(1.1, 20_000) * 100  # a heavy tail, like real follower counts
    df = pd.DataFrame({"y": rng.integers(0, 2, 20_000), "followers": followers})
    spec = FeatureSpec("y", (), ("followers",))
    pre = Preprocessor.fit(df, spec, numeric_bins=8)
    # 8 bins: 7 edges, ids 1..8, plus 0 for missing.
    assert pre.field_names == ["followers#bin"] and pre.vocab_sizes == [9]
    probe = pd.DataFrame({"followers": [0.0, float(np.median(followers)), 1e12, np.nan]})
    cat, num = pre.transform(probe)
    assert cat[:, 0].tolist()[3] == 0  # missing: its own bin
    assert 1 <= cat[0, 0] < cat[1, 0] < cat[2, 0] == 8  # monotone bins, extremes in the last
    assert abs(num[2, 0]) < 50  # 1e12 is clipped at the train 99.9% quantile, not 1e9 sigmas
    again = Preprocessor.from_state(pre.state_dict())
    np.testing.assert_array_equal(again.transform(probe)[0], cat)


def test_version_1_states_still_load_without_bins() -> None:
    from ml.data.preprocessing import Preprocessor

    state = {
        "format_version": 1,
        "features": {"label": "y", "categorical": [], "numeric": ["x"]},
        "min_frequency": 2,
        "numeric_nan": "impute",
        "categorical": [],
        "numeric": [{"name": "x", "mean": 1.0, "std": 2.0}],
    }
    pre = Preprocessor.from_state(state)
    cat, num = pre.transform(pd.DataFrame({"x": [3.0]}))
    assert cat.shape == (1, 0) and num[0, 0] == 1.0
