"""Scoring service and batch scoring benchmarks.

A default-architecture model (dcnv2, the config's defaults) trained for one epoch on
generated data is registered and promoted in a temporary registry, then:

- in process: ``Predictor.predict_proba`` on a prepared DataFrame of 1 and 256 rows
  (torch with 1 thread, like each service worker), median and p99;
- the service (``ctr-pipeline serve --workers 1 --threads 1``) measured from a separate
  load-generator process (``python -m testkit.loadgen``, one keep-alive connection,
  sequential requests): p50/p99 of 1-row and 256-row requests, HTTP, JSON parsing and
  validation included. Targets: 1-row p99 under 10 ms; a 256-row request within 2x the
  in-process ``predict_proba`` time;
- a canary (the registry's, picked up live): 1-row p99 of a control user and of a canary
  user against the p99 without one (target <= 1.1x);
- saturation: ``--workers N`` (N = CPU count), 256-row requests from 4N connections,
  rows/s, against N x the in-process rows/s of one thread;
- batch scoring (``ctr-pipeline predict`` as a process): 250k rows (quick) or 10M rows
  (full) of parquet in 16k-row chunks, rows/s and the process's peak memory.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

CHECKOUT = Path(__file__).resolve().parents[1]
NAME = "ctr_model"


def _row(name: str, value: Any, unit: str, target: str = "", ok: bool | None = None) -> dict:
    return {"name": name, "value": value, "unit": unit, "target": target, "ok": ok}


def _env(home: Path) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(CHECKOUT), "CTR_PIPELINE_HOME": str(home)}


def _setup(tmp: Path) -> tuple[Any, Any]:
    """Data, a trained default-architecture model, registered and promoted."""
    from ml.config import ModelConfig
    from ml.data.generate.world_default import DEFAULT_SPEC
    from ml.data.generate.writer import generate_features
    from ml.data.loading import load_split
    from ml.registry.model_registry import ModelRegistry
    from testkit.serving import train_run

    generate_features(tmp / "features", rows=20_000, seed=1)
    m = ModelConfig()
    model = {
        "name": m.name,
        "embedding_dim": m.embedding_dim,
        "hidden_units": list(m.hidden_units),
        "cross_layers": m.cross_layers,
        "dropout": m.dropout,
    }
    run = train_run(tmp / "features", tmp / "runs", model, epochs=1)
    registry = ModelRegistry(tmp / "models")
    registry.register(run, NAME)
    registry.register(run, NAME, force=True)  # v2, the same weights: bench_canary's canary
    registry.promote_to_production(NAME, "v1")
    df = load_split(tmp / "features", "test", DEFAULT_SPEC, with_label=False)
    return registry.load(NAME), df


def _body(df: Any, n: int, path: Path) -> Path:
    records = df.head(n).astype(object).to_dict("records")
    rows = [{k: (v.item() if hasattr(v, "item") else v) for k, v in r.items()} for r in records]
    path.write_text(json.dumps({"rows": rows}))
    return path


def _in_process(predictor: Any, df: Any, n: int, repeats: int) -> tuple[float, float]:
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as each service worker runs (--threads 1)
    frame = df.head(n)
    try:
        for _ in range(20):
            predictor.predict_proba(frame)
        times = []
        for _ in range(repeats):
            t = time.perf_counter()
            predictor.predict_proba(frame)
            times.append(time.perf_counter() - t)
    finally:
        torch.set_num_threads(threads)
    times.sort()
    return 1000 * times[len(times) // 2], 1000 * times[int(0.99 * len(times))]


def _serve(tmp: Path, workers: int, port: int) -> Any:
    from testkit.serving import start_server, wait_ready

    args = ["--registry", str(tmp / "models"), "--log-dir", str(tmp / f"logs{workers}")]
    args += ["--port", str(port), "--workers", str(workers), "--threads", "1"]
    proc = start_server(args, _env(tmp), tmp / f"server{workers}.log")
    wait_ready(f"http://127.0.0.1:{port}", proc, tmp / f"server{workers}.log")
    return proc


def _load(url: str, body: Path, home: Path, **kw: Any) -> dict[str, Any]:
    args = [sys.executable, "-m", "testkit.loadgen", url, str(body)]
    for k, v in kw.items():
        args += [f"--{k}", str(v)]
    out = subprocess.run(args, env=_env(home), capture_output=True, text=True, check=True)
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def bench_latency(tmp: Path, predictor: Any, df: Any, full: bool) -> list[dict]:
    from testkit.serving import free_port, stop_server

    repeats = 2000 if full else 500
    rows: list[dict] = []
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    proc = _serve(tmp, 1, port)
    try:
        for n in (1, 256):
            body = _body(df, n, tmp / f"body{n}.json")
            ip50, ip99 = _in_process(predictor, df, n, repeats)
            _load(url, body, tmp, connections=1, requests=100)  # warm-up
            s = _load(url, body, tmp, connections=1, requests=repeats)
            rows.append(_row(f"in-process predict_proba {n} row(s), p50", round(ip50, 3), "ms"))
            rows.append(_row(f"in-process predict_proba {n} row(s), p99", round(ip99, 3), "ms"))
            rows.append(_row(f"POST /predict {n} row(s), p50", round(s["p50_ms"], 3), "ms"))
            if n == 1:
                rows.append(
                    _row(
                        "POST /predict 1 row, p99",
                        round(s["p99_ms"], 3),
                        "ms",
                        "< 10 ms",
                        s["p99_ms"] < 10 and s["failed"] == 0,
                    )
                )
            else:
                rows.append(_row("POST /predict 256 rows, p99", round(s["p99_ms"], 3), "ms"))
                ratio = s["p50_ms"] / ip50
                rows.append(
                    _row(
                        "POST /predict 256 rows p50 / in-process p50",
                        round(ratio, 3),
                        "x",
                        "<= 2x",
                        ratio <= 2.0 and s["failed"] == 0,
                    )
                )
    finally:
        stop_server(proc)
    return rows


def _keyed_body(df: Any, path: Path, variant: str, traffic: float) -> Path:
    """A 1-row body whose ``key`` the canary's split sends to ``variant``."""
    from ml.serving.service.settings import choose_variant

    key = next(
        f"user-{i}"
        for i in range(10_000)
        if choose_variant(f"user-{i}", f"{NAME}:v2", traffic) == variant
    )
    body = json.loads(_body(df, 1, path).read_text())
    path.write_text(json.dumps({**body, "key": key}))
    return path


def bench_canary(tmp: Path, df: Any, full: bool) -> list[dict]:
    """1-row p99 without a canary, then with the registry's canary (v2 at 50%) picked up
    live: requests routed to the control and to the canary. Target: <= 1.1x."""
    import urllib.request

    from ml.registry.model_registry import ModelRegistry
    from testkit.serving import free_port, stop_server

    registry = ModelRegistry(tmp / "models")
    repeats = 2000 if full else 500
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    proc = _serve(tmp, 1, port)
    try:
        control = _keyed_body(df, tmp / "control.json", "control", 0.5)
        candidate = _keyed_body(df, tmp / "candidate.json", "candidate", 0.5)
        _load(url, control, tmp, connections=1, requests=100)
        base = _load(url, control, tmp, connections=1, requests=repeats)
        registry.set_canary(NAME, "v2", 0.5, reason="bench_serving")
        deadline = time.monotonic() + 60
        while json.loads(urllib.request.urlopen(f"{url}/readyz").read())["candidate"] is None:
            if time.monotonic() > deadline:
                raise RuntimeError("the canary was not picked up within 60 s")
            time.sleep(0.05)
        _load(url, candidate, tmp, connections=1, requests=100)
        with_control = _load(url, control, tmp, connections=1, requests=repeats)
        with_canary = _load(url, candidate, tmp, connections=1, requests=repeats)
    finally:
        registry.clear_canary(NAME, reason="bench_serving")
        stop_server(proc)
    worst = max(with_control["p99_ms"], with_canary["p99_ms"])
    ratio = worst / base["p99_ms"]
    return [
        _row("POST /predict 1 row, p99, no canary", round(base["p99_ms"], 3), "ms"),
        _row("... canary v2 at 50%: control user", round(with_control["p99_ms"], 3), "ms"),
        _row("... canary v2 at 50%: canary user", round(with_canary["p99_ms"], 3), "ms"),
        _row("p99 with a canary / without", round(ratio, 3), "x", "<= 1.1x", ratio <= 1.1),
    ]


def bench_saturation(tmp: Path, predictor: Any, df: Any, full: bool) -> list[dict]:
    from testkit.serving import free_port, stop_server

    workers = os.cpu_count() or 1
    ip50, _ = _in_process(predictor, df, 256, 200)
    port = free_port()
    proc = _serve(tmp, workers, port)
    try:
        body = _body(df, 256, tmp / "body256.json")
        url = f"http://127.0.0.1:{port}"
        _load(url, body, tmp, connections=2 * workers, seconds=2)
        s = _load(url, body, tmp, connections=4 * workers, seconds=20 if full else 8)
    finally:
        stop_server(proc)
    limit = workers * 256 / (ip50 / 1000)
    return [
        _row(f"saturation, {workers} workers, 256-row requests", round(s["rows_per_s"]), "rows/s"),
        _row(f"  in-process limit ({workers} x 1-thread predict_proba)", round(limit), "rows/s"),
        _row("  failed requests at saturation", s["failed"], "", "0", s["failed"] == 0),
    ]


def bench_batch(tmp: Path, df: Any, full: bool) -> list[dict]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = 10_000_000 if full else 250_000
    base = pa.Table.from_pandas(df, preserve_index=False)
    table = pa.concat_tables([base] * max(1, 100_000 // len(base))).combine_chunks()
    src = tmp / "batch.parquet"
    with pq.ParquetWriter(src, table.schema) as writer:  # row groups of ~100k rows
        written = 0
        while written < rows:
            part = table.slice(0, min(len(table), rows - written))
            writer.write_table(part)
            written += len(part)
    out = tmp / "scores.parquet"
    code = (
        "import json, resource, sys; from ml.cli import main; rc = main(sys.argv[1:]); "
        "print(json.dumps({'maxrss_kb': resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}));"
        " sys.exit(rc)"
    )
    args = [sys.executable, "-c", code, "predict", "--registry", str(tmp / "models")]
    args += ["--model", NAME, "--input", str(src), "--output", str(out), "--json"]
    start = time.perf_counter()
    proc = subprocess.run(args, env=_env(tmp), capture_output=True, text=True, check=True)
    wall = time.perf_counter() - start
    summary_line, rss_line = proc.stdout.strip().splitlines()[-2:]
    summary = json.loads(summary_line)
    peak_mb = json.loads(rss_line)["maxrss_kb"] / 1024
    label = f"{rows // 1_000_000}M" if rows >= 1_000_000 else f"{rows // 1000}k"
    return [
        _row(f"batch scoring {label} rows (ctr-pipeline predict, wall)", round(wall, 1), "s"),
        _row(f"  {label} rows throughput", summary["rows_per_s"], "rows/s"),
        _row(
            f"  {label} rows peak memory of the process",
            round(peak_mb),
            "MB",
            "bounded (< 2 GB)",
            peak_mb < 2048,
        ),
    ]


def run(full: bool) -> list[dict]:
    with tempfile.TemporaryDirectory(prefix="bench_serving_") as d:
        tmp = Path(d)
        predictor, df = _setup(tmp)
        rows = bench_latency(tmp, predictor, df, full)
        rows += bench_canary(tmp, df, full)
        rows += bench_saturation(tmp, predictor, df, full)
        rows += bench_batch(tmp, df, full)
        return rows
