"""Data generation and validation at scale: wall time and peak memory.

Each measurement runs in a fresh Python process so its peak RSS (``ru_maxrss``) is its
own: generating 1M rows (and 10M with ``--full``) and validating the 1M-row output.
Targets from the issue: peak RSS under 6 GB at 10M rows, time roughly linear in rows.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

CHECKOUT = Path(__file__).resolve().parent.parent
RSS_LIMIT_GB = 6.0
# "Roughly linear": per-row time at 10M within 1.5x of the per-row time at 1M.
LINEARITY_LIMIT = 1.5

_CHILD = r"""
import json, resource, sys, time
sys.path.insert(0, {checkout!r})
start = time.perf_counter()
mode, out, rows = sys.argv[1], sys.argv[2], int(sys.argv[3])
if mode == "generate":
    from ml.data.generate import generate_features
    info = generate_features(out, rows=rows, seed=42, overwrite=True)
    extra = {{"base_ctr": info["base_ctr"], "oracle_test_auc": info["oracle_auc"]["test"]}}
else:
    from ml.data.schema import DEFAULT_SPEC
    from ml.data.validate import validate_features
    report = validate_features(out, DEFAULT_SPEC)
    extra = {{"rows": sum(s.rows for s in report.splits.values())}}
print(json.dumps({{
    "seconds": time.perf_counter() - start,
    "peak_rss_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2,
    **extra,
}}))
"""


def _child(mode: str, out: Path, rows: int) -> dict[str, Any]:
    code = _CHILD.format(checkout=str(CHECKOUT))
    proc = subprocess.run(
        [sys.executable, "-c", code, mode, str(out), str(rows)],
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"bench_data {mode} {rows} rows failed:\n{proc.stderr[-2000:]}")
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def _row(name: str, value: float, unit: str, target: str = "", ok: bool | None = None) -> dict:
    return {"name": name, "value": round(value, 3), "unit": unit, "target": target, "ok": ok}


def run(full: bool) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    tmp = Path(tempfile.mkdtemp(prefix="bench_data_"))
    try:
        out = tmp / "features"
        g1 = _child("generate", out, 1_000_000)
        rows += [
            _row("generate 1M rows: time", g1["seconds"], "s"),
            _row("generate 1M rows: throughput", 1_000_000 / g1["seconds"], "rows/s"),
            _row(
                "generate 1M rows: peak RSS",
                g1["peak_rss_gb"],
                "GB",
                f"< {RSS_LIMIT_GB:g} GB",
                g1["peak_rss_gb"] < RSS_LIMIT_GB,
            ),
            _row(
                "generate 1M rows: base CTR",
                g1["base_ctr"],
                "",
                "0.10-0.30",
                0.10 <= g1["base_ctr"] <= 0.30,
            ),
            _row("generate 1M rows: oracle test AUC", g1["oracle_test_auc"], ""),
        ]
        v1 = _child("validate", out, 1_000_000)
        rows += [
            _row("validate 1M rows: time", v1["seconds"], "s"),
            _row("validate 1M rows: peak RSS", v1["peak_rss_gb"], "GB"),
        ]
        if full:
            shutil.rmtree(out)
            g10 = _child("generate", out, 10_000_000)
            ratio = g10["seconds"] / (10 * g1["seconds"])
            rows += [
                _row("generate 10M rows: time", g10["seconds"], "s"),
                _row(
                    "generate 10M rows: peak RSS",
                    g10["peak_rss_gb"],
                    "GB",
                    f"< {RSS_LIMIT_GB:g} GB",
                    g10["peak_rss_gb"] < RSS_LIMIT_GB,
                ),
                _row(
                    "generate 10M vs 1M: per-row time ratio",
                    ratio,
                    "x",
                    f"<= {LINEARITY_LIMIT:g} (roughly linear)",
                    ratio <= LINEARITY_LIMIT,
                ),
            ]
            v10 = _child("validate", out, 10_000_000)
            rows += [
                _row("validate 10M rows: time", v10["seconds"], "s"),
                _row("validate 10M rows: peak RSS", v10["peak_rss_gb"], "GB"),
            ]
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return rows
