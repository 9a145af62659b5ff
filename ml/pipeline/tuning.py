"""The training pipeline's tuning steps (the DAG's ``tuning`` group), without Airflow.

With the param ``tuning_trials`` > 0, between ``validate_features`` and ``train_model``:

- ``tuning.create_study`` → :func:`prepare`: create or resume the study of this config
  and data (trial 0 = the config's own values) and name ``tuning_parallel`` workers;
  with ``tuning_trials`` 0 it names none, so the mapped workers are skipped at once.
- ``tuning.tune_worker`` (mapped, one per worker) → :func:`work`: pull trials until the
  study holds ``tuning_trials`` finished ones (:func:`ml.tuning.worker.run_worker`).
- ``train_model`` → :func:`train_best` (through :func:`ml.pipeline.steps.train`): the
  best trial's finished run becomes this pipeline run's run directory (its checkpoint
  reused; retrained with its parameters when it is not here), and the run summary
  records the study.
- ``evaluate_model`` → :func:`score_test` (through :func:`ml.pipeline.steps.evaluate`):
  a trial never read the test split, so the test metrics are computed from the
  checkpoint before the gates.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from ml import paths
from ml.errors import TuningError
from ml.fsutil import atomic_write_bytes, atomic_write_json, display_path
from ml.pipeline import unchanged
from ml.pipeline.params import Params, PipelineRun
from ml.pipeline.summary import update_summary
from ml.training import run_dir as rd
from ml.tuning import study as st
from ml.tuning.storage import StorageSpec

log = logging.getLogger("ml.pipeline")


def _ref(name: str) -> st.StudyRef:
    # Only the name travels between tasks (as an XCom); each worker reads the storage's
    # URL, password included, from its own environment.
    return st.StudyRef(name, StorageSpec.from_env())


def _features(params: Params, cfg: Any, features_path: str | None) -> Path:
    return paths.resolve(features_path or params.features_dir(cfg))


def prepare(params: Params, run: PipelineRun, features_path: str | None) -> dict[str, Any]:
    """Create or resume the study; returns ``{"study", "workers"}`` (workers: one
    ``{"study", "slot", "features_path"}`` per mapped ``tune_worker``; none when off)."""
    if params.tuning_trials == 0:
        log.info("Tuning off (tuning_trials=0): train_model trains the config as it is")
        return {"study": None, "workers": []}
    if same := unchanged.recorded(run):
        log.info("Nothing changed since %s: no tuning this run", same["version"])
        return {"study": None, "workers": []}
    cfg = params.config()
    feats = _features(params, cfg, features_path)
    data = unchanged.validated_data(run)
    ref, notes = st.prepare(
        cfg, feats, digest=data.digest if data and data.current(feats) else None
    )
    done = st.counts(st.load(ref, cfg))
    log.info(
        "🔎 Study %s (%s): %d finished trials so far; %d tune_worker tasks run it to %d, "
        "optimising %s",
        ref.name,
        ref.storage.describe(),
        done.finished,
        params.tuning_parallel,
        params.tuning_trials,
        cfg.tuning.metric,
    )
    for note in notes:
        log.warning("⚠️  %s", note)
    shown = display_path(feats)
    workers = [
        {"study": ref.name, "slot": slot, "features_path": shown}
        for slot in range(params.tuning_parallel)
    ]
    return {"study": ref.name, "workers": workers}


def work(params: Params, run: PipelineRun, worker: dict[str, Any]) -> dict[str, Any]:
    """One mapped ``tune_worker``: run trials until the study holds enough finished ones.

    Raises:
        TuningError: every trial failed (with the first trial's error).
        RetryableError: the storage or the disk failed (Airflow retries the task; the
            study keeps every finished trial).
    """
    from ml.tuning.report import trial_line
    from ml.tuning.worker import run_worker

    cfg = params.config()
    ref = _ref(str(worker["study"]))
    log.info("Tuning worker %s on study %s (%s)", worker["slot"], ref.name, ref.storage.describe())
    result = run_worker(
        ref,
        cfg,
        _features(params, cfg, worker.get("features_path")),
        data=unchanged.validated_data(run),
        target=params.tuning_trials,
        slot=int(worker["slot"]),
        log=log.info,
        train_log=log.info,
        on_trial=lambda t: log.info("🧪 %s", trial_line(t, cfg.tuning.metric)),
    )
    log.info(
        "Tuning worker %s stops after %d trial(s): %s", worker["slot"], result.ran, result.reason
    )
    return {"ran": result.ran, **result.counts.to_dict()}


def train_best(params: Params, run: PipelineRun, features_path: str | None, study: str) -> str:
    """This pipeline run's run directory from the study's best trial; returns its path."""
    from ml.tuning import report
    from ml.tuning.space import apply

    cfg = params.config()
    ref = _ref(study)
    found = st.load(ref, cfg)
    best = st.best_trial(found)
    if best is None:
        raise TuningError(f"no trial of study {ref.name} completed; {st.first_error(found)}")
    trial_cfg = apply(cfg, cfg.tuning.space.values(best.params))
    summary = report.summary(found, ref, cfg.tuning.metric)
    json_path, _ = report.write_outputs(found, ref, cfg.tuning.metric)
    log.info(
        "🏆 Best trial %d of study %s: %s %.4f; %s",
        best.number,
        ref.name,
        cfg.tuning.metric,
        best.value,
        ", ".join(f"{k}={v}" for k, v in best.params.items()),
    )
    log.info("📝 Every trial: %s", display_path(json_path))
    data_digest = found.user_attrs.get("data_digest")
    out = _reuse(cfg, run, trial_cfg.digest(), data_digest)
    source = paths.resolve(str(best.user_attrs.get("run_dir") or "/nonexistent"))
    if out is None and _matches(source, trial_cfg.digest(), data_digest):
        out = _adopt(source, cfg, run, {"study": ref.name, "trial": best.number})
        log.info("Reusing trial %d's checkpoint: %s → %s", best.number, display_path(source), out)
    elif out is None:
        from ml.training.job import train

        log.info(
            "Trial %d's run is not here (%s): retraining with its parameters", best.number, source
        )
        out = train(
            trial_cfg,
            features_dir=_features(params, cfg, features_path),
            data=unchanged.validated_data(run),
            run_key=run.key,
            started_at=run.logical_date or run.started_at,
            provenance={"dag_id": run.dag_id, "run_id": run.run_id},
            log=log.info,
        ).run_dir
    update_summary(run.dag_id, run.run_id, tuning=summary)
    return display_path(out)


def _matches(path: Path, config_digest: str, data_digest: str | None) -> bool:
    return (
        rd.is_complete(path)
        and rd.mismatch(path, config_digest=config_digest, data_digest=data_digest) is None
    )


def _reuse(cfg: Any, run: PipelineRun, config_digest: str, data_digest: str | None) -> Path | None:
    """This pipeline run's finished run directory of the same config, if a try made it."""
    found = rd.runs_for_key(cfg.output.runs_dir, cfg.experiment_name, run.key)
    if found and _matches(found[-1], config_digest, data_digest):
        log.info("Reusing this run's finished run directory %s", display_path(found[-1]))
        return found[-1]
    return None


def _adopt(source: Path, cfg: Any, run: PipelineRun, tuning: dict[str, Any]) -> Path:
    """Copy a trial's finished run into a run directory of this pipeline run (the trial's
    own stays with the study); ``COMPLETE`` is written last."""
    out = rd.new_run_dir(
        cfg.output.runs_dir,
        cfg.experiment_name,
        key=run.key,
        when=run.logical_date or run.started_at,
    )
    for name in (rd.MODEL_BEST, rd.CONFIG_YAML, rd.METRICS_JSON):
        atomic_write_bytes(out / name, (source / name).read_bytes())
    info = rd.read_run_info(source)
    info.update(
        dag_id=run.dag_id,
        run_id=run.run_id,
        tuning={**tuning, "run_dir": display_path(source)},
    )
    atomic_write_json(out / rd.RUN_JSON, info)
    rd.mark_complete(out)
    return out


def score_test(run_dir: Path, metrics: dict[str, Any], features: str | Path) -> dict[str, Any]:
    """Test metrics of a run that has none (a tuning trial's), added to its metrics file."""
    from ml.evaluation.evaluate import evaluate_run

    test = evaluate_run(run_dir, split="test", features_dir=features)
    merged = {**metrics, **test}
    atomic_write_json(run_dir / rd.METRICS_JSON, merged)
    log.info(
        "📊 Scored the test split with %s's checkpoint (tuning trials never read it)",
        display_path(run_dir),
    )
    return merged
