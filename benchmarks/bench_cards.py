"""Model card benchmarks: building a card for a 100k-row test split, and compare's bootstrap.

The run directory is synthetic but shaped like a real one: the default config, a
metrics.json with 20 epochs of history and 10 categorical fields' vocabulary, and
``test_predictions.npz`` with 100,000 test rows scored by the model and by production
(calibrated scores, about 10% clicks). What the card costs depends on the rows and the
epochs, not on the model, so no training is needed.

- ``card_100k_rows``: ``prepare_run_card`` + ``files(version)`` (numbers, 5 plots,
  Markdown, HTML), median of 3 warm builds; target < 2 s. ``card_100k_rows_cpu`` is its
  CPU time (what it would take on an idle core); ``card_100k_rows_cold`` the first build
  in the process (matplotlib and scikit-learn imports included).
- ``card_files_under_lock``: what the registry's ``extra_files`` callable costs inside
  its lock (rendering only).
- ``bootstrap_1000_100k``: ``registry compare``'s paired bootstrap (1000 resamples) of
  the AUC difference on 100,000 rows.
"""

from __future__ import annotations

import json
import shutil
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from ml.training import run_dir as rd

ROWS = 100_000
EPOCHS = 20
FIELDS = (
    "user_id",
    "item_id",
    "advertiser_id",
    "item_category",
    "site_category",
    "user_segment",
    "device_type",
    "ad_position",
    "hour_of_day",
    "day_of_week",
)


def _row(name: str, value: Any, unit: str, target: str = "", ok: bool | None = None) -> dict:
    return {"name": name, "value": value, "unit": unit, "target": target, "ok": ok}


def make_run(root: Path, rows: int = ROWS, seed: int = 0) -> Path:
    """A complete-looking run directory with saved test predictions (see module doc)."""
    from ml.cards.predictions import Predictions, save_predictions

    rng = np.random.default_rng(seed)
    run = root / "ctr_model_20260101_000000"
    run.mkdir(parents=True)
    checkout = Path(__file__).resolve().parent.parent
    shutil.copy(checkout / "config" / "model_config.yaml", run / rd.CONFIG_YAML)
    history = [
        {
            "epoch": e,
            "train_loss": 0.4 - 0.005 * e,
            "val_auc": 0.75 + 0.01 * np.log(e),
            "val_logloss": 0.33 - 0.002 * e,
            "train_samples": 70_000,
            "train_s": 1.0,
            "epoch_s": 1.2,
        }
        for e in range(1, EPOCHS + 1)
    ]
    metrics = {
        "test_auc": 0.78,
        "test_logloss": 0.31,
        "test_accuracy": 0.9,
        "val_auc": 0.78,
        "val_logloss": 0.3,
        "monitor": "val_auc",
        "best_epoch": 17,
        "epochs_run": EPOCHS,
        "stopped_early": True,
        "samples_per_sec": 70_000.0,
        "train_time_s": 24.0,
        "wall_time_s": 30.0,
        "device": "cpu",
        "model": "dcnv2",
        "n_params": 250_000,
        "rows": {"train": 700_000, "val": 150_000, "test": rows},
        "base_ctr": {"train": 0.1, "val": 0.1, "test": 0.1},
        "vocabulary": {f: {"vocab_size": 1000, "oov_train": 0.05, "oov_val": 0.07} for f in FIELDS},
        "history": history,
    }
    (run / rd.METRICS_JSON).write_text(json.dumps(metrics))
    (run / rd.RUN_JSON).write_text(
        json.dumps(
            {
                "features_dir": str(root / "features"),
                "data_fingerprint": {"digest": "d" * 64},
                "config_digest": "c" * 64,
                "dag_id": "training_pipeline",
                "run_id": "manual__bench",
                "device": "cpu",
                "hostname": "bench",
                "seed": 42,
            }
        )
    )
    (run / rd.MODEL_BEST).write_bytes(b"\0" * 1_000_000)
    truth = rng.beta(1.2, 10.8, rows)
    labels = (rng.random(rows) < truth).astype(np.int8)
    scores = np.clip(truth * np.exp(rng.normal(0, 0.3, rows)), 1e-4, 1 - 1e-4)
    production = np.clip(truth * np.exp(rng.normal(0, 0.4, rows)), 1e-4, 1 - 1e-4)
    save_predictions(run, Predictions(labels, scores, production, "v1", str(root / "features")))
    return run


def bench_card(tmp: Path) -> list[dict]:
    from ml.cards.build import prepare_run_card

    run = make_run(tmp)
    start = time.perf_counter()
    card = prepare_run_card(run, "ctr_model")
    card.files("v1")
    cold = time.perf_counter() - start
    times, cpu, render = [], [], []
    for _ in range(3):
        t, c = time.perf_counter(), time.process_time()
        card = prepare_run_card(run, "ctr_model")
        r = time.perf_counter()
        files = card.files("v2")
        render.append(time.perf_counter() - r)
        times.append(time.perf_counter() - t)
        cpu.append(time.process_time() - c)
    warm = statistics.median(times)
    size = sum(len(v) for v in files.values())
    return [
        _row("card_100k_rows", round(warm, 3), "s", "< 2 s", warm < 2.0),
        _row("card_100k_rows_cpu", round(statistics.median(cpu), 3), "s CPU"),
        _row("card_100k_rows_cold", round(cold, 3), "s"),
        _row("card_files_under_lock", round(statistics.median(render) * 1000, 1), "ms"),
        _row("card_bytes", size, "B"),
    ]


def bench_bootstrap(rows: int = ROWS, n_boot: int = 1000) -> list[dict]:
    from ml.cards.stats import bootstrap_auc_difference

    rng = np.random.default_rng(1)
    truth = rng.beta(1.2, 10.8, rows)
    labels = rng.random(rows) < truth
    a = truth * np.exp(rng.normal(0, 0.3, rows))
    b = truth * np.exp(rng.normal(0, 0.4, rows))
    t, c = time.perf_counter(), time.process_time()
    bootstrap_auc_difference(labels, a, b, n_boot=n_boot)
    return [
        _row("bootstrap_1000_100k", round(time.perf_counter() - t, 2), "s"),
        _row("bootstrap_1000_100k_cpu", round(time.process_time() - c, 2), "s CPU"),
    ]


def run(full: bool = False) -> list[dict]:
    tmp = Path(tempfile.mkdtemp(prefix="bench-cards-"))
    try:
        return bench_card(tmp) + bench_bootstrap()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    for row in run():
        print(row)
