"""``ctr-pipeline predict``, ``serve --check`` and ``serve report`` through ml.cli.main."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ml.cli import main
from ml.registry.model_registry import ModelRegistry
from testkit.serving import NAME, write_ab_logs


def test_predict_scores_with_a_named_version(
    registry_dir: Path, tiny_features_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src = tiny_features_dir / "test" / "data.parquet"
    out = tmp_path / "scores.parquet"
    args = ["predict", "--registry", str(registry_dir), "--input", str(src), "--output", str(out)]
    assert main([*args, "--model", f"{NAME}/v3", "--id-column", "item_id", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["version"] == "v3" and summary["stage"] == "staging" and summary["rows"] == 450
    scores = pd.read_parquet(out)
    df = pd.read_parquet(src)
    want = ModelRegistry(registry_dir).load(NAME, "v3").predict_proba(df)
    assert scores["item_id"].tolist() == df["item_id"].tolist()
    np.testing.assert_allclose(scores["probability"], want, rtol=1e-6)
    assert main([*args, "--model", NAME]) == 0  # production's current (v1)
    assert "Scoring with ctr_model v1 (production) (verified)" in capsys.readouterr().out


def test_predict_errors_exit_2(
    registry_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["predict", "--registry", str(registry_dir), "--output", str(tmp_path / "o.csv")]
    assert main([*args, "--model", f"{NAME}/v9", "--input", str(tmp_path)]) == 2
    assert "version v9 not found" in capsys.readouterr().err
    assert main([*args, "--model", f"{NAME}/", "--input", str(tmp_path)]) == 2
    assert "is not NAME or NAME/VERSION" in capsys.readouterr().err
    assert main([*args, "--model", NAME, "--input", str(tmp_path)]) == 2
    assert "holds no .parquet or .csv file" in capsys.readouterr().err


def test_serve_check_prints_what_would_be_served(
    registry_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ab = tmp_path / "ab.yaml"
    ab.write_text("candidate: v2\ntraffic: 0.1\nshadow: v3\n")
    assert main(["serve", "--registry", str(registry_dir), "--ab", str(ab), "--check"]) == 0
    out = capsys.readouterr().out
    assert "control: ctr_model v1 (production, follows production/current)" in out
    assert "candidate: ctr_model v2 (staging, 10.0% of keys by user_id)" in out
    assert "shadow: ctr_model v3 (staging, scored and logged, never returned)" in out
    bad = ["serve", "--registry", str(registry_dir), "--candidate", "v7", "--traffic", "0.1"]
    assert main([*bad, "--check"]) == 2
    assert "version v7 not found" in capsys.readouterr().err
    assert main(["serve", "--registry", str(registry_dir), "--traffic", "0.1", "--check"]) == 2
    assert "--traffic needs --candidate" in capsys.readouterr().err
    empty = tmp_path / "empty_models"
    assert main(["serve", "--registry", str(empty), "--check"]) == 2
    assert "has no current production version" in capsys.readouterr().err


def test_serve_check_names_the_canary_and_bad_log_features_exit_2(
    registry_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["serve", "--registry", str(registry_dir), "--check"]
    assert main(args) == 0
    assert "canary: follows production/ctr_model/canary.json (none now)" in capsys.readouterr().out
    ModelRegistry(registry_dir).set_canary(NAME, "v3", 0.2)
    assert main([*args, "--log-features", "0.01"]) == 0
    assert "(now v3 at 20%)" in capsys.readouterr().out
    assert main([*args, "--no-canary"]) == 0
    assert "canary:" not in capsys.readouterr().out
    assert main([*args, "--log-features", "2"]) == 2
    assert "--log-features must be in [0, 1], got 2.0" in capsys.readouterr().err


def test_serve_report_prints_the_verdict(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_ab_logs(tmp_path / "logs", n=4000, candidate_noise=0.2)
    assert main(["serve", "report", "--log-dir", str(tmp_path / "logs")]) == 0
    out = capsys.readouterr().out
    assert "control" in out and "candidate" in out and "BETTER on auc" in out
    assert main(["serve", "report", "--log-dir", str(tmp_path / "logs"), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["comparison"]["verdict"] == "better"
    assert (
        main(["serve", "report", "--log-dir", str(tmp_path / "logs"), "--metric", "logloss"]) == 0
    )
    assert "log loss" in capsys.readouterr().out


def test_serve_refuses_a_non_loopback_bind_without_auth(
    registry_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["serve", "--registry", str(registry_dir), "--host", "0.0.0.0", "--check"]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "--host 0.0.0.0 is not a loopback address" in err and "no token is configured" in err
    assert "ctr-pipeline serve token create --scopes predict,feedback" in err
    assert main([*args, "--auth", "off"]) == 2
    assert "refusing to serve on 0.0.0.0 without authentication" in capsys.readouterr().err
    tokens = tmp_path / "tokens.txt"
    tokens.write_text("some-token-0123456789abcdef predict\n")
    tokens.chmod(0o644)
    assert main([*args, "--token-file", str(tokens)]) == 2
    assert "chmod 600" in capsys.readouterr().err
    tokens.chmod(0o600)
    assert main([*args, "--token-file", str(tokens)]) == 0
    assert f"auth: required (bearer tokens from --token-file {tokens}" in capsys.readouterr().out
    loopback = ["serve", "--registry", str(registry_dir), "--check"]
    assert main(loopback) == 0
    assert "auth: off (loopback bind" in capsys.readouterr().out


def test_serve_token_create_prints_the_token_once_and_stores_its_digest(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from ml.serving.service.auth import TokenStore

    path = tmp_path / "tokens.txt"
    args = ["serve", "token", "create", "--scopes", "predict,feedback", "--token-file", str(path)]
    assert main([*args, "--comment", "frontend"]) == 0
    out = capsys.readouterr().out
    token = out.split("token (shown once, keep it secret): ")[1].split()[0]
    assert token not in path.read_text() and path.stat().st_mode & 0o777 == 0o600
    assert TokenStore(path, None).lookup(token) == {"predict", "feedback"}
    assert main(["serve", "token", "create", "--scopes", "metrics"]) == 0
    assert "add this line to the token file (chmod 600):\nsha256:" in capsys.readouterr().out
    assert main(["serve", "token", "create", "--scopes", "admin"]) == 2
    assert "use some of predict,feedback,metrics" in capsys.readouterr().err
