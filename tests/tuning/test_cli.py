"""``ctr-pipeline tune`` end to end on tiny data: parallel workers, resume, errors."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from ml.cli import main
from ml.tuning.storage import STORAGE_ENV
from testkit.airflow import small_config

CHECKOUT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_tune_with_two_workers_then_resume(
    home: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(STORAGE_ENV, raising=False)
    env = {**os.environ, "PYTHONPATH": str(CHECKOUT), "CTR_PIPELINE_HOME": str(home)}
    cmd = [sys.executable, "-m", "ml.cli", "tune", "--config", "config/tune.yaml"]
    proc = subprocess.run(
        [*cmd, "--trials", "3", "--parallel", "2"],
        env=env,
        cwd="/",  # paths come from the base directory, not the working directory
        capture_output=True,
        text=True,
        timeout=300,
    )
    out = proc.stdout
    assert proc.returncode == 0, out + proc.stderr
    assert re.search(r"🔎 Study ctr_model-val_auc-\w{12} \(journal files in .*\): 0 finished", out)
    lines = re.findall(r"^trial +(\d+)  (\w+) +val_auc (\d\.\d{4}) +\d+\.\ds  (.*)$", out, re.M)
    assert len(lines) >= 3 and {n for n, *_ in lines} >= {"0", "1", "2"}
    (trial0,) = [line for line in out.splitlines() if line.startswith("trial   0 ")]
    assert "(the config's own values)" in trial0
    assert "Top 3 of 3 complete trials by val_auc:" in out or "Top 4 of 4" in out
    assert "Parameter importances:" in out
    json_path = Path(re.search(r"📝 (\S+tuning\.json)", out).group(1))  # type: ignore[union-attr]
    data = json.loads(json_path.read_text())
    assert json_path.parent.parent == home / "experiments" / "tuning"
    assert (json_path.parent / "optimization_history.png").is_file()
    # Both worker processes ran trials (up to one extra trial when both started the last).
    assert len({t["worker"]["pid"] for t in data["trials"]}) == 2
    assert 3 <= len(data["trials"]) <= 4
    best = data["best"]
    assert (home / best["run_dir"] / "COMPLETE").is_file()

    # A rerun resumes the same study: nothing left to do (more trials: test_worker.py).
    monkeypatch.chdir("/")
    assert main(["tune", "--config", "config/tune.yaml", "--trials", "3"]) == 0
    again = capsys.readouterr().out
    assert f"🔎 Study {data['study']} " in again and not re.search(r"^trial ", again, re.M)
    assert (
        main(["tune", "--config", "config/tune.yaml", "--trials", str(len(data["trials"]) + 1)])
        == 0
    )
    assert len(re.findall(r"^trial ", capsys.readouterr().out, re.M)) == 1


def test_tune_without_a_space_exits_2_saying_what_to_add(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (home / "config" / "plain.yaml").write_text(small_config())
    assert main(["tune", "--config", "config/plain.yaml"]) == 2
    assert "error: the config has no tuning.space" in capsys.readouterr().err


def test_tune_refuses_zero_trials(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["tune", "--config", "config/tune.yaml", "--trials", "0"])
    assert info.value.code == 2
    assert "expected a positive integer, got '0'" in capsys.readouterr().err


def test_tune_on_unreachable_storage_exits_3_naming_it(
    home: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(STORAGE_ENV, "postgresql+psycopg2://me:s3cret@127.0.0.1:1/optuna")
    assert main(["tune", "--config", "config/tune.yaml", "--trials", "1"]) == 3
    err = capsys.readouterr().err
    assert (
        "error: tuning storage postgresql+psycopg2://me:***@127.0.0.1:1/optuna is unreachable"
        in err
    )
    assert "s3cret" not in err
