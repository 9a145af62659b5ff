"""Scratch: test AUC of the realistic shape trained by ``train()``, fp32 vs bf16.

usage: python -m benchmarks.perf_auc CODE_ROOT PRECISION SEED EPOCHS [THREADS]
Trains DeepFM (embedding 16, hidden [256, 128], dropout 0.1) with the shipped config's
training section on the perf data (500k train rows, min_frequency 1), fixed epochs
(patience = epochs), and prints one JSON line. CODE_ROOT is put first on sys.path, so
main's code (/work/main) and this branch can be compared in the same way.
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path


def main() -> None:
    root, precision, seed, epochs = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    threads = int(sys.argv[5]) if len(sys.argv) > 5 else 1
    sys.path.insert(0, root)
    from ml.config import load_config
    from ml.training.job import train

    feats = Path("/tmp/perfwork/f714286_s42")
    cfg = load_config(Path(root) / "config" / "model_config.yaml")
    training = {"epochs": epochs, "patience": epochs, "num_threads": threads, "device": "cpu"}
    if precision != "fp32":
        training["precision"] = precision
    cfg = cfg.replace(
        seed=seed,
        data={"min_frequency": 1},
        model={"name": "deepfm", "embedding_dim": 16, "hidden_units": [256, 128], "dropout": 0.1},
        training=training,
    )
    with tempfile.TemporaryDirectory() as tmp:
        m = train(cfg, features_dir=feats, run_dir=Path(tmp) / "run", log=lambda _: None).metrics
    load = " ".join(Path("/proc/loadavg").read_text().split()[:3])
    out = {
        "root": root,
        "precision": precision,
        "seed": seed,
        "epochs": epochs,
        "threads": threads,
        "test_auc": m["test_auc"],
        "test_logloss": m["test_logloss"],
        "val_auc": m["val_auc"],
        "best_epoch": m["best_epoch"],
        "samples_per_sec": m["samples_per_sec"],
        "n_params": m["n_params"],
        "load": load,
        "history_auc": [round(h["val_auc"], 5) for h in m["history"]],
    }
    print(json.dumps(out))


if __name__ == "__main__":
    main()
