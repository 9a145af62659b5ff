"""Experiment tracking from the run directories: list, show, resolve."""

from __future__ import annotations

import json
from typing import Any

import pytest

from ml.cards.runs import list_runs, resolve_run, show_run
from ml.cli import main as cli_main
from ml.errors import CardError
from ml.registry.model_registry import ModelRegistry
from ml.training import run_dir as rd


def test_list_has_every_run_with_metrics_producer_and_version(shared_home: Any) -> None:
    records = list_runs(registry=ModelRegistry("models"))
    by_name = {r["name"]: r for r in records}
    a, b = by_name[shared_home.run_a.name], by_name[shared_home.run_b.name]
    assert a["registered"] == ["ctr_model v1"] and b["registered"] == ["ctr_model v2"]
    assert (a["state"], a["epochs_run"], b["epochs_run"]) == ("complete", 1, 3)
    assert b["test_auc"] == rd.read_metrics(shared_home.run_b)["test_auc"]
    assert (b["dag_id"], b["run_id"]) == ("training_pipeline", "manual__b")


def test_an_unfinished_run_is_listed_as_such(own_home: Any) -> None:
    (own_home.home / "experiments" / "runs" / "ctr_model_20240101_000000").mkdir()
    (state,) = [r["state"] for r in list_runs() if r["name"] == "ctr_model_20240101_000000"]
    assert state == "incomplete"


def test_show_and_resolve(shared_home: Any) -> None:
    assert resolve_run("latest") == shared_home.run_b
    assert resolve_run(shared_home.run_a.name) == shared_home.run_a
    info = show_run(shared_home.run_b)
    assert len(info["metrics"]["history"]) == 3 and info["config"].startswith("experiment_name")
    assert rd.TEST_PREDICTIONS in info["files"] and rd.COMPLETE in info["files"]
    with pytest.raises(CardError, match="no training run 'nope'"):
        resolve_run("nope")


def test_runs_commands(shared_home: Any, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli_main(["runs", "list"]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0].split()[:3] == ["run", "state", "model"]
    assert "ctr_model v2" in out and "training_pipeline / manual__b" in out
    assert cli_main(["runs", "show", "latest", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["registered"] == ["ctr_model v2"]
    assert cli_main(["runs", "show", shared_home.run_a.name]) == 0
    assert "epoch 1: loss" in capsys.readouterr().out
    runs = ["runs", "compare", shared_home.run_a.name, "latest", "--bootstrap", "20", "--json"]
    assert cli_main(runs) == 0
    assert len(json.loads(capsys.readouterr().out)["differences"]) == 1
    assert cli_main(["runs", "show", "nope"]) == 2
