"""Data generation, validation and import at scale: wall time and peak memory.

Each measurement runs in a fresh Python process so its peak RSS (``ru_maxrss``) is its
own:

- generating 1M rows of the default world (10M with ``--full``) and validating them;
- generating 2M rows of every other world (the sizes ``make bench-full`` trains on);
- importing a Criteo-layout TSV (label, 13 integer and 26 categorical columns, empty
  fields missing): 200k rows, and 10M rows with ``--full`` (target: peak RSS < 2 GB).

Targets from the issues: generation peak RSS under 6 GB at 10M rows and roughly linear in
rows; a world's 2M rows well under a minute; a 10M-row, 40-column import under 2 GB.
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
IMPORT_RSS_LIMIT_GB = 2.0
WORLD_ROWS = 2_000_000
WORLD_SECONDS = 60.0
# "Roughly linear": per-row time at 10M within 1.5x of the per-row time at 1M.
LINEARITY_LIMIT = 1.5

_CHILD = r"""
import json, resource, sys, time
sys.path.insert(0, {checkout!r})
start = time.perf_counter()
mode, out, rows, arg = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
extra = {{}}
if mode == "generate":
    from ml.data.generate import generate_features
    info = generate_features(out, rows=rows, seed=42, world=arg)
    extra = {{"base_ctr": info["base_ctr"], "oracle_test_auc": info["oracle_auc"]["test"]}}
elif mode == "validate":
    from ml.data.generate import world_spec
    from ml.data.validate import validate_features
    report = validate_features(out, world_spec(arg))
    extra = {{"rows": sum(s.rows for s in report.splits.values())}}
elif mode == "write_tsv":
    from benchmarks.bench_data import write_criteo_tsv
    write_criteo_tsv(arg, rows)
else:
    from ml.data.importer import ImportOptions, import_features
    report = import_features(ImportOptions(out_dir=out, sources=(arg,), format="criteo"))
    extra = {{"rows": sum(report["rows"].values())}}
print(json.dumps({{
    "seconds": time.perf_counter() - start,
    "peak_rss_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2,
    **extra,
}}))
"""


def write_criteo_tsv(path: str, rows: int, chunk: int = 500_000) -> None:
    """A Criteo-layout TSV: label, I1-I13 (counts, 20% empty), C1-C26 (ids, 10% empty)."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.csv as pacsv

    options = pacsv.WriteOptions(include_header=False, delimiter="\t")
    with pacsv.CSVWriter(path, _criteo_schema(), write_options=options) as writer:
        for index, start in enumerate(range(0, rows, chunk)):
            n = min(chunk, rows - start)
            rng = np.random.default_rng([7, index])
            cols: dict[str, Any] = {"label": pa.array((rng.random(n) < 0.25).astype(np.int64))}
            for i in range(1, 14):
                cols[f"I{i}"] = pa.array(rng.geometric(0.05, n) - 1, mask=rng.random(n) < 0.2)
            for i in range(1, 27):
                ids = pa.array(rng.zipf(1.3, n) % 1_000_003 * 2654435761 % (1 << 32))
                cols[f"C{i}"] = pa.array(
                    ids.cast(pa.string()),
                    mask=rng.random(n) < 0.1,
                )
            writer.write_table(pa.table(cols, schema=_criteo_schema()))


def _criteo_schema() -> Any:
    import pyarrow as pa

    fields = [pa.field("label", pa.int64())]
    fields += [pa.field(f"I{i}", pa.int64()) for i in range(1, 14)]
    fields += [pa.field(f"C{i}", pa.string()) for i in range(1, 27)]
    return pa.schema(fields)


def _child(mode: str, out: Path, rows: int, arg: str = "default") -> dict[str, Any]:
    code = _CHILD.format(checkout=str(CHECKOUT))
    proc = subprocess.run(
        [sys.executable, "-c", code, mode, str(out), str(rows), arg],
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


def _rss_row(name: str, gb: float, limit: float) -> dict[str, Any]:
    return _row(name, gb, "GB", f"< {limit:g} GB", gb < limit)


def _generate_rows(out: Path, full: bool) -> list[dict[str, Any]]:
    g1 = _child("generate", out, 1_000_000)
    rows = [
        _row("generate 1M rows: time", g1["seconds"], "s"),
        _row("generate 1M rows: throughput", 1_000_000 / g1["seconds"], "rows/s"),
        _rss_row("generate 1M rows: peak RSS", g1["peak_rss_gb"], RSS_LIMIT_GB),
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
        v10 = _child("validate", out, 10_000_000)
        rows += [
            _row("generate 10M rows: time", g10["seconds"], "s"),
            _rss_row("generate 10M rows: peak RSS", g10["peak_rss_gb"], RSS_LIMIT_GB),
            _row(
                "generate 10M vs 1M: per-row time ratio",
                ratio,
                "x",
                f"<= {LINEARITY_LIMIT:g} (roughly linear)",
                ratio <= LINEARITY_LIMIT,
            ),
            _row("validate 10M rows: time", v10["seconds"], "s"),
            _row("validate 10M rows: peak RSS", v10["peak_rss_gb"], "GB"),
        ]
    return rows


def _world_rows(tmp: Path) -> list[dict[str, Any]]:
    from ml.data.generate.catalog import world_names

    rows = []
    for world in world_names()[1:]:
        out = tmp / f"world_{world}"
        g = _child("generate", out, WORLD_ROWS, world)
        label = f"generate {WORLD_ROWS // 1_000_000}M rows, world {world}"
        rows += [
            _row(
                f"{label}: time",
                g["seconds"],
                "s",
                f"< {WORLD_SECONDS:g} s",
                g["seconds"] < WORLD_SECONDS,
            ),
            _row(f"{label}: base CTR", g["base_ctr"], ""),
            _row(f"{label}: oracle test AUC", g["oracle_test_auc"], ""),
        ]
        shutil.rmtree(out)
    return rows


def _import_rows(tmp: Path, rows: int, limit: float | None) -> list[dict[str, Any]]:
    tsv = tmp / "criteo.tsv"
    _child("write_tsv", tmp / "unused", rows, str(tsv))
    size_gb = tsv.stat().st_size / 1024**3
    result = _child("import", tmp / "imported", rows, str(tsv))
    shutil.rmtree(tmp / "imported")
    tsv.unlink()
    label = f"import {rows / 1e6:g}M-row Criteo TSV ({size_gb:.2f} GB, 40 columns)"
    rss = result["peak_rss_gb"]
    return [
        _row(f"{label}: time", result["seconds"], "s"),
        _row(f"{label}: throughput", rows / result["seconds"], "rows/s"),
        _rss_row(f"{label}: peak RSS", rss, limit)
        if limit is not None
        else _row(f"{label}: peak RSS", rss, "GB"),
    ]


def run(full: bool) -> list[dict[str, Any]]:
    tmp = Path(tempfile.mkdtemp(prefix="bench_data_"))
    try:
        rows = _generate_rows(tmp / "features", full)
        rows += _world_rows(tmp)
        rows += _import_rows(tmp, 200_000, None)
        if full:
            rows += _import_rows(tmp, 10_000_000, IMPORT_RSS_LIMIT_GB)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return rows
