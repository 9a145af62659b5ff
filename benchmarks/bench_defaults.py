"""Do the shipped defaults hold on data the project has never seen? (issue 10)

For each synthetic world (``ml.data.generate.world_names()``: the default world and the
real-data-shaped ``marketplace`` and ``feed``) and size, the shipped
``config/model_config.yaml`` with only ``features`` and paths changed is trained and
scored on the test split beside:

- the best of a small sweep around it (other model family, rare-category threshold,
  embedding size, learning rate): how much a user could gain by tuning by hand;
- scikit-learn logistic regression on one-hot features with C picked on validation
  (``ml.evaluation.baseline``, the gate's baseline): what a user would pick instead;
- the oracle (the ground truth's own AUC): the ceiling.

Rows per world and size: defaults, sweep best (and which), LR, oracle, and the two
acceptance checks (defaults within 0.005 of the sweep's best; defaults above LR).

Below ``SMALL`` rows every figure is the mean over ``SMALL_SEEDS`` data sets generated
with different seeds: at 10k rows the test split holds 1,500 rows (about 50 clicks on
the 3.5%-CTR marketplace world), so one split's AUC moves by ±0.02 between seeds, four
times the 0.005 the acceptance compares.

``make bench`` runs the 10k-row size; ``make bench-full`` runs 10k, 200k and 2M
(``BENCH_DEFAULTS_SIZES=10000,200000`` picks others; ``BENCH_DEFAULTS_WORLDS`` the worlds).
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

CHECKOUT = Path(__file__).resolve().parent.parent
QUICK_SIZES = (10_000,)
FULL_SIZES = (10_000, 200_000, 2_000_000)
#: Variants around the shipped config (each a {section: {key: value}} override).
SWEEP: dict[str, dict[str, dict[str, Any]]] = {
    "deepfm": {"model": {"name": "deepfm"}},
    "min_frequency=2": {"data": {"min_frequency": 2}},
    "embedding_dim=8": {"model": {"embedding_dim": 8}},
    "learning_rate=1e-3": {"training": {"learning_rate": 0.001}},
    "weight_decay=1e-4": {"training": {"weight_decay": 0.0001}},
}
#: At the largest size the sweep keeps only the variants that differ most (time budget).
LARGE_SWEEP = ("deepfm", "min_frequency=2")
LARGE = 1_000_000
SMALL = 50_000
SMALL_SEEDS = (1, 2, 3, 4, 5)


def _row(
    name: str, value: Any, unit: str, target: str = "", ok: bool | None = None
) -> dict[str, Any]:
    return {"name": name, "value": value, "unit": unit, "target": target, "ok": ok}


def _shipped(features_dir: Path, spec: Any, runs: Path) -> Any:
    """The shipped config with only the features and the paths changed (as a user would)."""
    from ml.config import load_config

    cfg = load_config(CHECKOUT / "config" / "model_config.yaml")
    return cfg.replace(
        features=spec.to_dict(),
        data={"features_dir": str(features_dir)},
        output={"runs_dir": str(runs)},
    )


def _test_auc(cfg: Any) -> tuple[float, float]:
    from ml.training.job import train

    start = time.perf_counter()
    metrics = train(cfg, log=lambda _line: None, progress=False).metrics
    return float(metrics["test_auc"]), time.perf_counter() - start


def _scores(world: str, rows: int, seed: int, root: Path) -> dict[str, Any]:
    """Test AUC of the defaults, each sweep variant, LR and the oracle on one data set."""
    from ml.data.generate import generate_features, oracle_auc, world_spec
    from ml.evaluation.baseline import fit_baseline

    data = root / f"{world}_{rows}_{seed}"
    generate_features(data, rows=rows, seed=seed, world=world)
    spec = world_spec(world)
    cfg = _shipped(data, spec, root / "runs")
    defaults, seconds = _test_auc(cfg)
    names = LARGE_SWEEP if rows >= LARGE else tuple(SWEEP)
    sweep = {"shipped defaults": defaults}
    for name in names:
        sweep[name] = _test_auc(cfg.replace(**SWEEP[name]))[0]
    scores = {
        "sweep": sweep,
        "seconds": seconds,
        "lr": fit_baseline(data, spec).test_auc,
        "oracle": oracle_auc(data, "test"),
    }
    shutil.rmtree(data, ignore_errors=True)
    shutil.rmtree(root / "runs", ignore_errors=True)
    return scores


def _cell(world: str, rows: int, root: Path) -> list[dict[str, Any]]:
    seeds = SMALL_SEEDS if rows < SMALL else (1,)
    per_seed = [_scores(world, rows, seed, root) for seed in seeds]
    sweep = {k: float(np.mean([s["sweep"][k] for s in per_seed])) for k in per_seed[0]["sweep"]}
    defaults = sweep["shipped defaults"]
    best_name = max(sweep, key=lambda k: sweep[k])
    lr = float(np.mean([s["lr"] for s in per_seed]))
    oracle = float(np.mean([s["oracle"] for s in per_seed]))
    seconds = float(np.mean([s["seconds"] for s in per_seed]))
    tag = f"{world} {rows // 1000}k" + (
        f" (mean of {len(seeds)} data seeds)" if len(seeds) > 1 else ""
    )
    return [
        _row(f"{tag}: shipped defaults test AUC", round(defaults, 4), "AUC", f"{seconds:.0f} s"),
        _row(f"{tag}: sweep best ({best_name})", round(sweep[best_name], 4), "AUC"),
        _row(f"{tag}: logistic regression", round(lr, 4), "AUC"),
        _row(f"{tag}: oracle", round(oracle, 4), "AUC"),
        _row(
            f"{tag}: defaults - sweep best",
            round(defaults - sweep[best_name], 4),
            "AUC",
            ">= -0.005",
            defaults >= sweep[best_name] - 0.005,
        ),
        _row(f"{tag}: defaults - LR", round(defaults - lr, 4), "AUC", "> 0", defaults > lr),
    ]


def run(full: bool) -> list[dict[str, Any]]:
    from ml.data.generate import world_names

    sizes_env = os.environ.get("BENCH_DEFAULTS_SIZES", "")
    sizes = tuple(int(s) for s in sizes_env.split(",") if s) or (
        FULL_SIZES if full else QUICK_SIZES
    )
    worlds_env = os.environ.get("BENCH_DEFAULTS_WORLDS", "")
    worlds = tuple(w for w in worlds_env.split(",") if w) or tuple(world_names())
    rows: list[dict[str, Any]] = []
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="bench_defaults_") as tmp:
        for rows_n in sizes:
            for world in worlds:
                rows += _cell(world, rows_n, Path(tmp))
    rows.append(
        _row(
            "whole table wall time",
            round(time.perf_counter() - start, 1),
            "s",
            "<= 900 with --full" if full else "",
            (time.perf_counter() - start) <= 900 if full else None,
        )
    )
    return rows
