"""The whole pipeline without Airflow (``ctr-pipeline run``).

The same steps as the DAG (:mod:`ml.pipeline.steps`, :mod:`ml.pipeline.tuning`) in the
same order, so the same gates apply; a failed gate stops before anything is registered.
The tuning step (``tuning_trials`` > 0) runs the DAG's mapped ``tune_worker`` tasks as
``tuning_parallel`` worker processes here (one runs in this process).
"""

from __future__ import annotations

import logging
import multiprocessing
import sys
import time
from datetime import datetime, timezone
from typing import Any

from ml.errors import CtrPipelineError, TuningError
from ml.pipeline import steps
from ml.pipeline.params import CLI_PIPELINE_ID, Params, PipelineRun
from ml.pipeline.summary import read_summary, update_summary

log = logging.getLogger("ml.pipeline")


def new_run(now: datetime | None = None) -> PipelineRun:
    """A fresh pipeline run identity for the command line (``cli__<UTC time>``)."""
    now = now or datetime.now(timezone.utc)
    return PipelineRun(
        CLI_PIPELINE_ID, f"cli__{now.isoformat(timespec='microseconds')}", started_at=now
    )


def run_pipeline(params: Params, run: PipelineRun | None = None) -> dict[str, Any]:
    """validate → train → evaluate (gates) → register → finish; returns the run summary.

    Raises:
        CtrPipelineError: the failing step's error (recorded in the summary first).
    """
    run = run or new_run()
    start = time.perf_counter()
    update_summary(run.dag_id, run.run_id, state="running", params=params.as_dict())
    step = "validate"
    try:
        features = steps.validate(params, run)["features_path"]
        step = "tune"
        study = _tune(params, run, features)
        step = "train"
        run_dir = steps.train(params, run, features, study)["run_dir"]
        step = "evaluate"
        metrics = steps.evaluate(params, run, run_dir)["metrics"]
        step = "register"
        registered = steps.register(params, run, run_dir, metrics)
        step = "finish"
        text = steps.finish(params, run, metrics, **registered)
    except CtrPipelineError as exc:
        steps.record_failure(run, step, exc)
        raise
    for line in text.splitlines():
        log.info(line)
    update_summary(run.dag_id, run.run_id, total_seconds=round(time.perf_counter() - start, 3))
    summary = read_summary(run.dag_id, run.run_id)
    assert summary is not None
    return summary


def _tune(params: Params, run: PipelineRun, features: str | None) -> str | None:
    """The DAG's ``tuning`` group: the study's name, or None when tuning is off."""
    from ml.pipeline import tuning

    out = tuning.prepare(params, run, features)
    workers: list[dict[str, Any]] = list(out["workers"])
    if len(workers) == 1:
        tuning.work(params, run, workers[0])
    elif workers:
        ctx = multiprocessing.get_context("spawn")  # no torch state shared with the parent
        procs = [ctx.Process(target=_tune_worker, args=(params, run, w)) for w in workers]
        for proc in procs:
            proc.start()
        for proc in procs:
            proc.join()
        failed = [w["slot"] for w, p in zip(workers, procs, strict=True) if p.exitcode != 0]
        if len(failed) == len(procs):
            raise TuningError(f"every tuning worker failed (slots {failed}); see the log above")
        if failed:
            log.warning("⚠️  tuning worker(s) %s failed; the others finished the study", failed)
    return str(out["study"]) if out["study"] else None


def _tune_worker(params: Params, run: PipelineRun, worker: dict[str, Any]) -> None:
    """One spawned tuning worker (the DAG's ``tune_worker`` task)."""
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stdout, force=True)
    from ml.pipeline import tuning

    try:
        tuning.work(params, run, worker)
    except CtrPipelineError as exc:
        log.error("error: tuning worker %s: %s", worker["slot"], exc)
        sys.exit(exc.exit_code)
