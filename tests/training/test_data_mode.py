"""ml.training.data_mode and the ``data.streaming`` key: forced paths, and auto from the
data's size against the memory available, with the reason."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch

from ml.config import Config, config_from_dict
from ml.errors import ConfigError
from ml.training import data_mode

CPU = torch.device("cpu")
SPLITS = ("train", "val", "test")


@pytest.mark.parametrize(("value", "streaming"), [(True, True), ("false", False)])
def test_true_and_false_force_the_path(
    make_config: Any, features_dir: Path, tmp_path: Path, value: Any, streaming: bool
) -> None:
    cfg = make_config(features_dir, tmp_path, data={"streaming": value})
    mode = data_mode.choose(cfg, features_dir, SPLITS, CPU)
    assert mode.streaming is streaming and f"data.streaming: {str(value).lower()}" in mode.reason


def test_auto_streams_when_the_data_would_not_fit(
    cfg: Config, features_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    encoded, decode = data_mode.in_memory_need(cfg, features_dir, SPLITS)
    assert encoded > 3000 * 11 * 4 and decode > 0  # rows x (fields + 1) int32 at least
    monkeypatch.setattr(data_mode, "available_memory", lambda: 10**12)
    roomy = data_mode.choose(cfg, features_dir, SPLITS, CPU)
    assert not roomy.streaming and "1000.00 GB available" in roomy.reason
    monkeypatch.setattr(data_mode, "available_memory", lambda: encoded)
    tight = data_mode.choose(cfg, features_dir, SPLITS, CPU)
    assert tight.streaming and "in memory would need" in tight.reason
    assert data_mode.describe(tight).startswith("Data loading: streaming from a shard cache")


def test_available_memory_respects_a_cgroup_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(data_mode, "_cgroup_room", lambda: 12345)
    assert data_mode.available_memory() == 12345
    monkeypatch.setattr(data_mode, "_cgroup_room", lambda: None)
    assert data_mode.available_memory() > 12345


def test_the_config_key_takes_booleans_and_strings() -> None:
    def cfg(streaming: Any = None) -> Config:
        data = {} if streaming is None else {"streaming": streaming}
        return config_from_dict({"features": {"categorical": ["a"]}, "data": data})

    for raw, want in ((True, "true"), (False, "false"), ("auto", "auto"), ("TRUE", "true")):
        assert str(cfg(raw).data.streaming) == want
    assert cfg().to_dict()["data"]["streaming"] == "auto"
    assert cfg(True).to_dict()["data"]["streaming"] is True
    assert cfg(False).replace(seed=1).data.streaming == "false"  # survives the recorded form
    with pytest.raises(ConfigError, match=r"data\.streaming must be auto, true or false"):
        cfg("sometimes")


def test_auto_counts_a_train_split_per_process_on_the_machine(
    cfg: Config, features_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    one = data_mode.in_memory_need(cfg, features_dir, SPLITS)
    two = data_mode.in_memory_need(cfg, features_dir, SPLITS, copies=2)
    train = data_mode.in_memory_need(cfg, features_dir, ("train",))
    assert two[0] == one[0] + train[0]  # a second encoded train split
    assert two[1] == max(one[1], 2 * train[1])  # both processes decode train at once
    # room for one process's splits, not for two processes' train splits
    room = (sum(one) + sum(two)) / 2 / data_mode.HEADROOM
    monkeypatch.setattr(data_mode, "available_memory", lambda: int(room))
    assert not data_mode.choose(cfg, features_dir, SPLITS, CPU).streaming
    mode = data_mode.choose(cfg, features_dir, SPLITS, CPU, copies=2)
    assert mode.streaming and "(2 processes each holding train)" in mode.reason
