"""Scratch: time the recipe at 1 and 2 threads only while the shared machine is idle.

usage: python -m benchmarks.perf_quiet [--rounds N] [--hours H] [--idle 0.85] SPEC...

Waits until both cores were >= ``--idle`` idle over 2 s, then runs one interleaved round
(each SPEC: trainer loop, then its pre-sliced bound) and records, per round, how much
CPU *other* processes used meanwhile (busy time from /proc/stat minus this process's
own CPU time): a setting's round counts as quiet when the others used < 5% of one core. Appends
JSON lines to /tmp/perfwork/quiet.jsonl; prints, per setting, medians over the rounds
that were quiet while that setting ran (until every setting has ``--rounds`` of them).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from typing import Any

import torch

from benchmarks import perf_common as pc
from benchmarks.perf_throughput import parse
from ml.training.tensors import EncodedSplit

HZ = os.sysconf("SC_CLK_TCK")


def _busy_idle() -> tuple[float, float]:
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    idle = v[3] + v[4]
    return (sum(v) - idle) / HZ, idle / HZ


def _idle_share(seconds: float) -> float:
    b0, i0 = _busy_idle()
    time.sleep(seconds)
    b1, i1 = _busy_idle()
    return (i1 - i0) / max(b1 - b0 + i1 - i0, 1e-9)


def _timed(fn: Any) -> tuple[float, float]:
    """(wall seconds, CPU seconds other processes used meanwhile)."""
    b0, _ = _busy_idle()
    c0 = time.process_time()
    t = time.perf_counter()
    fn()
    wall = time.perf_counter() - t
    b1, _ = _busy_idle()
    return wall, max(0.0, (b1 - b0) - (time.process_time() - c0))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--hours", type=float, default=1.0)
    ap.add_argument("--idle", type=float, default=0.85)
    ap.add_argument("--rows", type=int, default=8192 * 24)
    ap.add_argument("specs", nargs="+")
    a = ap.parse_args()
    d = pc.data()
    full = d.splits["train"]
    split = EncodedSplit(full.data[: a.rows].clone(), full.n_cat, full.n_num)
    n = len(split)
    runs = []
    for spec in a.specs:
        s, _ = parse(spec)
        model, opt = pc.build(d, s)
        bmodel, bopt = pc.build(d, s)
        with pc.threads(s.threads):
            step, bstep = pc.make_step(model, opt, s), pc.make_step(bmodel, bopt, s)
            batches = pc.presliced(split, s.batch)
            step(*batches[0])
            bstep(*batches[0])
        runs.append(
            {
                "s": s,
                "step": step,
                "bstep": bstep,
                "batches": batches,
                "gen": torch.Generator().manual_seed(0),
            }
        )
    deadline = time.time() + a.hours * 3600
    # per setting: (trainer samples/s, bound samples/s) of rounds where the other
    # processes used < 5% of a core while *that* setting's loop and bound ran
    quiet: dict[str, list[tuple[int, int]]] = {r["s"].name: [] for r in runs}
    done = 0
    while done < a.rounds and time.time() < deadline:
        if _idle_share(2.0) < a.idle:
            continue
        record: dict[str, Any] = {"time": time.strftime("%H:%M:%S"), "load": pc.loadavg()}
        for r in runs:
            s = r["s"]
            with pc.threads(s.threads):
                tt, ot = _timed(
                    lambda r=r, s=s: pc.trainer_epoch(r["step"], split, s.batch, r["gen"])
                )
                tb, ob = _timed(lambda r=r: pc.bound_epoch(r["bstep"], r["batches"]))
            others = max(ot / tt, ob / tb)
            record[s.name] = [round(n / tt), round(n / tb), round(others, 3)]
            if others < 0.05:
                quiet[s.name].append((round(n / tt), round(n / tb)))
        with open(pc.WORK / os.environ.get("PERF_QUIET_LOG", "quiet.jsonl"), "a") as f:
            f.write(json.dumps(record) + "\n")
        print(record, flush=True)
        done = min(len(xs) for xs in quiet.values())
    for name, xs in quiet.items():
        if xs:
            t = statistics.median(x[0] for x in xs)
            b = statistics.median(x[1] for x in xs)
            ratio = statistics.median(x[0] / x[1] for x in xs)
            print(f"{name:24s} trainer {t:9,.0f} bound {b:9,.0f} ratio {ratio:.3f} n={len(xs)}")
        print(name, "quiet rounds:", xs, flush=True)


if __name__ == "__main__":
    main()
