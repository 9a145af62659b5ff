"""ml.monitoring.profile: a compact, bounded profile of the training split."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from ml.data.generate.world_default import DEFAULT_SPEC
from ml.errors import DataError
from ml.monitoring.profile import (
    PROFILE_FILE,
    profile_categorical,
    profile_extra_files,
    profile_numeric,
)


def test_profile_holds_top_values_other_missing_and_numeric_bins(tiny_profile: dict) -> None:
    assert tiny_profile["source"]["rows"] == 2100 and tiny_profile["source"]["split"] == "train"
    device = tiny_profile["categorical"]["device_type"]
    assert device["top"][0] == ["mobile", pytest.approx(1199 / 2100)]
    assert device["other"] == pytest.approx(0.0) and device["distinct"] == 4
    users = tiny_profile["categorical"]["user_id"]
    assert len(users["top"]) == 20 and isinstance(users["top"][0][0], int)
    assert users["other"] > 0.2 and users["distinct"] > 100  # a long tail beyond the top 20
    price = tiny_profile["numeric"]["item_price"]
    assert len(price["cuts"]) == 9 and len(price["shares"]) == 10
    assert sum(price["shares"]) + price["missing"] == pytest.approx(1.0)
    assert price["quantiles"]["0"] <= price["quantiles"]["0.5"] <= price["quantiles"]["1"]
    assert len(json.dumps(tiny_profile)) < 16_000  # compact whatever the data size


def test_profile_counts_missing_values_apart() -> None:
    cat = profile_categorical(pd.Series(["a", "a", None, "b"]), top_k=1)
    assert cat["top"] == [["a", 0.5]] and cat["other"] == 0.25 and cat["missing"] == 0.25
    num = profile_numeric(pd.Series([1.0, 2.0, float("nan"), float("inf")]), bins=2)
    assert num["missing"] == 0.5 and num["cuts"] == [1.5]
    assert num["shares"] == [0.25, 0.25]
    with pytest.raises(DataError, match="non-numeric"):
        profile_numeric(pd.Series(["x", "1"], name="item_price"))


def test_profile_extra_files_reads_the_runs_data(tmp_path: Path, tiny_features_dir: Path) -> None:
    from testkit.airflow import small_config
    from testkit.registry import make_run_dir

    run = make_run_dir(tmp_path / "run", b"model")
    (run / "config.yaml").write_text(small_config())
    (run / "run.json").write_text(json.dumps({"features_dir": str(tiny_features_dir)}))
    files = profile_extra_files(run)
    profile = json.loads(files[PROFILE_FILE])
    assert set(profile["categorical"]) == set(DEFAULT_SPEC.categorical)
    (run / "run.json").write_text(json.dumps({"features_dir": str(tmp_path / "gone")}))
    assert profile_extra_files(run) == {}  # registered without a profile, not a failure
