"""Is ``model.name: auto`` never worse than a plain baseline? (issue 25)

For each synthetic world (``ml.data.generate.world_names()``) at ``BENCH_AUTO_ROWS``
(100,000) rows, one data set each, the shipped ``config/model_config.yaml`` (``model.name:
auto``) with only ``features`` and paths changed is trained and scored on the test split
beside:

- scikit-learn logistic regression on one-hot features with C picked on validation
  (``ml.evaluation.baseline``, the gate's baseline), test AUC and log loss;
- a sweep of single families, each the shipped config with ``model.name`` set (so
  ``dcnv2`` is the former single default): the best of them by test AUC;
- the former single default's (``dcnv2``) training time, against auto's whole training.

The acceptance checks per world: auto's test AUC >= LR - 0.001 and its test log loss <=
LR's; auto within 0.003 AUC of the sweep's best; auto's training <= 2x dcnv2's. Over the
worlds: auto's mean AUC >= LR's + 0.003.

Runs with ``make bench-full`` only (about 15 minutes on two cores); ``BENCH_AUTO_WORLDS``
and ``BENCH_AUTO_ROWS`` pick others. The trainings run ``BENCH_AUTO_WORKERS`` (2) at a
time, one torch thread each, so the times compared ran under the same load.
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path
from typing import Any

CHECKOUT = Path(__file__).resolve().parent.parent
ROWS = 100_000
#: The single families of the sweep (each the shipped config with model.name set).
SWEEP = ("logreg", "fm", "dcnv2", "deepfm", "finalmlp")
FORMER_DEFAULT = "dcnv2"


def _row(
    name: str, value: Any, unit: str, target: str = "", ok: bool | None = None
) -> dict[str, Any]:
    return {"name": name, "value": value, "unit": unit, "target": target, "ok": ok}


def _generate(world: str, rows: int, data: Path) -> None:
    from ml.data.generate.writer import generate_features

    generate_features(data, rows=rows, seed=1, world=world)


def _score(world: str, data: Path, what: str) -> dict[str, Any]:
    """Test AUC, log loss and seconds of ``what``: ``auto`` (the shipped config), a
    family of the sweep, or ``lr``."""
    from ml.data.generate.catalog import world_spec

    start = time.perf_counter()
    spec = world_spec(world)
    if what == "lr":
        from ml.evaluation.baseline import fit_baseline

        base = fit_baseline(data, spec)
        return {
            "auc": base.test_auc,
            "logloss": base.test_logloss,
            "seconds": time.perf_counter() - start,
        }
    from ml.config import load_config
    from ml.training.job import train

    with tempfile.TemporaryDirectory(prefix="runs_", dir=data.parent) as runs:
        cfg = load_config(CHECKOUT / "config" / "model_config.yaml").replace(
            features=spec.to_dict(),
            data={"features_dir": str(data)},
            output={"runs_dir": runs},
            training={"num_threads": 1},
        )
        if what != "auto":
            cfg = cfg.replace(model={"name": what})
        m = train(cfg, log=lambda _line: None, progress=False).metrics
    out = {
        "auc": float(m["test_auc"]),
        "logloss": float(m["test_logloss"]),
        "seconds": time.perf_counter() - start,
    }
    if what == "auto":
        out["chosen"] = m["auto"]["chosen"]
        out["table"] = [
            f"{c['family']}:{c['val_auc'] if c['val_auc'] is None else round(c['val_auc'], 4)}"
            + (" skipped" if c["skipped"] else "")
            + (" cut" if c["cut_short"] else "")
            for c in m["auto"]["candidates"]
        ]
    return out


def _cell(world: str, rows: int, s: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    auto, lr = s["auto"], s["lr"]
    best = max(SWEEP, key=lambda f: s[f]["auc"])
    ratio = auto["seconds"] / s[FORMER_DEFAULT]["seconds"]
    tag = f"{world} {rows // 1000}k"
    return [
        _row(
            f"{tag}: auto test AUC / log loss (chose {auto['chosen']}; {', '.join(auto['table'])})",
            f"{auto['auc']:.4f} / {auto['logloss']:.4f}",
            "AUC / logloss",
        ),
        _row(
            f"{tag}: logistic regression test AUC / log loss",
            f"{lr['auc']:.4f} / {lr['logloss']:.4f}",
            "AUC / logloss",
        ),
        _row(
            f"{tag}: auto - LR",
            round(auto["auc"] - lr["auc"], 4),
            "AUC",
            ">= -0.001, log loss <= LR's",
            auto["auc"] >= lr["auc"] - 0.001 and auto["logloss"] <= lr["logloss"],
        ),
        _row(
            f"{tag}: sweep best ({best}) test AUC; sweep "
            + ", ".join(f"{f} {s[f]['auc']:.4f}" for f in SWEEP),
            round(s[best]["auc"], 4),
            "AUC",
        ),
        _row(
            f"{tag}: auto - sweep best",
            round(auto["auc"] - s[best]["auc"], 4),
            "AUC",
            ">= -0.003",
            auto["auc"] >= s[best]["auc"] - 0.003,
        ),
        _row(
            f"{tag}: auto's training / {FORMER_DEFAULT}'s ({auto['seconds']:.0f} s / "
            f"{s[FORMER_DEFAULT]['seconds']:.0f} s, 1 thread each, 2 at a time)",
            round(ratio, 2),
            "x",
            "<= 2",
            ratio <= 2.0,
        ),
    ]


def run(full: bool) -> list[dict[str, Any]]:
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor

    from ml.data.generate.catalog import world_names

    if not full:
        return [_row("auto vs baselines per world", "make bench-full", "", "", None)]
    rows = int(os.environ.get("BENCH_AUTO_ROWS", str(ROWS)))
    worlds = tuple(w for w in os.environ.get("BENCH_AUTO_WORLDS", "").split(",") if w) or tuple(
        world_names()
    )
    workers = int(os.environ.get("BENCH_AUTO_WORKERS", "2"))
    start = time.perf_counter()
    scores: dict[str, dict[str, dict[str, Any]]] = {}
    with tempfile.TemporaryDirectory(prefix="bench_auto_") as tmp:
        data = {w: Path(tmp) / f"{w}_{rows}" for w in worlds}
        with ProcessPoolExecutor(workers, mp_context=mp.get_context("spawn")) as pool:
            for done in [pool.submit(_generate, w, rows, data[w]) for w in worlds]:
                done.result()
            # auto and the former default first in each world, so the two times compared
            # ran under the same load
            jobs = ("auto", FORMER_DEFAULT, *(f for f in SWEEP if f != FORMER_DEFAULT), "lr")
            futures = {(w, j): pool.submit(_score, w, data[w], j) for w in worlds for j in jobs}
            for (w, j), future in futures.items():
                scores.setdefault(w, {})[j] = future.result()
    out = [row for w in worlds for row in _cell(w, rows, scores[w])]
    gain = sum(scores[w]["auto"]["auc"] - scores[w]["lr"]["auc"] for w in worlds) / len(worlds)
    out.append(
        _row("mean over worlds: auto - LR", round(gain, 4), "AUC", ">= 0.003", gain >= 0.003)
    )
    out.append(_row("whole table wall time", round(time.perf_counter() - start, 1), "s"))
    return out
