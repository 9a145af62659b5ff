"""Training benchmarks: batching throughput, model quality vs the oracle, and scale.

Parts (``BENCH_TRAINING_PARTS``, comma-separated; default all):

- ``throughput``: samples/s of the trainer's epoch loop (one indexed read per batch from
  tensors already on the device) against (a) a per-row ``Dataset`` + ``DataLoader``
  with the same model, data and batch size, and (b) a pure compute loop over
  pre-sliced batches already on the device (forward + backward + step: the bound).
- ``auc``: test AUC of ``logreg`` and of the configured deep model on the default data
  (100k rows, seed 42) with the default config, next to the oracle AUC; the default
  model's training time (``make run`` target: under 60 s).
- ``scale``: generate + train one epoch at 1M rows (and 10M with ``full``), each in a
  subprocess that reports its wall time and peak RSS.

Runs on CUDA when present (device ``auto``); ``BENCH_TRAINING_PARTS=throughput`` is
the quick GPU check.
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

CHECKOUT = Path(__file__).resolve().parent.parent
# BENCH_TRAINING_CONFIG=path measures another config (e.g. a candidate default).
DEFAULT_CONFIG = Path(
    os.environ.get("BENCH_TRAINING_CONFIG", CHECKOUT / "config" / "model_config.yaml")
)
PARTS = ("throughput", "auc", "scale")


def _row(
    name: str, value: Any, unit: str, target: str = "", ok: bool | None = None
) -> dict[str, Any]:
    return {"name": name, "value": value, "unit": unit, "target": target, "ok": ok}


def _sync(device: Any) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _make_data(rows: int, seed: int = 42) -> Path:
    from ml.data.generate import generate_features

    root = Path(tempfile.mkdtemp(prefix="bench_training_"))
    generate_features(root / "features", rows=rows, seed=seed)
    return root


# --- throughput -------------------------------------------------------------------------


def _throughput(device_name: str) -> list[dict[str, Any]]:
    import torch

    from ml.config import load_config

    # Measure with the thread count training uses (training.num_threads), as train() does.
    threads = torch.get_num_threads()
    wanted = load_config(DEFAULT_CONFIG).training.num_threads
    if wanted:
        torch.set_num_threads(wanted)
    try:
        return _throughput_rows(device_name)
    finally:
        torch.set_num_threads(threads)


def _throughput_rows(device_name: str) -> list[dict[str, Any]]:
    import numpy as np
    import torch
    from torch.utils.data import DataLoader, Dataset

    from ml.config import load_config
    from ml.data.loading import load_split
    from ml.data.preprocessing import Preprocessor
    from ml.models import build_model, model_args_for
    from ml.training.job import resolve_device
    from ml.training.tensors import encode_split
    from ml.training.trainer import EarlyStopping, Trainer

    cfg = load_config(DEFAULT_CONFIG)
    device = resolve_device(device_name)
    root = _make_data(100_000)
    try:
        feats = root / "features"
        df = load_split(feats, "train", cfg.features)
        pre = Preprocessor.fit(df, cfg.features, min_frequency=cfg.data.min_frequency)
        split = encode_split(pre, df, device, source="train")
        cat_np, num_np = pre.transform(df)
        y_np = df[cfg.features.label].to_numpy(dtype=np.float32)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    bs = cfg.training.batch_size
    n = len(split)
    args = model_args_for(
        cfg.model.name,
        vocab_sizes=pre.vocab_sizes,
        num_numeric=pre.num_numeric,
        hyperparameters={
            "embedding_dim": cfg.model.embedding_dim,
            "hidden_units": list(cfg.model.hidden_units),
            "cross_layers": cfg.model.cross_layers,
            "dropout": cfg.model.dropout,
        },
    )

    def fresh() -> tuple[torch.nn.Module, torch.optim.Optimizer]:
        torch.manual_seed(0)
        model = build_model(cfg.model.name, **args).to(device)
        opt = torch.optim.Adam(
            model.parameters(),
            lr=cfg.training.learning_rate,
            weight_decay=cfg.training.weight_decay,
        )
        return model, opt

    loss_fn = torch.nn.BCEWithLogitsLoss()

    def step(model: Any, opt: Any, c: Any, x: Any, y: Any) -> None:
        loss = loss_fn(model(c, x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    # (1) The trainer's own epoch loop and (2) the bound: batches sliced beforehand and
    # already on the device. Rounds alternate between the two so that drift in the
    # machine's speed hits both alike; each keeps its best epoch after a warm-up.
    model, _ = fresh()
    bound_model, bound_opt = fresh()
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(0)).to(device)
    # Each pre-sliced batch is made contiguous, as the model's input would be.
    batches = [
        tuple(t.contiguous() for t in split.batch(perm[i : i + bs])) for i in range(0, n, bs)
    ]

    def bound_epoch() -> None:
        for c, x, y in batches:
            step(bound_model, bound_opt, c, x, y)

    with tempfile.TemporaryDirectory() as tmp:
        trainer = Trainer(
            model,
            run_dir=Path(tmp),
            checkpoint_meta={},
            learning_rate=cfg.training.learning_rate,
            weight_decay=cfg.training.weight_decay,
            batch_size=bs,
            epochs=1,
            early_stopping=EarlyStopping(patience=1),
            seed=0,
            device=device,
            log=lambda _: None,
            progress=False,
        )
        best_trainer = best_bound = float("inf")
        for i in range(9):
            _sync(device)
            t = time.perf_counter()
            trainer.train_epoch(split)
            _sync(device)
            t_trainer = time.perf_counter() - t
            t = time.perf_counter()
            bound_epoch()
            _sync(device)
            t_bound = time.perf_counter() - t
            if i:  # the first round warms up both
                best_trainer = min(best_trainer, t_trainer)
                best_bound = min(best_bound, t_bound)
    trainer_sps = n / best_trainer
    compute_sps = n / best_bound

    # (3) The per-row baseline: Dataset.__getitem__ + default collation, then to device.
    class RowDataset(Dataset[tuple[Any, Any, Any]]):
        def __len__(self) -> int:
            return n

        def __getitem__(self, i: int) -> tuple[Any, Any, Any]:
            return (
                torch.from_numpy(cat_np[i]),
                torch.from_numpy(num_np[i]),
                torch.tensor(y_np[i]),
            )

    model, opt = fresh()
    loader = DataLoader(
        RowDataset(), batch_size=bs, shuffle=True, generator=torch.Generator().manual_seed(0)
    )
    max_batches = max(3, min(len(batches), 12))

    def cycle() -> Any:
        while True:  # a tiny data set may hold fewer batches than we time
            yield from loader

    it = cycle()
    c, x, y = next(it)
    step(model, opt, c.to(device), x.to(device), y.to(device))
    _sync(device)
    t = time.perf_counter()
    seen = 0
    for _ in range(max_batches):
        c, x, y = next(it)
        step(model, opt, c.to(device), x.to(device), y.to(device))
        seen += y.shape[0]
    _sync(device)
    loader_sps = seen / (time.perf_counter() - t)

    ratio_loader = trainer_sps / loader_sps
    ratio_bound = trainer_sps / compute_sps
    loader_target = 20.0 if device.type == "cuda" else 3.5
    tag = f"{cfg.model.name}, batch {bs}, {device.type}, {torch.get_num_threads()} threads"
    return [
        _row(f"trainer samples/s ({tag})", round(trainer_sps), "samples/s"),
        _row(f"per-row DataLoader samples/s ({tag})", round(loader_sps), "samples/s"),
        _row(f"pre-sliced compute bound samples/s ({tag})", round(compute_sps), "samples/s"),
        _row(
            f"trainer / per-row DataLoader ({device.type})",
            round(ratio_loader, 2),
            "x",
            f">= {loader_target}",
            ratio_loader >= loader_target,
        ),
        _row(
            f"trainer / compute bound ({device.type})",
            round(ratio_bound, 3),
            "x",
            ">= 0.9",
            ratio_bound >= 0.9,
        ),
    ]


# --- quality ----------------------------------------------------------------------------


def _auc(device_name: str) -> list[dict[str, Any]]:
    from ml.config import load_config
    from ml.data.generate import oracle_auc
    from ml.training.job import train

    cfg = load_config(DEFAULT_CONFIG).replace(training={"device": device_name})
    root = _make_data(100_000, seed=42)
    try:
        feats = root / "features"
        oracle = oracle_auc(feats, "test")
        deep = train(
            cfg, features_dir=feats, run_dir=root / "deep", log=lambda _: None, progress=False
        ).metrics
        base = train(
            cfg.replace(model={"name": "logreg"}),
            features_dir=feats,
            run_dir=root / "logreg",
            log=lambda _: None,
            progress=False,
        ).metrics
    finally:
        shutil.rmtree(root, ignore_errors=True)
    name = cfg.model.name
    gap = oracle - deep["test_auc"]
    lift = deep["test_auc"] - base["test_auc"]
    return [
        _row("oracle test AUC (100k rows, seed 42)", round(oracle, 4), "AUC"),
        _row(f"{name} test AUC", round(deep["test_auc"], 4), "AUC"),
        _row("logreg test AUC", round(base["test_auc"], 4), "AUC"),
        _row(f"oracle - {name} test AUC", round(gap, 4), "AUC", "<= 0.005", gap <= 0.005),
        _row(f"{name} - logreg test AUC", round(lift, 4), "AUC", ">= 0.01", lift >= 0.01),
        _row(
            f"{name} default-config training wall time ({deep['epochs_run']} epochs, "
            f"{deep['device']})",
            round(deep["wall_time_s"], 1),
            "s",
            "< 60",
            deep["wall_time_s"] < 60,
        ),
    ]


# --- scale ------------------------------------------------------------------------------


def _scale_child(rows: int, device_name: str) -> dict[str, Any]:
    """Generate ``rows`` rows and train one epoch of the default model (in this process)."""
    from ml.config import load_config
    from ml.data.generate import generate_features
    from ml.training.job import train

    root = Path(tempfile.mkdtemp(prefix="bench_scale_"))
    try:
        t = time.perf_counter()
        generate_features(root / "features", rows=rows, seed=42)
        gen_s = time.perf_counter() - t
        cfg = load_config(DEFAULT_CONFIG).replace(training={"epochs": 1, "device": device_name})
        t = time.perf_counter()
        metrics = train(
            cfg,
            features_dir=root / "features",
            run_dir=root / "run",
            log=lambda _: None,
            progress=False,
        ).metrics
        train_s = time.perf_counter() - t
    finally:
        shutil.rmtree(root, ignore_errors=True)
    rss_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {
        "rows": rows,
        "generate_s": gen_s,
        "train_s": train_s,
        "epoch_s": metrics["history"][0]["train_s"],
        "peak_rss_gb": rss_kb / 1024**2,
        "device": metrics["device"],
    }


def _scale(full: bool, device_name: str) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    results: dict[int, dict[str, Any]] = {}
    for rows in (1_000_000, 10_000_000) if full else (1_000_000,):
        proc = subprocess.run(
            [
                sys.executable,
                "-m",
                "benchmarks.bench_training",
                "--scale-child",
                str(rows),
                device_name,
            ],
            cwd=CHECKOUT,
            capture_output=True,
            text=True,
            check=False,
        )
        if proc.returncode != 0:
            out.append(_row(f"generate + 1 epoch at {rows:,} rows", "crashed", "", ok=False))
            print(proc.stderr[-3000:], file=sys.stderr)
            continue
        r = json.loads(proc.stdout.strip().splitlines()[-1])
        results[rows] = r
        label = f"{rows // 1_000_000}M rows"
        rss_ok = r["peak_rss_gb"] < 6.0 if rows >= 10_000_000 else None
        out += [
            _row(f"generate {label}", round(r["generate_s"], 1), "s"),
            _row(
                f"train 1 epoch {label} (load+encode+epoch+eval, {r['device']})",
                round(r["train_s"], 1),
                "s",
            ),
            _row(f"  of which the epoch {label}", round(r["epoch_s"], 1), "s"),
            _row(
                f"peak RSS generate + train {label}",
                round(r["peak_rss_gb"], 2),
                "GB",
                "< 6" if rows >= 10_000_000 else "",
                rss_ok,
            ),
        ]
    if 1_000_000 in results and 10_000_000 in results:
        a, b = results[1_000_000], results[10_000_000]
        ratio = (b["generate_s"] + b["train_s"]) / (a["generate_s"] + a["train_s"])
        out.append(
            _row("time 10M / time 1M (linear = 10)", round(ratio, 1), "x", "<= 15", ratio <= 15)
        )
    return out


def run(full: bool = False) -> list[dict[str, Any]]:
    """Run the parts named in ``BENCH_TRAINING_PARTS`` (default: all)."""
    wanted = [p.strip() for p in os.environ.get("BENCH_TRAINING_PARTS", ",".join(PARTS)).split(",")]
    unknown = [p for p in wanted if p and p not in PARTS]
    if unknown:
        raise ValueError(f"BENCH_TRAINING_PARTS has unknown part(s) {unknown}; use {PARTS}")
    device = os.environ.get("BENCH_TRAINING_DEVICE", "auto")
    rows: list[dict[str, Any]] = []
    if "throughput" in wanted:
        rows += _throughput(device)
    if "auc" in wanted:
        rows += _auc(device)
    if "scale" in wanted:
        rows += _scale(full, device)
    return rows


if __name__ == "__main__":
    if len(sys.argv) >= 3 and sys.argv[1] == "--scale-child":
        dev = sys.argv[3] if len(sys.argv) > 3 else "auto"
        print(json.dumps(_scale_child(int(sys.argv[2]), dev)))
    else:
        for r in run(full="--full" in sys.argv):
            print(r)
