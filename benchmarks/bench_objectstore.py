"""The object-store group: the registry on a real S3 server (SeaweedFS, testkit/s3.py).

- ``register_100MB``: registering a run with a 100 MB checkpoint to ``s3://`` vs a plain
  upload of the same file (boto3 ``upload_file`` when boto3 is installed, else obstore's
  ``put``, the client the registry uses): paired trials, target ≤ 1.3×.
- ``list_models`` / ``get_latest_version`` at 10,000 versions: one index object, never a
  LIST of the versions: target ≤ 200 ms.
- contention: 16 processes × 5 registrations → v1..v80, no duplicate, no failed call;
  two processes promoting/rolling back 100 times each while a third resolves ``current``
  → history equals state, 0 misses.
- ``epoch_2M``: one training epoch on 2M train rows (validate + fingerprint, load and
  encode every split, one epoch, val scoring) with the features in the bucket vs on
  local disk, runs directories beside them; paired, target ≤ 1.2×.

Parts (``BENCH_OBJECTSTORE_PARTS``, comma-separated; default all; the epoch's size and
paired trials: ``BENCH_EPOCH_ROWS``, ``BENCH_EPOCH_TRIALS``): ``register``,
``listing``, ``contention``, ``flips``, ``epoch``. ``BENCH_EPOCH_ROWS`` sets the train
rows of ``epoch`` (default 2,000,000).
"""

from __future__ import annotations

import multiprocessing
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from ml import storage
from ml.registry.model_registry import ModelRegistry
from ml.registry.objectstore import Keys, dumps, empty_index
from ml.storage.url import ObjectUrl
from testkit import s3 as s3kit
from testkit.registry import history_problems, make_run_dir

NAME = "ctr_model"


def _row(name: str, value: Any, unit: str, target: str = "", ok: bool | None = None) -> dict:
    return {"name": name, "value": value, "unit": unit, "target": target, "ok": ok}


def _plain_upload(url: str) -> tuple[str, Any]:
    """The baseline: boto3's upload_file when installed, else obstore's put."""
    try:
        import boto3  # type: ignore[import-untyped]
    except ImportError:
        store = storage.open_store(url)
        return "obstore put", lambda src, key: store.upload_file(key, src)
    parsed = ObjectUrl.parse(url)
    client = boto3.client("s3")
    return "boto3 upload_file", lambda src, key: client.upload_file(
        str(src), parsed.bucket, parsed.key(key)
    )


def bench_register(url: str, tmp: Path, size_mb: int = 100, trials: int = 5) -> list[dict]:
    run = make_run_dir(tmp / "runs" / "big", os.urandom(size_mb << 20))
    src = run / "model_best.pt"
    reg = ModelRegistry(f"{url}/copy_models")
    reg.register(run)  # warm-up: torch import, library versions, git commit
    label, upload = _plain_upload(url)
    up_times, reg_times = [], []
    for i in range(trials):
        t = time.perf_counter()
        upload(src, f"plain/{i}.bin")
        up_times.append(time.perf_counter() - t)
        t = time.perf_counter()
        reg.register(run, force=True)
        reg_times.append(time.perf_counter() - t)
    ratio = statistics.median(r / u for r, u in zip(reg_times, up_times, strict=True))
    return [
        _row(
            f"{label} {size_mb} MB to S3 (median of {trials})",
            round(statistics.median(up_times), 3),
            "s",
        ),
        _row(
            f"register {size_mb} MB model to s3:// (median of {trials})",
            round(statistics.median(reg_times), 3),
            "s",
        ),
        _row(
            f"register / {label}, median of paired ratios",
            round(ratio, 3),
            "x",
            "<= 1.3",
            ratio <= 1.3,
        ),
    ]


def bench_listing(url: str, versions: int = 10_000) -> list[dict]:
    """10k published versions as the registry records them (the index with a run source
    and a lineage key per version); a LIST of 10k keys is what the index avoids."""
    base = f"{url}/list_models"
    store = storage.open_store(base)
    keys = Keys(store)
    index = {
        **empty_index(),
        "staging": list(range(1, versions + 1)),
        "last_claim": versions,
        "sources": {f"{n:016x}": n for n in range(1, versions + 1)},
        "lineage": {str(n): f"{n * 7:016x}" for n in range(1, versions + 1)},
    }
    store.put(keys.meta(NAME, "index.json"), dumps(index))
    reg = ModelRegistry(base)
    expected = [f"v{n}" for n in range(1, versions + 1)]
    checks = {
        "list_models": (lambda: reg.list_models("staging"), lambda got: got == {NAME: expected}),
        "get_latest_version": (
            lambda: reg.get_latest_version(NAME, "staging"),
            lambda got: got == expected[-1],
        ),
    }
    rows = []
    for label, (call, correct) in checks.items():
        ok = bool(correct(call()))
        samples = []
        for _ in range(7):
            t = time.perf_counter()
            call()
            samples.append((time.perf_counter() - t) * 1000)
        ms = statistics.median(samples)
        rows.append(
            _row(
                f"{label} on s3://, {versions:,} versions",
                round(ms, 1),
                "ms",
                "<= 200 ms",
                ok and ms <= 200,
            )
        )
    return rows


def bench_contention(url: str, tmp: Path, procs: int = 16, each: int = 5) -> list[dict]:
    base = f"{url}/contention"
    runs = [
        [str(make_run_dir(tmp / "cruns" / f"p{p}r{r}", os.urandom(4 << 10))) for r in range(each)]
        for p in range(procs)
    ]
    ctx = multiprocessing.get_context("spawn")  # never fork a process using obstore
    t = time.perf_counter()
    failed = 0
    got: list[str] = []
    with ctx.Pool(procs) as pool:
        jobs = [pool.apply_async(s3kit.register_all, (base, NAME, r)) for r in runs]
        for job in jobs:
            try:
                got += job.get(timeout=600)
            except Exception:
                failed += 1
    seconds = time.perf_counter() - t
    want = [f"v{n}" for n in range(1, procs * each + 1)]
    ok = failed == 0 and sorted(got, key=lambda v: int(v[1:])) == want
    return [
        _row(
            f"{procs} processes x {each} registrations on s3:// -> v1..v{procs * each} "
            f"(failed calls {failed}, duplicates {len(got) - len(set(got))})",
            round(seconds, 1),
            "s",
            "v1..vN, 0 failed, 0 duplicates",
            ok,
        )
    ]


def bench_flips(url: str, tmp: Path, rounds: int = 100) -> list[dict]:
    base = f"{url}/flips"
    reg = ModelRegistry(base)
    versions = [
        reg.register(make_run_dir(tmp / "fruns" / f"r{i}", os.urandom(4 << 10)), NAME).version
        for i in range(4)
    ]
    reg.promote_to_production(NAME, versions[0])
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(3) as pool:
        watcher = pool.apply_async(s3kit.watch_current, (base, NAME, 20.0))
        flips = [
            pool.apply_async(s3kit.promote_and_roll_back, (base, NAME, versions, rounds, seed))
            for seed in (1, 2)
        ]
        failed = [f for job in flips for f in job.get(timeout=900)]
        reads, misses = watcher.get(timeout=900)
    problems = history_problems(reg, NAME)
    events = len([e for e in reg.history(NAME) if e["event"] in ("promote", "rollback")])
    return [
        _row(
            f"2 processes x {rounds} promote/rollback on s3:// ({events} events): failed calls, "
            f"history != state",
            len(failed) + len(problems),
            "count",
            "0",
            not failed and not problems,
        ),
        _row(
            f"readers resolving current during them: misses of {reads} reads",
            misses,
            "count",
            "0",
            misses == 0,
        ),
    ]


def bench_epoch(url: str, tmp: Path, train_rows: int = 2_000_000, trials: int = 2) -> list[dict]:
    """One epoch reading the features from the bucket vs from local disk (paired)."""
    from ml.config import load_config
    from ml.data.generate.writer import DEFAULT_SPLIT, generate_features
    from ml.paths import DEFAULT_CONFIG
    from ml.training.job import train

    local = tmp / "features"
    generate_features(local, rows=round(train_rows / DEFAULT_SPLIT[0]), seed=1)
    remote = f"{url}/features"
    store = storage.open_store(remote)
    for path in sorted(local.rglob("*")):
        if path.is_file():
            store.upload_file(path.relative_to(local).as_posix(), path)
    base = load_config(Path(__file__).resolve().parent.parent / DEFAULT_CONFIG)
    # One family's epoch (model auto would train several candidates).
    base = base.replace(model={"name": "dcnv2"}, training={"epochs": 1})

    def one(features: str, runs: str) -> float:
        cfg = base.replace(data={"features_dir": features}, output={"runs_dir": runs})
        t = time.perf_counter()
        train(cfg, evaluate_test=False, log=lambda _: None)
        return time.perf_counter() - t

    one(str(local), str(tmp / "runs"))  # warm-up: imports, page cache, the code digest
    ratios, disk, bucket = [], [], []
    for i in range(trials):
        disk.append(one(str(local), str(tmp / "runs")))
        bucket.append(one(remote, f"{url}/runs"))
        ratios.append(bucket[-1] / disk[-1])
        del i
    ratio = statistics.median(ratios)
    return [
        _row(f"epoch {train_rows:,} rows: local disk", round(statistics.median(disk), 2), "s"),
        _row(f"epoch {train_rows:,} rows: s3://", round(statistics.median(bucket), 2), "s"),
        _row(
            "epoch: bucket / local (median of paired)", round(ratio, 3), "x", "<= 1.2", ratio <= 1.2
        ),
    ]


PARTS = ("register", "listing", "contention", "flips", "epoch")


def run(full: bool) -> list[dict]:
    tmp = Path(tempfile.mkdtemp(prefix="bench_objectstore_"))
    server = s3kit.S3Server(tmp / "s3").start()
    saved = {k: os.environ.get(k) for k in server.env()}
    os.environ.update(server.env())
    os.environ.setdefault("CTR_PIPELINE_HOME", str(tmp))
    url = f"s3://{server.bucket}/bench"
    try:
        parts = [p for p in os.environ.get("BENCH_OBJECTSTORE_PARTS", "").split(",") if p]
        parts = parts or list(PARTS)
        rows: list[dict] = []
        if "register" in parts:
            rows += bench_register(url, tmp)
        if "listing" in parts:
            rows += bench_listing(url)
        if "contention" in parts:
            rows += bench_contention(url, tmp)
        if "flips" in parts:
            rows += bench_flips(url, tmp, rounds=100)
        if "epoch" in parts:
            rows += bench_epoch(
                url,
                tmp,
                int(os.environ.get("BENCH_EPOCH_ROWS", "2000000")),
                int(os.environ.get("BENCH_EPOCH_TRIALS", "2")),
            )
        return rows
    finally:
        server.stop()
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    for r in run(full=False):
        print(r)
