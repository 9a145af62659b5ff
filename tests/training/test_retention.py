"""ml.training.retention: which run directories `runs prune` removes, and which it keeps."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from ml.cli import main
from ml.training import run_dir as rd
from ml.training.retention import DAY_S, prune_runs

NOW = time.time()


def _run(root: Path, name: str, age_days: float, complete: bool = True) -> Path:
    run = root / name
    run.mkdir(parents=True)
    (run / rd.MODEL_BEST).write_bytes(b"x" * 1000)
    if complete:
        (run / rd.COMPLETE).write_text("done\n")
    stamp = NOW - age_days * DAY_S
    for p in (*run.iterdir(), run):
        os.utime(p, (stamp, stamp))
    return run


def test_policy_keeps_newest_registered_and_recent_runs(tmp_path: Path) -> None:
    old = [_run(tmp_path, f"ctr_model_2024010{i}_000000", 100 - i) for i in range(5)]
    recent = _run(tmp_path, "ctr_model_20250101_000000", 3)
    running = _run(tmp_path, "ctr_model_20250102_000000", 0.1, complete=False)
    crashed = _run(tmp_path, "ctr_model_20250103_000000", 40, complete=False)
    protected = {old[0].resolve(): "ctr_model v1"}
    report = prune_runs(
        tmp_path, keep_last=2, older_than_days=30, protected=protected, dry_run=True, now=NOW
    )
    assert sorted(report.removed) == sorted([old[1], old[2], old[3], crashed])
    kept = dict(report.kept)
    assert kept[old[0]] == "registered as ctr_model v1"
    assert "newest 2" in kept[old[4]] and "newest 2" in kept[recent]
    assert "may still be training" in kept[running]
    assert all(p.exists() for p in report.removed)  # a dry run deletes nothing
    assert report.freed_bytes >= 3000
    applied = prune_runs(
        tmp_path, keep_last=2, older_than_days=30, protected=protected, dry_run=False, now=NOW
    )
    assert applied.removed == report.removed and not any(p.exists() for p in applied.removed)


def test_cli_prune_is_a_dry_run_by_default(project_home: Path, capsys: object) -> None:
    runs = project_home / "experiments" / "runs"
    victim = _run(runs, "ctr_model_20240101_000000", 90)
    _run(runs, "ctr_model_20250101_000000", 60)
    assert main(["runs", "prune", "--keep-last", "1", "--older-than", "30"]) == 0
    out = capsys.readouterr().out  # type: ignore[attr-defined]
    assert "would remove: experiments/runs/ctr_model_20240101_000000" in out
    assert "pass --apply" in out and victim.exists()
    assert main(["runs", "prune", "--keep-last", "1", "--older-than", "30", "--apply"]) == 0
    assert not victim.exists()


def test_prune_keeps_runs_registered_where_ctr_pipeline_registry_points(
    project_home: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from ml.registry.model_registry import ModelRegistry
    from testkit.registry import make_run_dir

    runs = project_home / "experiments" / "runs"
    registered = make_run_dir(runs / "ctr_model_20240101_000000", b"weights")
    stamp = NOW - 90 * DAY_S
    for p in (*registered.iterdir(), registered):
        os.utime(p, (stamp, stamp))
    shared = project_home / "shared-models"  # not models/: only the variable says where
    ModelRegistry(shared).register(registered, "ctr_model")
    args = ["runs", "prune", "--keep-last", "0", "--older-than", "30"]
    assert main(args) == 0
    assert "would remove: experiments/runs/ctr_model_20240101_000000" in capsys.readouterr().out
    kept = "kept: experiments/runs/ctr_model_20240101_000000 (registered as ctr_model v1)"
    monkeypatch.setenv("CTR_PIPELINE_REGISTRY", str(shared))
    assert main(args) == 0
    assert kept in capsys.readouterr().out
    monkeypatch.delenv("CTR_PIPELINE_REGISTRY")
    assert main([*args, "--base-dir", "shared-models"]) == 0
    assert kept in capsys.readouterr().out
