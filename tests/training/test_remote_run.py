"""Run directories in a bucket: uploaded checkpoint by checkpoint, resumed on another host."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from ml.data.generate.writer import generate_features
from ml.storage.files import store_and_key
from ml.training import run_dir as rd
from ml.training.job import train
from ml.training.remote_run import complete_run, origin_url, runs_for_key, working_copy

KEY = "0123456789"


class Killed(Exception):
    """Stands for the worker dying after an epoch."""


@pytest.mark.slow
def test_a_run_in_a_bucket_resumes_on_another_home_from_the_last_checkpoint(
    s3_env: str, make_config: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    homes = [tmp_path / "host_a", tmp_path / "host_b"]
    for home in homes:
        home.mkdir()
    monkeypatch.setenv("CTR_PIPELINE_HOME", str(homes[0]))
    features = f"{s3_env}/features"
    generate_features(features, rows=3000, seed=7)
    cfg = make_config(features, f"{s3_env}/runs", training={"epochs": 3, "patience": 5})

    def die_after_epoch_1(epoch: int, record: dict[str, Any]) -> None:
        if epoch == 1:
            raise Killed

    with pytest.raises(Killed):
        train(cfg, run_key=KEY, on_epoch_end=die_after_epoch_1, log=lambda _: None)
    [url] = runs_for_key(f"{s3_env}/runs", "ctr_model", KEY)
    store, prefix = store_and_key(url)
    names = {o.key.rsplit("/", 1)[-1] for o in store.list_objects(prefix + "/")}
    assert {rd.STARTED, rd.CONFIG_YAML, rd.MODEL_BEST, rd.CHECKPOINT_LAST} <= names
    assert rd.COMPLETE not in names

    shutil.rmtree(homes[0])  # nothing of host A survives: only the bucket
    monkeypatch.setenv("CTR_PIPELINE_HOME", str(homes[1]))
    lines: list[str] = []
    result = train(cfg, run_key=KEY, log=lines.append)
    assert result.url == url and result.resumed_from_epoch == 1
    assert result.metrics["epochs_run"] == 3
    assert any("from the checkpoint of epoch 1 in the bucket" in line for line in lines)
    names = {o.key.rsplit("/", 1)[-1] for o in store.list_objects(prefix + "/")}
    assert {rd.COMPLETE, rd.METRICS_JSON, rd.RUN_JSON} <= names
    assert rd.CHECKPOINT_LAST not in names  # the finished run keeps model_best.pt only

    monkeypatch.setenv("CTR_PIPELINE_HOME", str(tmp_path))  # a third host reads it
    local = complete_run(url)
    assert rd.is_complete(local) and rd.read_metrics(local)["epochs_run"] == 3
    assert train(cfg, run_key=KEY, log=lambda _: None).reused


def test_a_working_copy_is_known_by_its_runs_url(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CTR_PIPELINE_HOME", str(tmp_path))
    url = "s3://bucket/team/runs/ctr_model_20261207_120000"
    copy = working_copy(url)
    assert (
        copy
        == tmp_path / ".cache" / "runs" / "s3" / "bucket" / "team/runs/ctr_model_20261207_120000"
    )
    assert origin_url(copy) == url
    assert origin_url(tmp_path / "experiments" / "runs" / "ctr_model_x") is None
    assert origin_url(tmp_path / ".cache" / "runs" / "s3") is None  # not a run
