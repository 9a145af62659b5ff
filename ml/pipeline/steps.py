"""The pipeline's steps: validate → train → evaluate (gates) → register → finish.

Plain functions of (params, the pipeline run, upstream values), each returning the small
JSON-able dict the next step needs (the DAG pushes these as its XComs: ``features_path``,
``run_dir``, ``metrics``, ``model_version``, ``registered_path``), logging the spec's
lines and updating the run summary (:mod:`ml.pipeline.summary`). The DAG's tasks and
``ctr-pipeline run`` call exactly these, so both apply the same gates.

An upstream value may be missing (``airflow tasks test`` runs each task in a temporary
DAG run of its own): a step then finds what it needs by the run's key — the training run
directory of the same DAG and logical date — and fails, saying how, when there is none.
It never falls back on another run's artifacts.
Features and runs may be URLs (``s3://...``): a step downloads the run it needs itself.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

from ml import paths
from ml.data.layout import features_location
from ml.errors import GateFailedError, TrainingError, UserError
from ml.fsutil import display_path
from ml.notifications import metrics_lines, registered_lines, success_message
from ml.pipeline import artifacts, unchanged
from ml.pipeline.params import Params, PipelineRun
from ml.pipeline.summary import read_summary, update_summary
from ml.registry.layout import STAGING
from ml.storage.files import Location
from ml.training import run_dir as rd

log = logging.getLogger("ml.pipeline")
#: Metrics passed on to register/notify (XCom ``metrics``), besides gates and champion.
SUMMARY_METRICS = (
    "test_auc",
    "test_accuracy",
    "test_logloss",
    "val_auc",
    "val_logloss",
    "best_epoch",
    "epochs_run",
    "train_time_s",
)


def _step(run: PipelineRun, name: str, start: float, ok: bool = True, **fields: Any) -> None:
    seconds = round(time.perf_counter() - start, 3)
    update_summary(
        run.dag_id,
        run.run_id,
        state="running",
        steps={name: {"state": "success" if ok else "failed", "seconds": seconds}},
        **fields,
    )


def validate(params: Params, run: PipelineRun) -> dict[str, Any]:
    """Check the train/val/test splits against the config's features.

    Returns:
        ``{"features_path"}`` (relative to the base directory when inside it).

    Then the drift check (:mod:`ml.monitoring.drift`) against the production model's
    training-data profile; its report goes into the run summary (``drift``).

    Raises:
        FeatureValidationError: with every problem found.
        DriftDetectedError: a field is past ``max_psi`` and ``drift_action`` is ``fail``.
    """
    from ml.data.validate import validate_data
    from ml.errors import DriftDetectedError
    from ml.monitoring.drift import check_drift, log_report

    start = time.perf_counter()
    cfg = params.config()
    features = features_location(params.features_dir(cfg))
    data = validate_data(features, cfg.features, cfg.data.numeric_nan)
    for line in data.lines:
        log.info(line)
    shown = display_path(features)
    # Validated and hashed once per run: the later steps take it from the summary.
    update_summary(run.dag_id, run.run_id, data=data.to_dict())
    same = unchanged.check(params, cfg, data)
    if same is not None:  # before any drift or tuning step: nothing to do this run
        _step(run, "validate", start, features_path=shown, unchanged_since=same)
        return {"features_path": shown}
    drift = check_drift(
        features,
        cfg.features,
        model_name=params.model_name,
        max_psi=params.max_psi,
        action=params.drift_action,
    )
    log_report(drift, log)
    _step(
        run,
        "validate",
        start,
        drift.passed,
        logical_date=run.logical_date.isoformat() if run.logical_date else None,
        features_path=shown,
        model_name=params.model_name,
        validation_warnings=list(data.warnings),
        drift=drift.to_dict(),
    )
    if not drift.passed:
        raise DriftDetectedError(drift.failure_message(), drift)
    return {"features_path": shown}


def train(
    params: Params, run: PipelineRun, features_path: str | None, study: str | None = None
) -> dict[str, Any]:
    """Train into the pipeline run's own run directory (resuming or reusing it when its
    config and data match); after tuning (``study``), take the study's best trial.

    Returns:
        ``{"run_dir"}``.
    """
    from ml.training.job import train as train_job

    start = time.perf_counter()
    if same := unchanged.recorded(run):
        log.info(
            "Nothing changed since %s: not training (its run: %s)", same["version"], same["run_dir"]
        )
        return unchanged.skip(run, "train", run_dir=same["run_dir"])
    if study is not None:
        from ml.pipeline.tuning import train_best

        shown = train_best(params, run, features_path, study)
        _step(run, "train", start, run_dir=shown)
        return {"run_dir": shown}
    cfg = params.config()
    if features_path is None:
        features_path = params.features_dir(cfg)
        log.info("No features_path from validate_features: using %s", features_path)
    log.info("Run directory key for %s: %s (the same for every try)", run.describe(), run.key)
    result = train_job(
        cfg,
        features_dir=features_location(features_path),
        data=unchanged.validated_data(run),
        run_key=run.key,
        started_at=run.logical_date or run.started_at,
        provenance={"dag_id": run.dag_id, "run_id": run.run_id},
        log=log.info,
    )
    if result.resumed_from_epoch:
        log.info("   (resumed from the checkpoint of epoch %d)", result.resumed_from_epoch)
    shown = display_path(result.location)
    seconds, choice = result.metrics.get("train_time_s"), result.metrics.get("auto")
    _step(run, "train", start, run_dir=shown, training_seconds=seconds, model_choice=choice)
    return {"run_dir": shown}


def find_run(params: Params, run: PipelineRun, run_dir: str | None) -> tuple[Path, str]:
    """The complete run of this pipeline run (``run_dir``, or the newest of its key) as a
    local directory (one in a bucket downloaded) and where it lives (URL or path shown).

    Raises:
        UserError: no such run, or it is not complete; the message says how to get one.
    """
    from ml.training.remote_run import complete_run, is_remote, runs_for_key

    if run_dir is None:
        cfg = params.config()
        runs, name = cfg.output.runs_dir, cfg.experiment_name
        remote = is_remote(runs)
        found = (runs_for_key if remote else rd.runs_for_key)(str(runs), name, run.key)
        if not found:
            raise UserError(
                f"no training run of {run.describe()} (key {run.key}) under "
                f"{display_path(paths.location(runs))}: run train_model for the "
                f"same logical date first (`airflow tasks test {run.dag_id} train_model "
                f"<date>`), or the whole DAG (`airflow dags test {run.dag_id}`)"
            )
        run_dir = str(found[-1])
        log.info("No run_dir from train_model: using this run's %s", display_path(run_dir))
    if is_remote(run_dir):
        try:
            return complete_run(run_dir), run_dir
        except TrainingError as exc:
            raise UserError(str(exc)) from exc
    path = paths.resolve(run_dir)
    if not rd.is_complete(path):
        raise UserError(
            f"training run {display_path(path)} is not complete (no {rd.COMPLETE} marker); "
            "clear train_model to finish it"
        )
    return path, display_path(path)


def evaluate(params: Params, run: PipelineRun, run_dir: str | None) -> dict[str, Any]:
    """Apply the quality gates (thresholds, champion/challenger, baseline).

    Returns:
        ``{"metrics": {test metrics, "run_dir", "champion", "baseline", "gates"}}``.

    Raises:
        GateFailedError: a gate failed (nothing gets registered).
    """
    from ml.evaluation.gates import evaluate_gates

    if same := unchanged.recorded(run):
        log.info("Nothing changed since %s: its metrics stand (no gates re-run)", same["version"])
        return unchanged.skip(run, "evaluate", metrics=same["metrics"])
    start = time.perf_counter()
    path, location = find_run(params, run, run_dir)
    shown_run = display_path(location)
    metrics = rd.read_metrics(path)
    features = features_location(
        rd.read_run_info(path).get("features_dir") or params.features_dir(params.config())
    )
    if "test_auc" not in metrics:  # the best tuning trial's run: it never read test
        from ml.pipeline.tuning import score_test

        metrics = score_test(path, metrics, features)
    comparison, baseline = _comparisons(params, path, features)
    report = evaluate_gates(
        metrics,
        min_auc=params.min_auc,
        min_accuracy=params.min_accuracy,
        max_auc_drop=params.max_auc_drop,
        champion=comparison.champion if comparison else None,
        challenger_auc=float(comparison.challenger["auc"]) if comparison else None,
        baseline_auc=baseline.test_auc if baseline else None,
        baseline_tolerance=params.baseline_tolerance,
    )
    for line in metrics_lines(metrics):
        log.info(line)
    for result in report.results:
        log.info("   %s gate %s: %s", "✅" if result.passed else "❌", result.name, result.message)
    summary = {k: metrics[k] for k in SUMMARY_METRICS if k in metrics}
    summary.update(
        run_dir=shown_run,
        champion=comparison.to_dict() if comparison else None,
        baseline=baseline.to_dict() if baseline else None,
        gates=[r.to_dict() for r in report.results],
    )
    _step(run, "evaluate", start, report.passed, metrics=summary, gates=summary["gates"])
    if not report.passed:
        raise GateFailedError(
            f"{report.summary()} (run {shown_run}; nothing was registered)", report
        )
    artifacts.save_test_predictions(params.model_name, path, features, location)
    return {"metrics": summary}


def _comparisons(params: Params, run_dir: Path, features: Location) -> tuple[Any, Any]:
    """Production's score on the same test split, and the logistic-regression baseline."""
    from ml.evaluation.baseline import fit_baseline
    from ml.evaluation.champion import compare_with_production
    from ml.registry.model_registry import ModelRegistry
    from ml.serving.predictor import Predictor

    comparison = compare_with_production(ModelRegistry(), params.model_name, run_dir, features)
    if comparison is not None:
        log.info(
            "⚔️  Champion/challenger on %s test split: production %s AUC %.4f, new model %.4f",
            display_path(features),
            comparison.champion.version,
            comparison.champion.test_auc,
            comparison.challenger["auc"],
        )
    baseline = None
    if params.baseline_tolerance is not None:
        spec = Predictor.load(run_dir).features
        baseline = fit_baseline(features, spec)
        log.info(
            "📏 Logistic-regression baseline: test AUC %.4f (C=%g, %s train rows, %.1f s)",
            baseline.test_auc,
            baseline.c,
            f"{baseline.train_rows:,}",
            baseline.seconds,
        )
    return comparison, baseline


def register(
    params: Params, run: PipelineRun, run_dir: str | None, metrics: dict[str, Any] | None
) -> dict[str, Any]:
    """Register the run in staging (once per training run) with its training data's
    profile (``data_profile.json``, the drift check's reference); promote it if asked.

    Returns:
        ``{"model_version", "registered_path"}``.
    """
    from ml.monitoring.profile import profile_extra_files
    from ml.registry.model_registry import ModelRegistry

    if same := unchanged.recorded(run):
        log.info(
            "✅ Nothing changed since %s %s: no new version (%s)",
            params.model_name,
            same["version"],
            same["registered_path"],
        )
        update_summary(
            run.dag_id,
            run.run_id,
            card_path=artifacts.card_path(same["registered_path"]),
        )
        return unchanged.skip(
            run, "register", model_version=same["version"], registered_path=same["registered_path"]
        )
    start = time.perf_counter()
    if metrics is None:
        # Never register what the gates have not passed in this pipeline run.
        log.info("No metrics from evaluate_model: checking the gates here")
        metrics = evaluate(params, run, run_dir)["metrics"]
        run_dir = run_dir or str(metrics["run_dir"])
    path = find_run(params, run, run_dir)[0]
    registry = ModelRegistry()
    card = artifacts.prepare_card(params.model_name, path, registry, metrics)
    rv = registry.register(
        path,
        params.model_name,
        dag_id=run.dag_id,
        run_id=run.run_id,
        created_by=f"airflow:{run.dag_id}" if run.dag_id != "ctr-pipeline" else None,
        extra_files=artifacts.extra_files(profile_extra_files(path), card),
    )
    shown = display_path(rv.path)
    for line in registered_lines(rv.name, rv.version, STAGING, shown, created=rv.created):
        log.info(line)
    card_path = artifacts.card_path(rv.path)
    promoted = False
    if params.auto_promote:
        promotion = registry.promote_to_production(
            params.model_name,
            rv.version,
            reason=f"auto_promote: all quality gates passed in {run.describe()}",
        )
        promoted = True
        if promotion.changed:
            log.info("🚀 Promoted %s %s to production (auto_promote)", rv.name, rv.version)
        else:
            log.info("🚀 %s %s is already the production model", rv.name, rv.version)
    _step(
        run,
        "register",
        start,
        model_version=rv.version,
        registered_path=shown,
        promoted=promoted,
        card_path=card_path,
    )
    return {"model_version": rv.version, "registered_path": shown}


def finish(
    params: Params,
    run: PipelineRun,
    metrics: dict[str, Any] | None,
    model_version: str | None,
    registered_path: str | None,
    *,
    try_number: int | None = None,
) -> str:
    """Mark the run successful in its summary and return the completion message (marked
    as a re-run when ``try_number`` > 1: the task was cleared or retried)."""
    summary = read_summary(run.dag_id, run.run_id) or {}
    if model_version is None:
        log.info("No model_version from register_model (XCom not found in this DAG run)")
    metrics = metrics if metrics is not None else summary.get("metrics")
    text = success_message(
        model_name=params.model_name,
        version=model_version,
        path=registered_path,
        metrics=metrics,
        dag_id=run.dag_id,
        run_id=run.run_id,
        promoted=bool(summary.get("promoted")) and model_version is not None,
        gates=(metrics or {}).get("gates") or (),
        rerun_try=try_number if try_number and try_number > 1 else None,
        drift=summary.get("drift"),
        unchanged_since=(summary.get("unchanged_since") or {}).get("version"),
        tuning=summary.get("tuning"),
        model_choice=summary.get("model_choice"),
    )
    text += artifacts.card_link(params.model_name, model_version)
    update_summary(run.dag_id, run.run_id, state="success", message=text)
    return text


def record_failure(run: PipelineRun, step: str, error: BaseException) -> None:
    """Write the failure (the whole message) into the run summary; never raises."""
    try:
        update_summary(
            run.dag_id,
            run.run_id,
            state="failed",
            failure={"step": step, "type": type(error).__name__, "message": str(error)},
        )
    except Exception as exc:  # the summary must never hide the real error
        log.warning("could not record the failure in the run summary: %s", exc)
