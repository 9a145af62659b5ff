"""
### training_pipeline

Train the PyTorch CTR model, gate it on quality, register it, notify.

`validate_features >> train_model >> evaluate_model >> register_model >> notify_completion`,
with the `tuning` group (`create_study >> tune_worker` ×`tuning_parallel`) before
`train_model`; it does nothing unless `tuning_trials` > 0.

| XCom key | from | to |
|---|---|---|
| `features_path` | validate_features | train_model |
| `run_dir` | train_model | evaluate_model, register_model |
| `metrics` | evaluate_model | register_model, notify_completion |
| `model_version`, `registered_path` | register_model | notify_completion |

- **Quality gates** (`evaluate_model`): `test_auc >= min_auc`, `test_accuracy >=
  min_accuracy`, no more than `max_auc_drop` of test AUC lost against the production
  model scored on the same test split, and at least the test AUC of a
  logistic-regression baseline minus `baseline_tolerance`. A failed gate fails the run
  without retrying; nothing is registered.
- **Idempotent**: the training run directory is keyed by the DAG run (its logical
  date), a retried `train_model` resumes from its last epoch checkpoint, and the
  registry registers one training run once.
- **Tuning** (`tuning_trials` > 0): Optuna trials of the config's `tuning.space` run as
  mapped `tune_worker` tasks until the study holds `tuning_trials` finished trials;
  `train_model` takes the best trial's checkpoint and `evaluate_model` scores it on the
  test split (docs/tuning.md).
- **Data**: `features_path` null (default) means the config's `data.features_dir`.
- **Nothing changed**: when a registered version was trained on the same data, config
  and code, the run succeeds naming it and skips training and registration
  (`force_retrain=true` overrides).
- **Drift** (`validate_features`): each feature's PSI against the production model's
  training-data profile (else the latest staging version's); past `max_psi` it warns,
  or fails the run with `drift_action: fail` (docs/serving.md).
- **Schedule**: `$CTR_TRAINING_SCHEDULE` = `@weekly` (default) | `@daily` | cron | `none` |
  `asset` (after the `ctr_features` Asset is updated), no catch-up.
- **Notifications**: a `slackwebhook` connection `slack_webhook` and an `smtp`
  connection `smtp_default` (recipients in its extra `to`) receive the success summary
  and failures; without them they are log-only.

The steps are `ml.pipeline.steps` (what `ctr-pipeline run` runs); see docs/airflow.md.
"""

from __future__ import annotations

import os
from datetime import timedelta
from typing import Any

import training_pipeline_tasks as glue
from airflow.sdk import Param, TaskGroup, dag, get_current_context, task

from ml.pipeline.params import param_specs

# Generated from the one table of params (ml/pipeline/params.py), which `ctr-pipeline run`'s
# flags come from too.
PARAMS = {
    s.name: Param(s.default, description=s.description, **s.json_schema()) for s in param_specs()
}

# register_model updates it; deploy_model runs after each event (dags/deploy_model.py).
MODEL_ASSET = glue.model_asset()

# CTR_TRAIN_QUEUE=gpu routes train_model to the workers started with
# `airflow celery worker --queues gpu` (CeleryExecutor); unset keeps the default queue.
TRAIN_QUEUE = os.environ.get("CTR_TRAIN_QUEUE", "").strip() or None


def _push(values: dict[str, Any]) -> None:
    # Pushed under their own keys (not as return_value) so Admin -> XComs shows exactly
    # the spec's keys: features_path, run_dir, metrics, model_version, registered_path.
    ti = get_current_context()["ti"]
    for key, value in values.items():
        ti.xcom_push(key=key, value=value)


@dag(
    dag_id=glue.DAG_ID,
    schedule=glue.training_schedule(),
    tags=["ml", "ctr", "training"],
    doc_md=__doc__,
    params=PARAMS,
    **glue.dag_defaults(),
)
def training_pipeline() -> None:
    xcom = {"multiple_outputs": True, "do_xcom_push": False}

    @task(**xcom)
    def validate_features() -> None:
        """Check the train/val/test splits; push `features_path`."""
        from ml.pipeline import steps

        glue.check_conf_keys(get_current_context()["dag_run"].conf, PARAMS)
        params, run = glue.pipeline_context()
        _push(glue.run_step("validate", steps.validate, params, run))

    queue = {"queue": TRAIN_QUEUE} if TRAIN_QUEUE else {}

    @task
    def create_study(features_path: str | None) -> list[dict[str, Any]]:
        """Create or resume the study; push `study`; one entry per tune_worker (none: off)."""
        from ml.pipeline import tuning

        params, run = glue.pipeline_context()
        out = glue.run_step("tune", tuning.prepare, params, run, features_path)
        # "" when tuning is off: an XCom of None reads back as missing.
        get_current_context()["ti"].xcom_push(key="study", value=out["study"] or "")
        return list(out["workers"])

    @task(
        retries=2, retry_delay=timedelta(seconds=30), execution_timeout=timedelta(hours=12), **queue
    )
    def tune_worker(worker: dict[str, Any]) -> dict[str, Any]:
        """Run trials until the study holds `tuning_trials` finished ones (a retry resumes)."""
        from ml.pipeline import tuning

        params, run = glue.pipeline_context()
        return dict(glue.run_step("tune", tuning.work, params, run, worker))

    @task(
        retries=2,
        retry_delay=timedelta(minutes=1),
        execution_timeout=timedelta(hours=2),
        on_retry_callback=glue.notify_retry,
        # Runs when the tuning group was skipped (tuning_trials=0), not after a failure.
        trigger_rule="none_failed",
        **queue,
        **xcom,
    )
    def train_model(features_path: str | None) -> None:
        """Train (resuming a previous try's checkpoint), or take the best tuning trial;
        push `run_dir`."""
        from ml.pipeline import steps

        params, run = glue.pipeline_context()
        # Pulled, not passed: `airflow tasks test train_model <date>` has no tuning XCom.
        ti = get_current_context()["ti"]
        study = ti.xcom_pull(task_ids="tuning.create_study", key="study")
        _push(glue.run_step("train", steps.train, params, run, features_path, study or None))

    @task(**xcom)
    def evaluate_model(run_dir: str | None) -> None:
        """Quality gates and champion/challenger; push `metrics` or fail without retry."""
        from ml.pipeline import steps

        params, run = glue.pipeline_context()
        _push(glue.run_step("evaluate", steps.evaluate, params, run, run_dir))

    @task(outlets=[MODEL_ASSET], **xcom)
    def register_model(run_dir: str | None, metrics: dict[str, Any] | None) -> None:
        """Register in staging (once per training run); push `model_version`, `registered_path`;
        update the model Asset (extra: `model_name`, `version`)."""
        from ml.pipeline import steps

        params, run = glue.pipeline_context()
        out = glue.run_step("register", steps.register, params, run, run_dir, metrics)
        _push(out)
        extra = {"model_name": params.model_name, "version": out["model_version"]}
        get_current_context()["outlet_events"][MODEL_ASSET].extra = extra

    @task
    def notify_completion(
        metrics: dict[str, Any] | None, model_version: str | None, registered_path: str | None
    ) -> None:
        """Log the summary; post it to Slack when a webhook connection exists."""
        from ml.pipeline import steps

        params, run = glue.pipeline_context()
        try_number = get_current_context()["ti"].try_number
        text = glue.run_step(
            "finish",
            steps.finish,
            params,
            run,
            metrics,
            model_version,
            registered_path,
            try_number=try_number,
        )
        glue.notify(text, run, try_number)

    features = validate_features()
    with TaskGroup("tuning", tooltip="Optuna trials as mapped tasks (tuning_trials > 0)") as tuning:
        workers = create_study(features["features_path"])
        tune_worker.expand(worker=workers)
    trained = train_model(features["features_path"])
    tuning >> trained
    evaluated = evaluate_model(trained["run_dir"])
    registered = register_model(trained["run_dir"], evaluated["metrics"])
    notify_completion(
        evaluated["metrics"], registered["model_version"], registered["registered_path"]
    )


training_pipeline()
