"""Streaming training end to end (ml.training.job with ``data.streaming``): the same
vocabularies, rows and AUC as in memory, the shard cache reused across runs, a run killed
mid-epoch resumed at its batch, and peak memory bounded where the in-memory path's is not."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch

from ml.config import Config
from ml.training.job import train

pytestmark = pytest.mark.slow
CHECKOUT = Path(__file__).resolve().parents[2]


def _quiet(_: str) -> None:
    pass


def test_streaming_trains_like_in_memory_and_reuses_its_cache(cfg: Config, home: Path) -> None:
    # logistic regression is convex: fitted exactly in memory (ml.training.linear) and by
    # Adam close to the same optimum when streamed, the two paths give the same AUC
    cfg = cfg.replace(
        model={"name": "logreg"},
        training={
            "epochs": 20,
            "patience": 20,
            "learning_rate": 0.01,
            "monitor": "val_logloss",
            "weight_decay": 3e-4,
        },
    )
    memory = train(cfg.replace(data={"streaming": False}), run_dir=home / "m", log=_quiet)
    lines: list[str] = []
    streamed_cfg = cfg.replace(data={"streaming": True})
    streamed = train(streamed_cfg, run_dir=home / "s", log=lines.append)
    a, b = memory.metrics, streamed.metrics
    assert (a["data_loading"], b["data_loading"]) == ("in_memory", "streaming")
    assert any(line.startswith("Data loading: streaming") for line in lines)
    assert a["vocabulary"] == b["vocabulary"]  # sizes and OOV shares
    pre = [
        torch.load(r.run_dir / "model_best.pt", weights_only=True)["preprocessor"]
        for r in (memory, streamed)
    ]
    assert pre[0] == pre[1]
    assert a["linear_fit"]["method"] == "exact" and "linear_fit" not in b
    assert any(line.startswith("Logistic regression: mini-batch Adam (streaming") for line in lines)
    assert {h["train_samples"] for h in a["history"] + b["history"]} == {a["rows"]["train"]}
    assert a["rows"] == b["rows"] and a["base_ctr"] == pytest.approx(b["base_ctr"])
    assert abs(a["test_auc"] - b["test_auc"]) < 0.002, (a["test_auc"], b["test_auc"])
    lines.clear()
    train(streamed_cfg, run_dir=home / "s2", log=lines.append)
    assert any(line.startswith("Shard cache reused") for line in lines)


def _checkpoint_position(path: Path) -> Any:
    try:
        return torch.load(path, weights_only=True)["trainer"].get("position")
    except Exception:  # being written
        return None


def test_a_streamed_run_killed_mid_epoch_resumes_at_its_batch(cfg: Config, home: Path) -> None:
    cfg = cfg.replace(
        model={"name": "logreg"},
        data={"streaming": True},
        training={"epochs": 2, "patience": 2, "batch_size": 32},
    )
    config = home / "stream.yaml"
    config.write_text(cfg.to_yaml())
    full = train(cfg, run_dir=home / "full", log=_quiet).metrics
    run = home / "killed"
    env = {**os.environ, "CTR_TRAIN_CHECKPOINT_S": "0", "CTR_PIPELINE_HOME": str(home)}
    cmd = [sys.executable, "-m", "ml", "train", "--config", str(config), "--run-dir", str(run)]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and proc.poll() is None:
            pos = _checkpoint_position(run / "checkpoint_last.pt")
            if pos and pos["epoch"] == 2 and pos["batch"] >= 5:
                proc.send_signal(signal.SIGKILL)
                break
            time.sleep(0.02)
    finally:
        proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL, "the run ended before it could be killed"
    lines: list[str] = []
    resumed = train(cfg, run_dir=run, log=lines.append)
    assert any(line.startswith("Resuming epoch 2 at batch") for line in lines)
    assert resumed.metrics["val_auc"] == full["val_auc"]
    assert resumed.metrics["test_auc"] == full["test_auc"]


_PEAK_SCRIPT = textwrap.dedent(
    """
    import json, sys
    import torch
    from pathlib import Path
    from ml.config import config_from_dict
    from ml.training import prepare, stream_split

    mode, feats = sys.argv[1], sys.argv[2]
    spec = json.loads(sys.argv[3])
    cfg = config_from_dict({"features": spec, "data": {"features_dir": feats}})
    cpu = torch.device("cpu")

    def rss(key):
        for line in open("/proc/self/status"):
            if line.startswith(key):
                return int(line.split()[1]) * 1024

    Path("/proc/self/clear_refs").write_text("5")  # reset the peak to now
    base = rss("VmRSS:")
    names = ("train", "val", "test")
    if mode == "memory":
        pre, splits = prepare.encode_splits(cfg, feats, cpu, None, names)
        perm = torch.randperm(len(splits["train"]))
        for lo in range(0, len(perm), 4096):
            splits["train"].batch(perm[lo : lo + 4096])
    else:
        pre, splits = prepare.stream_splits(cfg, feats, "d", cpu, None, names, print)
        train = splits["train"]
        train.chunk_rows, train.buffer_chunks = 4096, 4
        for _ in train.train_batches(4096, seed=0, epoch=1):
            pass
        for _ in splits["val"].eval_chunks(4096):
            pass
    print(json.dumps({"peak": rss("VmHWM:") - base}))
    """
)


def _wide_features(root: Path, rows: int) -> dict[str, Any]:
    """Integer ids and float numerics, ``rows`` train rows (val, test a tenth each)."""
    rng = np.random.default_rng(0)
    cats = [f"c{i}" for i in range(12)]
    nums = [f"n{i}" for i in range(6)]
    for split, n in (("train", rows), ("val", rows // 10), ("test", rows // 10)):
        cols: dict[str, Any] = {"click": rng.integers(0, 2, n).astype(np.int8)}
        cols |= {c: rng.integers(0, 5000, n) for c in cats}
        cols |= {c: rng.normal(size=n) for c in nums}
        (root / split).mkdir(parents=True)
        pq.write_table(pa.table(cols), root / split / "data.parquet", row_group_size=65536)
    return {"label": "click", "categorical": cats, "numeric": nums}


def test_streaming_peak_memory_stays_under_a_cap_the_in_memory_path_exceeds(
    home: Path, tmp_path: Path
) -> None:
    feats = tmp_path / "wide"
    spec = _wide_features(feats, 600_000)
    env = {**os.environ, "CTR_PIPELINE_HOME": str(home)}
    peaks = {}
    for mode in ("memory", "stream"):
        out = subprocess.run(
            [sys.executable, "-c", _PEAK_SCRIPT, mode, str(feats), json.dumps(spec)],
            env=env,
            capture_output=True,
            text=True,
            check=True,
            cwd=CHECKOUT,
        )
        peaks[mode] = json.loads(out.stdout.strip().splitlines()[-1])["peak"]
    # bytes above the process's RSS after its imports; measured under load: in memory
    # ~400 MB, streamed ~135 MB (mostly fixed: arrow's pool, one slice's decoding)
    cap = 220e6
    assert peaks["stream"] < cap < peaks["memory"], peaks
