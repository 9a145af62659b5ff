"""Streaming training (``data.streaming``, issue 23): throughput, AUC and peak memory.

``make bench-full`` only (``make bench`` returns no rows: minutes at the smallest size).
Each measurement runs in a fresh Python process so its peak RSS is its own:

- 2M rows of the default world, one DCN-V2 epoch in memory and streamed: streaming's
  samples/s at least 0.8x the in-memory trainer's, test AUC within 0.002;
- ``$BENCH_STREAM_ROWS`` rows (default 50M) streamed, one epoch: peak RSS at most 3 GB,
  wall time per row within 1.5x of the 2M-row run's (linear), and the in-memory path's
  projected need (``ml.training.data_mode.in_memory_need``) beside it.

Sizes can be lowered for a quick look: ``BENCH_STREAM_ROWS=4000000 make bench-full``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

CHECKOUT = Path(__file__).resolve().parent.parent
SMALL_ROWS = 2_000_000
RSS_LIMIT_GB = 3.0
THROUGHPUT_RATIO = 0.8
AUC_TOLERANCE = 0.002
LINEARITY_LIMIT = 1.5

_CHILD = r"""
import json, resource, sys, time
sys.path.insert(0, {checkout!r})
mode, feats, runs = sys.argv[1], sys.argv[2], sys.argv[3]
start = time.perf_counter()
extra = {{}}
if mode == "generate":
    from ml.data.generate.writer import generate_features
    generate_features(feats, rows=int(runs), seed=42)
else:
    from ml.config import load_config
    from ml.training.job import train
    from ml.training import data_mode
    cfg = load_config({config!r})
    cfg = cfg.replace(
        data={{"features_dir": feats, "streaming": mode == "stream"}},
        model={{"name": "dcnv2"}},
        training={{"epochs": 1, "patience": 1}},
        output={{"runs_dir": runs}},
    )
    encoded, decode = data_mode.in_memory_need(cfg, feats, ("train", "val", "test"))
    m = train(cfg, log=lambda line: None, progress=False).metrics
    extra = {{k: m[k] for k in ("samples_per_sec", "test_auc", "train_time_s")}}
    extra["in_memory_need_gb"] = (encoded + decode) / 1e9
print(json.dumps({{
    "seconds": time.perf_counter() - start,
    "peak_rss_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2,
    **extra,
}}))
"""


def _child(mode: str, feats: Path, arg: str, home: Path) -> dict[str, Any]:
    code = _CHILD.format(checkout=str(CHECKOUT), config=str(CHECKOUT / "config/model_config.yaml"))
    env = {**os.environ, "CTR_PIPELINE_HOME": str(home)}
    proc = subprocess.run(
        [sys.executable, "-c", code, mode, str(feats), arg],
        capture_output=True,
        text=True,
        check=False,
        env=env,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"bench_streaming {mode} failed:\n{proc.stderr[-2000:]}")
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def _row(name: str, value: float, unit: str, target: str = "", ok: bool | None = None) -> dict:
    return {"name": name, "value": round(value, 4), "unit": unit, "target": target, "ok": ok}


def _label(rows: int) -> str:
    return f"{rows / 1e6:g}M rows"


def run(full: bool) -> list[dict[str, Any]]:
    if not full:
        return []
    big = int(os.environ.get("BENCH_STREAM_ROWS", 50_000_000))
    tmp = Path(tempfile.mkdtemp(prefix="bench_streaming_"))
    out: list[dict[str, Any]] = []
    try:
        feats = tmp / "features"
        _child("generate", feats, str(SMALL_ROWS), tmp)
        mem = _child("memory", feats, str(tmp / "runs"), tmp)
        st = _child("stream", feats, str(tmp / "runs"), tmp)
        ratio = st["samples_per_sec"] / mem["samples_per_sec"]
        gap = abs(st["test_auc"] - mem["test_auc"])
        small = _label(SMALL_ROWS)
        out += [
            _row(f"stream {small}: samples/s", st["samples_per_sec"], "rows/s"),
            _row(f"in memory {small}: samples/s", mem["samples_per_sec"], "rows/s"),
            _row(
                f"stream vs in memory {small}: throughput",
                ratio,
                "x",
                f">= {THROUGHPUT_RATIO:g}",
                ratio >= THROUGHPUT_RATIO,
            ),
            _row(
                f"stream vs in memory {small}: |test AUC gap|",
                gap,
                "",
                f"< {AUC_TOLERANCE:g}",
                gap < AUC_TOLERANCE,
            ),
            _row(f"stream {small}: peak RSS", st["peak_rss_gb"], "GB"),
            _row(f"in memory {small}: peak RSS", mem["peak_rss_gb"], "GB"),
        ]
        if big > SMALL_ROWS:
            shutil.rmtree(feats)
            shutil.rmtree(tmp / "experiments", ignore_errors=True)  # the 2M-row cache
            _child("generate", feats, str(big), tmp)
            st_big = _child("stream", feats, str(tmp / "runs"), tmp)
            per_row = (st_big["seconds"] / big) / (st["seconds"] / SMALL_ROWS)
            label = _label(big)
            out += [
                _row(
                    f"stream {label}: peak RSS",
                    st_big["peak_rss_gb"],
                    "GB",
                    f"<= {RSS_LIMIT_GB:g} GB",
                    st_big["peak_rss_gb"] <= RSS_LIMIT_GB,
                ),
                _row(f"in memory {label}: projected need", st_big["in_memory_need_gb"], "GB"),
                _row(f"stream {label}: wall time", st_big["seconds"], "s"),
                _row(
                    f"stream {label} vs {small}: per-row time ratio",
                    per_row,
                    "x",
                    f"<= {LINEARITY_LIMIT:g} (linear)",
                    per_row <= LINEARITY_LIMIT,
                ),
                _row(f"stream {label}: test AUC", st_big["test_auc"], ""),
            ]
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out
