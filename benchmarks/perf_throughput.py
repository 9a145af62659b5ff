"""Scratch: interleaved samples/s of the trainer loop and the pre-sliced bound per setting.

usage: python -m benchmarks.perf_throughput [--rounds R] [--rows N] SPEC...

SPEC = name[,key=value...] with :class:`benchmarks.perf_common.Setting`'s keys
(precision, optimizer, threads, batch, compile, dropout, emb, drop, fold);
``trainer=real`` times ``ml.training.trainer.Trainer.train_epoch`` itself (fp32, the
trainer's own optimizer). Every round runs each setting's trainer loop then its bound;
the table gives medians over rounds of wall-clock samples/s (and the best round) and of
CPU-time samples/s (process CPU time: close to a quiet machine's wall time for 1 thread
on a loaded box, meaningless for 2). Rows are appended to /tmp/perfwork/throughput.jsonl.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

from benchmarks import perf_common as pc
from ml.training.tensors import EncodedSplit
from ml.training.trainer import Trainer

_FLOAT_KEYS = {"dropout"}
_BOOL_KEYS = {"compile"}


def parse(spec: str) -> tuple[pc.Setting, bool]:
    """``name,key=value,...`` -> (Setting, time the real Trainer?)."""
    name, *parts = spec.split(",")
    kw: dict[str, Any] = {}
    real = False
    for part in parts:
        key, value = part.split("=")
        if key == "trainer":
            real = value == "real"
        elif key in _FLOAT_KEYS:
            kw[key] = float(value)
        elif key in _BOOL_KEYS:
            kw[key] = value == "1"
        else:
            kw[key] = int(value) if value.isdigit() else value
    return pc.Setting(name=name, **kw), real


def _real_trainer(model: torch.nn.Module, s: pc.Setting, decay: float) -> Trainer:
    return Trainer(
        model,
        run_dir=Path(tempfile.mkdtemp()),
        checkpoint_meta={},
        learning_rate=pc.CFG.training.learning_rate,
        weight_decay=decay,
        batch_size=s.batch,
        epochs=1,
        patience=1,
        seed=0,
        device=torch.device("cpu"),
        log=lambda _: None,
        progress=False,
        precision=s.precision,
    )


class Run:
    """One setting: its trainer loop, its bound, and the figures of every round."""

    def __init__(self, d: pc.Data, spec: str, split: EncodedSplit) -> None:
        self.s, real = parse(spec)
        model, opt = pc.build(d, self.s)
        bmodel, bopt = pc.build(d, self.s)
        self.params = sum(p.numel() for p in model.parameters())
        self.split = split
        with pc.threads(self.s.threads):
            self.step = pc.make_step(model, opt, self.s)
            self.bstep = pc.make_step(bmodel, bopt, self.s)
            self.batches = pc.presliced(split, self.s.batch)
            self.trainer = (
                _real_trainer(model, self.s, pc.weight_decay(d, self.s)) if real else None
            )
            start = time.perf_counter()
            self.bstep(*self.batches[0])  # warm-up (and compile)
            self.warm = time.perf_counter() - start
            self.step(*self.batches[0])
        self.gen = torch.Generator().manual_seed(0)
        self.wall: list[tuple[float, float]] = []
        self.cpu: list[tuple[float, float]] = []

    def _trainer_epoch(self) -> None:
        if self.trainer is not None:
            self.trainer.train_epoch(self.split)
        else:
            pc.trainer_epoch(self.step, self.split, self.s.batch, self.gen)

    def _bound_epoch(self) -> None:
        pc.bound_epoch(self.bstep, self.batches)

    def round(self) -> None:
        n = len(self.split)
        with pc.threads(self.s.threads):
            c0, t0 = time.process_time(), time.perf_counter()
            self._trainer_epoch()
            c1, t1 = time.process_time(), time.perf_counter()
            self._bound_epoch()
            c2, t2 = time.process_time(), time.perf_counter()
        self.wall.append((n / (t1 - t0), n / (t2 - t1)))
        self.cpu.append((n / (c1 - c0), n / (c2 - c1)))

    def row(self, load: list[str]) -> dict[str, Any]:
        return {
            "name": self.s.name,
            "setting": self.s.__dict__,
            "trainer": pc.med([t for t, _ in self.wall]),
            "bound": pc.med([b for _, b in self.wall]),
            "ratio": pc.med([t / b for t, b in self.wall]),
            "best_t": max(t for t, _ in self.wall),
            "best_b": max(b for _, b in self.wall),
            "cpu_t": pc.med([t for t, _ in self.cpu]),
            "cpu_b": pc.med([b for _, b in self.cpu]),
            "warm": self.warm,
            "load": load,
            "params": self.params,
        }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--rows", type=int, default=8192 * 24)
    ap.add_argument("--min-frequency", type=int, default=1)
    ap.add_argument("specs", nargs="+")
    a = ap.parse_args()
    d = pc.data(min_frequency=a.min_frequency)
    full = d.splits["train"]
    split = EncodedSplit(full.data[: a.rows].clone(), full.n_cat, full.n_num)
    runs = [Run(d, spec, split) for spec in a.specs]
    load = [pc.loadavg()]
    for _ in range(a.rounds):
        for run in runs:
            run.round()
    load.append(pc.loadavg())
    print(f"rows/timing {len(split)}, rounds {a.rounds}, load {load[0]} -> {load[1]}")
    cols = ("trainer/s", "bound/s", "ratio", "best t", "best b", "cpu t/s", "cpu b/s", "warm")
    print(f"{'setting':34s} " + " ".join(f"{c:>9s}" for c in cols))
    with open(pc.WORK / "throughput.jsonl", "a") as f:
        for run in runs:
            r = run.row(load)
            f.write(json.dumps(r) + "\n")
            values = [r["trainer"], r["bound"], r["ratio"], r["best_t"], r["best_b"]]
            values += [r["cpu_t"], r["cpu_b"], r["warm"]]
            print(
                f"{r['name']:34s} "
                + " ".join(f"{v:9.3f}" if v < 100 else f"{v:9,.0f}" for v in values)
            )


if __name__ == "__main__":
    main()
