"""Serving and batch scoring from a registry in a bucket (real S3 server, testkit/s3.py):
the watcher follows ``current`` and the canary by conditional GETs of the pointer object,
``predict`` and ``data drift`` read and write URLs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from ml import storage
from ml.cli import main
from ml.registry.model_registry import ModelRegistry
from ml.serving.service.canary import CanaryFollower
from ml.serving.service.models import CurrentWatcher
from testkit.s3_faults import fault_at
from testkit.serving import NAME


@pytest.fixture
def bucket_registry(
    registry_template: Path, s3_env: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> str:
    """The template's three versions registered again in a bucket (v1 promoted)."""
    (tmp_path / "home").mkdir()
    monkeypatch.setenv("CTR_PIPELINE_HOME", str(tmp_path / "home"))
    local = ModelRegistry(registry_template)
    url = f"{s3_env}/models"
    reg = ModelRegistry(url)
    for version in local.list_versions(NAME):
        meta = local.show(NAME, version)["metadata"]
        extra = {"data_profile.json": local.path_of(NAME, version) / "data_profile.json"}
        reg.register(meta["source"]["run_dir"], NAME, extra_files=extra)
    reg.promote_to_production(NAME, "v1")
    return url


def test_the_watcher_follows_current_with_one_conditional_get_per_check(
    bucket_registry: str,
) -> None:
    watcher = CurrentWatcher(ModelRegistry(bucket_registry), NAME)
    assert watcher.model.version == "v1"
    with fault_at(None) as calls:
        assert [watcher.poll() for _ in range(3)] == [False, False, False]
    assert calls == ["get_if_changed"] * 3  # 304s: no body, no other request
    ModelRegistry(bucket_registry).promote_to_production(NAME, "v2")  # another host
    assert watcher.poll() and watcher.model.version == "v2"
    ModelRegistry(bucket_registry).rollback(NAME)
    assert watcher.poll() and watcher.model.version == "v1"
    assert watcher.last_error is None


def test_the_canary_follower_reads_the_canary_in_the_pointer(bucket_registry: str) -> None:
    follower = CanaryFollower(ModelRegistry(bucket_registry), NAME)
    assert follower.poll() is False and follower.active is None
    admin = ModelRegistry(bucket_registry)
    admin.set_canary(NAME, "v3", 0.2, by="ops", reason="try v3")
    assert follower.poll() and follower.active is not None
    assert (follower.active.model.version, follower.active.traffic) == ("v3", 0.2)
    admin.set_canary(NAME, "v3", 0.5)
    assert follower.poll() and follower.active.traffic == 0.5
    admin.clear_canary(NAME)
    assert follower.poll() and follower.active is None


def test_serve_check_names_the_bucket_for_the_canary(
    bucket_registry: str, capsys: pytest.CaptureFixture[str]
) -> None:
    ModelRegistry(bucket_registry).set_canary(NAME, "v2", 0.1)
    assert main(["serve", "--registry", bucket_registry, "--check"]) == 0
    out = capsys.readouterr().out
    assert "control: ctr_model v1 (production" in out
    assert f"canary: follows the canary in {bucket_registry}/production/ctr_model/current" in out
    assert "now v2 at 10%" in out


def test_predict_reads_the_model_input_and_writes_output_at_urls(
    bucket_registry: str, s3_env: str, tiny_features_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = storage.open_store(s3_env)
    for split in ("val", "test"):
        store.upload_file(f"in/{split}.parquet", tiny_features_dir / split / "data.parquet")
    out_url = f"{s3_env}/out/scores.parquet"
    argv = ["predict", "--registry", bucket_registry, "--model", f"{NAME}/v2"]
    assert main([*argv, "--input", f"{s3_env}/in", "--output", out_url, "--json"]) == 0
    assert f'"output": "{out_url}"' in capsys.readouterr().out
    raw = store.get("out/scores.parquet")
    out = pq.read_table(pa_buffer(raw)).to_pandas()
    assert sorted(set(out["source"])) == ["test.parquet", "val.parquet"]
    test = out[out["source"] == "test.parquet"]
    df = pq.read_table(tiny_features_dir / "test" / "data.parquet").to_pandas()
    expected = ModelRegistry(bucket_registry).load(NAME, "v2").predict_proba(df)
    np.testing.assert_allclose(test["probability"], expected, rtol=1e-6)
    assert [o.key for o in store.list_objects("out/")] == ["out/scores.parquet"]


def test_predict_errors_at_urls_are_user_errors_naming_the_url(
    bucket_registry: str, s3_env: str, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["predict", "--registry", bucket_registry, "--model", NAME]
    assert main([*argv, "--input", f"{s3_env}/nothing/x.parquet", "--output", "o.csv"]) == 2
    assert f"downloading {s3_env}/nothing/x.parquet: not found" in capsys.readouterr().err
    assert main([*argv, "--input", f"{s3_env}/nothing/", "--output", "o.csv"]) == 2
    assert "holds no .parquet or .csv object" in capsys.readouterr().err
    gone = "s3://no-such-bucket-ctr/in/x.parquet"
    assert main([*argv, "--input", gone, "--output", "o.csv"]) == 2
    err = capsys.readouterr().err
    assert "downloading s3://no-such-bucket-ctr/in/x.parquet: the bucket does not exist" in err


def test_predict_with_the_endpoint_down_is_retryable(
    bucket_registry: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from testkit.s3 import _free_ports

    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{_free_ports(1)[0]}")
    argv = ["predict", "--registry", bucket_registry, "--model", NAME]
    assert main([*argv, "--input", "in.csv", "--output", "o.csv"]) == 3
    err = capsys.readouterr().err
    assert bucket_registry in err and "check that the endpoint is up" in err


def test_data_drift_reads_features_and_the_profile_from_buckets(
    bucket_registry: str, s3_env: str, tiny_features_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = storage.open_store(s3_env)
    store.upload_file("features/train/data.parquet", tiny_features_dir / "train" / "data.parquet")
    argv = ["data", "drift", "--registry", bucket_registry, "--reference", f"{NAME}/v1"]
    assert main([*argv, "--features-dir", f"{s3_env}/features", "--json"]) == 0
    report = capsys.readouterr().out
    assert '"reference": "ctr_model v1 (production)"' in report
    assert '"drifted": true' not in report
    assert main([*argv, "--features-dir", f"{s3_env}/nope"]) == 2
    assert f"{s3_env}/nope/train" in capsys.readouterr().err


def pa_buffer(raw: bytes) -> object:
    import pyarrow as pa

    return pa.BufferReader(raw)
