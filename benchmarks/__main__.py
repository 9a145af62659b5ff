"""`make bench`: run every benchmark module, print one table, write JSON.

Each ``benchmarks/bench_*.py`` module exposes ``run(full: bool) -> list[dict]``; each
row has ``name``, ``value``, ``unit`` and optionally ``target`` (text) and ``ok``
(bool or None when there is no target). ``--only data,registry`` runs a subset.
Results go to ``benchmarks/results/bench-<timestamp>.json`` and ``latest.json``.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import pkgutil
import platform
import sys
import time
import traceback
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:,.4g}" if abs(value) < 1e5 else f"{value:,.0f}"
    return str(value)


def _torch_threads(n: int | None = None) -> int:
    """torch's CPU thread count (set to ``n`` first when given)."""
    import torch

    if n:
        torch.set_num_threads(n)
    return int(torch.get_num_threads())


def _cpu() -> dict[str, Any]:
    """The CPU's model and the instruction sets the figures depend on (fp32 matmuls run
    ~2x faster with AVX-512 than with AVX2; bf16 autocast is native or emulated)."""
    from ml.training.hardware import cpu_has_native_bf16, cpu_info

    info = cpu_info()
    flags = set(info.get("flags", "").split())
    simd = next((s for s in ("avx512f", "avx2", "avx") if s in flags), "unknown")
    model = info.get("model name") or platform.processor() or platform.machine()
    return {"cpu": model, "simd": simd, "native_bf16": cpu_has_native_bf16()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="make bench")
    parser.add_argument("--full", action="store_true", help="include the slow points (10M rows)")
    parser.add_argument(
        "--only", default="", help="comma-separated module suffixes, e.g. data,registry"
    )
    args = parser.parse_args(argv)
    wanted = {w.strip() for w in args.only.split(",") if w.strip()}
    modules = sorted(
        m.name for m in pkgutil.iter_modules([str(HERE)]) if m.name.startswith("bench_")
    )
    if wanted:
        modules = [m for m in modules if m.removeprefix("bench_") in wanted]
    rows: list[dict[str, Any]] = []
    failed = False
    threads = _torch_threads()
    cpu = _cpu()
    print(
        f"CPU: {cpu['cpu']}, {os.cpu_count()} cores, {cpu['simd']}, "
        f"native bf16: {cpu['native_bf16']} (the figures depend on it)",
        flush=True,
    )
    for name in modules:
        print(f"== {name}", flush=True)
        start = time.perf_counter()
        # Each group starts with the process's own thread count, whatever the last set.
        _torch_threads(threads)
        try:
            mod = importlib.import_module(f"benchmarks.{name}")
            for row in mod.run(full=args.full):
                rows.append({"group": name.removeprefix("bench_"), **row})
        except Exception:
            traceback.print_exc()
            rows.append(
                {
                    "group": name.removeprefix("bench_"),
                    "name": "ERROR",
                    "value": "crashed",
                    "unit": "",
                    "ok": False,
                }
            )
            failed = True
        print(f"   ({time.perf_counter() - start:.1f} s)", flush=True)

    header = ("group", "benchmark", "value", "unit", "target", "ok")
    table = [
        (
            r["group"],
            r["name"],
            _fmt(r["value"]),
            r.get("unit", ""),
            r.get("target", ""),
            {True: "yes", False: "NO", None: ""}[r.get("ok")],
        )
        for r in rows
    ]
    widths = [max(len(str(x)) for x in col) for col in zip(header, *table, strict=False)]
    line = "  ".join(f"{{:<{w}}}" for w in widths)
    print()
    print(line.format(*header))
    print(line.format(*("-" * w for w in widths)))
    for t in table:
        print(line.format(*t))

    out_dir = HERE / "results"
    out_dir.mkdir(exist_ok=True)
    stamp = time.strftime("%Y%m%d_%H%M%S")
    payload = {
        "created": stamp,
        "machine": {
            "platform": platform.platform(),
            "python": sys.version.split()[0],
            "cpus": os.cpu_count(),
            **cpu,
        },
        "full": args.full,
        "rows": rows,
    }
    for path in (out_dir / f"bench-{stamp}.json", out_dir / "latest.json"):
        path.write_text(json.dumps(payload, indent=2, default=str))
    print(f"\nJSON: {out_dir / 'latest.json'}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
