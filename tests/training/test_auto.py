"""ml.training.auto: the candidates, the budget, the choice on validation, and the auto run
through the training job, the registry and the predictor."""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from ml.config import Config
from ml.errors import TrainingError
from ml.training import auto
from ml.training import run_dir as rd
from ml.training.job import train


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _fake_trainer(
    scores: dict[str, tuple[float, float]], clock: FakeClock | None = None, cost: float = 0.0
) -> tuple[Any, list[tuple[str, Path, float | None, Config]]]:
    """A stand-in for the training job: each family's (val_auc, val_logloss), ``cost``
    seconds on ``clock`` per candidate; records every call."""
    calls: list[tuple[str, Path, float | None, Config]] = []

    def train_candidate(cfg: Config, run_dir: Path, deadline: float | None) -> dict[str, Any]:
        calls.append((cfg.model.name, run_dir, deadline, cfg))
        if clock is not None:
            clock.now += cost
        auc, logloss = scores[cfg.model.name]
        return {
            "val_auc": auc,
            "val_logloss": logloss,
            "epochs_run": 3,
            "best_epoch": 2,
            "n_params": 1 + len(cfg.features.numeric) + 500,  # logreg: 500 ids
        }

    return train_candidate, calls


SCORES = {
    "logreg": (0.70, 0.30),
    "fm": (0.74, 0.29),
    "finalmlp": (0.72, 0.28),
    "dcnv2": (0.71, 0.31),
}


def test_choose_keeps_the_best_val_auc_cheapest_first(cfg: Config, tmp_path: Path) -> None:
    fake, calls = _fake_trainer(SCORES)
    lines: list[str] = []
    choice, chosen = auto.choose(
        cfg, tmp_path, fake, train_rows=70_000, val_rows=15_000, log=lines.append
    )
    assert [c[0] for c in calls] == list(auto.CANDIDATES) and calls[0][0] == "logreg"
    assert choice.chosen == "fm" and choice.metric == "val_auc"
    assert chosen == rd.candidate_dir(tmp_path, "fm")
    assert [c.family for c in choice.candidates] == list(auto.CANDIDATES)
    assert all(c.skipped is None and c.seconds is not None for c in choice.candidates)
    assert "Chose fm" in lines[-1] and "logreg 0.7000" in lines[-1]
    table = choice.to_dict()["candidates"]
    assert {"family", "val_auc", "val_logloss", "epochs", "seconds", "skipped"} <= set(table[0])


def test_choose_compares_log_loss_on_a_small_validation_split(cfg: Config, tmp_path: Path) -> None:
    fake, _ = _fake_trainer(SCORES)
    choice, _ = auto.choose(cfg, tmp_path, fake, train_rows=7_000, val_rows=1_500, log=print)
    assert choice.metric == "val_logloss" and choice.chosen == "finalmlp"


def test_log_loss_never_picks_a_candidate_that_ranks_clearly_worse(
    cfg: Config, tmp_path: Path
) -> None:
    # 600 validation rows: fm has the lowest log loss but an AUC 0.07 below the best
    # (it predicts about the base rate); the best log loss within the margin wins.
    scores = {"logreg": (0.55, 0.638), "fm": (0.49, 0.632), "finalmlp": (0.54, 0.637),
              "dcnv2": (0.56, 0.637)}  # fmt: skip
    fake, _ = _fake_trainer(scores)
    choice, _ = auto.choose(cfg, tmp_path, fake, train_rows=4_800, val_rows=600, log=print)
    assert choice.metric == "val_logloss" and choice.chosen == "finalmlp"


def test_choose_prefers_the_cheaper_candidate_on_a_tie(cfg: Config, tmp_path: Path) -> None:
    fake, _ = _fake_trainer({f: (0.7, 0.3) for f in auto.CANDIDATES})
    choice, _ = auto.choose(cfg, tmp_path, fake, train_rows=70_000, val_rows=15_000, log=print)
    assert choice.chosen == "logreg"


def test_choose_skips_the_rest_once_the_budget_is_spent(cfg: Config, tmp_path: Path) -> None:
    clock = FakeClock()
    fake, calls = _fake_trainer(SCORES, clock, cost=20.0)
    lines: list[str] = []
    cfg = cfg.replace(model={"name": "auto", "auto_budget": 30.0})
    choice, _ = auto.choose(
        cfg, tmp_path, fake, train_rows=70_000, val_rows=15_000, log=lines.append, clock=clock
    )
    assert [c[0] for c in calls] == ["logreg", "fm"]
    # the linear floor has no deadline; the others must stop by the budget's end
    assert calls[0][2] is None and calls[1][2] == 1000.0 + 30.0
    skipped = {c.family: c.skipped for c in choice.candidates if c.skipped}
    assert set(skipped) == {"finalmlp", "dcnv2"}
    assert "budget spent (40 s of 30 s)" in skipped["dcnv2"]
    assert any("finalmlp: skipped, budget spent" in line for line in lines)
    assert choice.chosen == "fm"


def test_logreg_trains_even_without_budget(cfg: Config, tmp_path: Path) -> None:
    clock = FakeClock()
    fake, calls = _fake_trainer(SCORES, clock, cost=100.0)
    cfg = cfg.replace(model={"name": "auto", "auto_budget": 1.0})
    choice, _ = auto.choose(
        cfg, tmp_path, fake, train_rows=70_000, val_rows=15_000, log=print, clock=clock
    )
    assert [c[0] for c in calls] == ["logreg"] and choice.chosen == "logreg"


def test_choose_fails_when_no_candidate_has_a_finite_metric(cfg: Config, tmp_path: Path) -> None:
    fake, _ = _fake_trainer({f: (math.nan, math.nan) for f in auto.CANDIDATES})
    with pytest.raises(TrainingError, match="no candidate produced a finite val_auc"):
        auto.choose(cfg, tmp_path, fake, train_rows=70_000, val_rows=15_000, log=print)


def test_candidates_get_size_aware_settings(cfg: Config, tmp_path: Path) -> None:
    fake, calls = _fake_trainer(SCORES)
    cfg = cfg.replace(
        model={"name": "auto", "embedding_dim": 16}, training={"distributed": {"nproc": 2}}
    )
    auto.choose(cfg, tmp_path, fake, train_rows=4_000, val_rows=1_000, log=print)
    by_family = {name: c for name, _, _, c in calls}
    assert by_family["logreg"].training.learning_rate == pytest.approx(
        cfg.training.learning_rate * auto.LINEAR_LR_FACTOR
    )
    # the exact fit runs in one process; the other families on the configured count
    assert by_family["logreg"].training.distributed.nproc == 1
    # 500 ids (the fake logreg's weights) on 4,000 train rows: 8 dims (500 * 8 <= 4,000)
    assert {by_family[f].model.embedding_dim for f in ("fm", "finalmlp", "dcnv2")} == {8}
    assert all(c.model.auto_budget is None for c in by_family.values())
    assert {by_family[f].training.distributed.nproc for f in ("fm", "finalmlp", "dcnv2")} == {2}


@pytest.mark.parametrize(
    ("configured", "rows", "ids", "want"),
    [(16, 70_000, 4_442, 8), (16, 2_000_000, 40_000, 16), (16, 1_000, 5_000, 4), (8, 10**7, 10, 8)],
)
def test_auto_embedding_dim_keeps_tables_under_the_train_rows(
    configured: int, rows: int, ids: int, want: int
) -> None:
    assert auto.auto_embedding_dim(configured, rows, ids) == want


def test_auto_budget_follows_the_train_rows() -> None:
    assert auto.auto_budget(None, 70_000) == pytest.approx(63.0)
    assert auto.auto_budget(None, 1_000) == auto.AUTO_BUDGET_MIN_S
    assert auto.auto_budget(12.5, 10**7) == 12.5


def test_auto_budget_must_be_positive(cfg: Config) -> None:
    from ml.errors import ConfigError

    with pytest.raises(ConfigError, match=r"model\.auto_budget must be > 0"):
        cfg.replace(model={"auto_budget": 0})


def test_a_deadline_stops_training_after_the_current_epoch(cfg: Config) -> None:
    result = train(cfg, log=lambda _: None, progress=False, deadline=time.perf_counter())
    assert result.metrics["epochs_run"] == 1
    assert result.metrics["cut_short"] == "time budget spent after epoch 1"


@pytest.mark.slow
def test_auto_run_round_trips_through_the_registry_and_the_predictor(
    cfg: Config, features_dir: Path, home: Path
) -> None:
    from ml.registry.model_registry import ModelRegistry
    from ml.serving.predictor import Predictor

    cfg = cfg.replace(model={"name": "auto"}, training={"epochs": 1})
    result = train(cfg, log=lambda _: None, progress=False)
    out, metrics = result.run_dir, result.metrics
    chosen = metrics["auto"]["chosen"]
    assert [c["family"] for c in metrics["auto"]["candidates"]] == list(auto.CANDIDATES)
    assert metrics["model"] == chosen
    assert set(rd.RUN_FILES) | {rd.CANDIDATES_DIR} == {p.name for p in out.iterdir()}
    assert json.loads((out / rd.RUN_JSON).read_text())["config_digest"] == cfg.digest()
    assert f"name: {chosen}" in (out / rd.CONFIG_YAML).read_text()
    assert Predictor.load(out).model_name == chosen
    # the same auto config and data: the whole choice is reused, nothing retrains
    again = train(cfg, run_dir=out, log=lambda _: None, progress=False)
    assert again.reused and again.metrics["auto"] == metrics["auto"]

    registry = ModelRegistry(home / "models")
    rv = registry.register(out, "ctr_model")
    meta = json.loads((rv.path / "metadata.json").read_text())
    assert meta["metrics"]["auto"]["chosen"] == chosen
    predictor = registry.load("ctr_model", rv.version)
    assert predictor.model_name == chosen
    df = pd.read_parquet(features_dir / "test" / "data.parquet").head(5)
    assert predictor.predict_proba(df).shape == (5,)


def test_an_explicit_family_trains_without_a_choice(cfg: Config) -> None:
    result = train(cfg.replace(training={"epochs": 1}), log=lambda _: None, progress=False)
    assert "auto" not in result.metrics
    assert not (result.run_dir / rd.CANDIDATES_DIR).exists()


def test_logreg_candidate_trains_once_its_l2_path_inside(cfg: Config, tmp_path: Path) -> None:
    # weight_decay null: the logreg candidate is one run whose exact fit walks the C path
    # (ml.training.linear); the table shows the C it kept and every C tried
    calls: list[tuple[str, Path, float | None, Config]] = []
    fit = {
        "method": "exact",
        "C": 0.1,
        "weight_decay": 1.4e-4,
        "path": {"0.0316": 0.69, "0.1": 0.7},
    }

    def fake(ccfg: Config, run_dir: Path, deadline: float | None) -> dict[str, Any]:
        calls.append((ccfg.model.name, run_dir, deadline, ccfg))
        auc = 0.70 if ccfg.model.name == "logreg" else 0.6
        extra = {"linear_fit": fit} if ccfg.model.name == "logreg" else {}
        return {"val_auc": auc, "val_logloss": 0.3, "epochs_run": 3, "n_params": 506, **extra}

    cfg = cfg.replace(model={"name": "auto"}, training={"weight_decay": None})
    choice, chosen = auto.choose(cfg, tmp_path, fake, train_rows=70_000, val_rows=15_000, log=print)
    assert [(c[0], c[1].name) for c in calls] == [(f, f) for f in auto.CANDIDATES]
    assert choice.chosen == "logreg" and chosen == rd.candidate_dir(tmp_path, "logreg")
    assert calls[0][2] is None  # the floor trains whatever the budget
    assert all(c[3].training.weight_decay is None for c in calls)  # the path, the size rule
    row = choice.candidates[0]
    assert row.settings == {"fit": "exact", "C": 0.1, "C_tried": "0.0316: 0.6900, 0.1: 0.7000"}


def test_a_logreg_candidate_in_mini_batches_shows_its_learning_rate(
    cfg: Config, tmp_path: Path
) -> None:
    fake, _ = _fake_trainer(SCORES)  # no linear_fit in its metrics: mini-batches (streaming)
    choice, _ = auto.choose(cfg, tmp_path, fake, train_rows=70_000, val_rows=15_000, log=print)
    rate = cfg.training.learning_rate * auto.LINEAR_LR_FACTOR
    assert choice.candidates[0].settings == {"fit": "mini-batch", "learning_rate": rate}
