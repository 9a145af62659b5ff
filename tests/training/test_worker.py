"""ml.training.worker: what a torchrun process trains (the runs themselves:
test_launch.py)."""

from __future__ import annotations

import json
from pathlib import Path

from ml.config import Config
from ml.training.launch import Launch, _spec
from ml.training.worker import _call, _parser


def test_train_options_stand_in_for_a_spec(project_home: Path) -> None:
    args = _parser().parse_args(["--model-family", "logreg", "--run-dir", "r", "--no-resume"])
    cfg, kw, out = _call(args)
    assert cfg.model.name == "logreg" and out is None
    assert kw == {"features_dir": None, "run_dir": "r", "resume": False}


def test_a_spec_carries_the_launchers_arguments(cfg: Config, tmp_path: Path) -> None:
    launch = Launch("feats", None, "run", "key1", None, True)
    raw = _spec(cfg, launch, False, {"dag_id": "d"}, None, str(tmp_path))
    (tmp_path / "spec.json").write_text(json.dumps(raw))
    got, kw, out = _call(_parser().parse_args(["--spec", str(tmp_path / "spec.json")]))
    assert got == cfg and out == str(tmp_path)
    assert kw["run_key"] == "key1" and kw["evaluate_test"] is False
    assert kw["provenance"] == {"dag_id": "d"} and kw["deadline"] is None
