"""Scratch: where one training step's time goes (torch profiler), per setting."""

from __future__ import annotations

import sys

from torch.profiler import ProfilerActivity, profile

from benchmarks import perf_common as pc


def main() -> None:
    d = pc.data()
    names = sys.argv[1:] or ["fp32"]
    for spec in names:
        kw = dict(p.split("=") for p in spec.split(",")[1:])
        s = pc.Setting(name=spec, **{k: (int(v) if v.isdigit() else v) for k, v in kw.items()})
        model, opt = pc.build(d, s)
        with pc.threads(s.threads):
            step = pc.make_step(model, opt, s)
            batches = pc.presliced(d.splits["train"], s.batch)[:20]
            pc.bound_epoch(step, batches)
            with profile(activities=[ProfilerActivity.CPU], record_shapes=True) as prof:
                pc.bound_epoch(step, batches)
        print("=====", spec, pc.loadavg())
        print(
            prof.key_averages(group_by_input_shape=True).table(
                sort_by="self_cpu_time_total", row_limit=40
            )
        )


if __name__ == "__main__":
    main()
