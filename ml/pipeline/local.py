"""The whole pipeline in one process, without Airflow (``ctr-pipeline run``).

The same steps as the DAG (:mod:`ml.pipeline.steps`) in the same order, so the same
gates apply; a failed gate stops before anything is registered.
"""

from __future__ import annotations

import logging
import time
from datetime import datetime, timezone
from typing import Any

from ml.errors import CtrPipelineError
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
    update_summary(run.dag_id, run.run_id, state="running", params=_plain(params))
    step = "validate"
    try:
        features = steps.validate(params, run)["features_path"]
        step = "train"
        run_dir = steps.train(params, run, features)["run_dir"]
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


def _plain(params: Params) -> dict[str, Any]:
    from dataclasses import asdict

    return {k: v for k, v in asdict(params).items() if k != "extra"}
