"""Test AUC and log loss of each model family against scikit-learn logistic regression on
small synthetic data sets, one torch thread, one training at a time (issue 25's quick
check; ``make bench-full``'s defaults table is the full one).

    python -m benchmarks.perf_families [--worlds default,marketplace,feed]
        [--sizes 10000,100000] [--seeds 1,2,3] [--families logreg,fm,dcnv2,finalmlp]
        [--set training.monitor=val_auc ...]

Prints one JSON line per training (world, rows, seed, family, test/val AUC and log loss,
raw and calibrated where the run calibrated, epochs, seconds) and a mean table at the end.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import yaml

CHECKOUT = Path(__file__).resolve().parent.parent


def _train(data: Path, world: str, family: str, sets: list[str], runs: Path) -> dict[str, Any]:
    from ml.config import load_config
    from ml.data.generate.catalog import world_spec
    from ml.training.job import train

    cfg = load_config(CHECKOUT / "config" / "model_config.yaml")
    over: dict[str, dict[str, Any]] = {"model": {"name": family}, "training": {"num_threads": 1}}
    for item in sets:
        key, value = item.split("=", 1)
        section, name = key.split(".", 1)
        over.setdefault(section, {})[name] = yaml.safe_load(value)
    cfg = cfg.replace(
        features=world_spec(world).to_dict(),
        data={"features_dir": str(data), **over.pop("data", {})},
        output={"runs_dir": str(runs)},
        **over,
    )
    start = time.perf_counter()
    m = train(cfg, log=lambda _line: None, progress=False).metrics
    keys = ("test_auc", "test_logloss", "val_auc", "val_logloss", "test_logloss_raw")
    out = {k: round(float(m[k]), 5) for k in keys if k in m}
    if "test_logloss_raw" in m.get("calibration", {}):
        out["test_logloss_raw"] = round(float(m["calibration"]["test_logloss_raw"]), 5)
    out.update(
        epochs=m["epochs_run"],
        best_epoch=m["best_epoch"],
        calibration=m.get("calibration", {}).get("method"),
        seconds=round(time.perf_counter() - start, 1),
    )
    return out


def main() -> None:
    from ml.data.generate.catalog import world_spec
    from ml.data.generate.writer import generate_features
    from ml.evaluation.baseline import fit_baseline

    p = argparse.ArgumentParser()
    p.add_argument("--worlds", default="default,marketplace,feed")
    p.add_argument("--sizes", default="10000,100000")
    p.add_argument("--seeds", default="1,2,3")
    p.add_argument("--large-seeds", default="1")
    p.add_argument("--families", default="logreg,fm,dcnv2,finalmlp")
    p.add_argument("--set", action="append", default=[])
    a = p.parse_args()
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="perf_families_") as tmp:
        for world in a.worlds.split(","):
            for n in (int(s) for s in a.sizes.split(",")):
                seeds = a.seeds if n <= 20_000 else a.large_seeds
                for seed in (int(s) for s in seeds.split(",")):
                    data = Path(tmp) / f"{world}_{n}_{seed}"
                    generate_features(data, rows=n, seed=seed, world=world)
                    base = fit_baseline(data, world_spec(world))
                    cell = {"world": world, "rows": n, "seed": seed}
                    results = {
                        "sklearn_lr": {"test_auc": base.test_auc, "test_logloss": base.test_logloss}
                    }
                    for fam in a.families.split(","):
                        results[fam] = _train(data, world, fam, a.set, Path(tmp) / "runs")
                    for fam, r in results.items():
                        row = {**cell, "family": fam, **r}
                        rows.append(row)
                        print(json.dumps(row), flush=True)
    print("\nmean over seeds: world rows family test_auc test_logloss (delta vs sklearn LR)")
    keys = sorted({(r["world"], r["rows"], r["family"]) for r in rows}, key=str)
    for world, n, fam in keys:
        sel = [r for r in rows if (r["world"], r["rows"], r["family"]) == (world, n, fam)]
        lr = [r for r in rows if (r["world"], r["rows"], r["family"]) == (world, n, "sklearn_lr")]
        auc = float(np.mean([r["test_auc"] for r in sel]))
        ll = float(np.mean([r["test_logloss"] for r in sel]))
        d_auc = auc - float(np.mean([r["test_auc"] for r in lr]))
        d_ll = ll - float(np.mean([r["test_logloss"] for r in lr]))
        print(f"{world} {n} {fam} {auc:.4f} {ll:.4f} ({d_auc:+.4f} / {d_ll:+.4f})")


if __name__ == "__main__":
    main()
