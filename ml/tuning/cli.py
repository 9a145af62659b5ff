"""``ctr-pipeline tune``: search the config's ``tuning.space`` with Optuna.

::

    ctr-pipeline tune --config config/model_config.yaml --trials 30 --parallel 2

Creates (or resumes) the study of this config and data (:mod:`ml.tuning.study`), runs
``--parallel`` worker processes that pull trials until the study holds ``--trials``
finished ones (:mod:`ml.tuning.worker`), printing a line per finished trial, then the
top trials, the parameter importances, and where ``tuning.json`` and the plot went.
Exit 2 when every trial failed (the first one's error is printed) or the input is bad,
3 when the storage or disk failed (run the same command again to resume).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import sys
import time
from pathlib import Path
from typing import Any

from ml import paths
from ml.cli_common import add_command, add_config_args, load_config_args
from ml.errors import CtrPipelineError, TuningError


def add_commands(sub: Any) -> None:
    """Register ``tune`` on the ``ctr-pipeline`` subparsers."""
    p = add_command(sub, "tune", _cmd_tune)
    add_config_args(p)
    p.add_argument("--features-dir", help="overrides data.features_dir")
    p.add_argument(
        "--trials", type=_positive, help="finished trials to reach (default: tuning.trials)"
    )
    p.add_argument("--parallel", type=_positive, default=1, help="worker processes (%(default)s)")
    p.add_argument(
        "--timeout", type=float, help="start no new trial after this many seconds (default: none)"
    )
    p.add_argument(
        "--new-study", action="store_true", help="start a fresh study instead of resuming"
    )
    p.add_argument("--verbose", action="store_true", help="show every trial's training log")
    p.add_argument("--json", action="store_true", help="print the study summary as JSON")


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def _cmd_tune(args: argparse.Namespace) -> int:
    """tune hyperparameters with Optuna (the config's tuning.space)

    Run trials (ordinary training runs that never score the test split) until the study
    of this config and data holds --trials finished ones. A rerun resumes the same study;
    more --trials adds trials to it.
    """
    cfg = load_config_args(args)
    feats = paths.resolve(args.features_dir or cfg.data.features_dir)
    summary = tune(
        cfg,
        feats,
        trials=args.trials or cfg.tuning.trials,
        parallel=args.parallel,
        timeout=args.timeout,
        new_study=args.new_study,
        verbose=args.verbose,
    )
    if args.json:
        print(json.dumps(summary, indent=2, default=str))
    return 0


def tune(
    cfg: Any,
    features_dir: Path,
    *,
    trials: int,
    parallel: int = 1,
    timeout: float | None = None,
    new_study: bool = False,
    verbose: bool = False,
) -> dict[str, Any]:
    """The ``tune`` command without argument parsing; returns the study summary."""
    from ml.tuning import report, study
    from ml.tuning.worker import run_worker

    start = time.perf_counter()
    ref, notes = study.prepare(cfg, features_dir, new=new_study)
    before = study.counts(study.load(ref, cfg))
    print(
        f"🔎 Study {ref.name} ({ref.storage.describe()}): {before.finished} finished trials so "
        f"far; running to {trials} with {parallel} worker(s), optimising {cfg.tuning.metric}",
        flush=True,
    )
    for note in notes:
        print(f"⚠️  {note}", flush=True)
    failed: list[str] = []
    if parallel == 1:
        run_worker(
            ref, cfg, features_dir, target=trials, timeout=timeout, **_printers(cfg, verbose)
        )
    else:
        failed = _run_processes(ref, cfg, features_dir, trials, parallel, timeout, verbose)
    final = study.load(ref, cfg)
    counts = study.counts(final)
    for line in report.top_table(final, cfg.tuning.metric):
        print(line)
    print("\n".join(report.importance_lines(*report.importances(final))))
    json_path, png = report.write_outputs(final, ref, cfg.tuning.metric)
    summary = report.summary(final, ref, cfg.tuning.metric)
    best = summary["best"]
    if best is not None:
        print(
            f"🏆 Best: trial {best['number']}, {cfg.tuning.metric} {best['value']:.4f}, "
            f"run {best['run_dir']}"
        )
    print(f"📝 {json_path}" + (f"\n📈 {png}" if png else ""))
    print(
        f"Trials: {counts.finished} finished ({counts.complete} complete, {counts.pruned} "
        f"pruned), {counts.failed} failed, in {time.perf_counter() - start:.1f} s",
        flush=True,
    )
    if best is None:
        raise TuningError(f"no trial of study {ref.name} completed; {study.first_error(final)}")
    if failed and counts.finished < trials:
        raise TuningError(
            f"{'; '.join(failed)}; the study holds {counts.finished} of {trials} finished "
            "trials: run the same command again to resume it"
        )
    return summary


def _printers(cfg: Any, verbose: bool) -> dict[str, Any]:
    from ml.tuning.report import trial_line

    def on_trial(trial: Any) -> None:
        print(trial_line(trial, cfg.tuning.metric), flush=True)

    def log(line: str) -> None:
        print(line, flush=True)

    return {"log": log, "train_log": log if verbose else None, "on_trial": on_trial}


def _run_processes(
    ref: Any,
    cfg: Any,
    features_dir: Path,
    trials: int,
    parallel: int,
    timeout: float | None,
    verbose: bool,
) -> list[str]:
    """Run ``parallel`` worker processes; returns a note per worker that failed."""
    ctx = multiprocessing.get_context("spawn")
    procs = [
        ctx.Process(
            target=_worker_main,
            args=(ref, cfg.to_dict(), str(features_dir), trials, slot, timeout, verbose),
            name=f"tune-worker-{slot}",
        )
        for slot in range(parallel)
    ]
    for proc in procs:
        proc.start()
    try:
        for proc in procs:
            proc.join()
    except KeyboardInterrupt:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.join()
        raise
    return [f"worker {p.name} exited with {p.exitcode}" for p in procs if p.exitcode != 0]


def _worker_main(
    ref: Any,
    raw_cfg: dict[str, Any],
    features_dir: str,
    trials: int,
    slot: int,
    timeout: float | None,
    verbose: bool,
) -> None:
    """One worker process of ``tune --parallel`` (spawned: imports happen here)."""
    from ml.config import config_from_dict
    from ml.tuning.worker import run_worker

    cfg = config_from_dict(raw_cfg)
    try:
        run_worker(
            ref,
            cfg,
            features_dir,
            target=trials,
            slot=slot,
            timeout=timeout,
            **_printers(cfg, verbose),
        )
    except CtrPipelineError as exc:
        print(f"error: worker {slot}: {exc}", file=sys.stderr, flush=True)
        sys.exit(exc.exit_code)
