"""Task bodies of the ``training_pipeline`` and ``feature_engineering_pipeline`` DAGs.

Plain functions: arguments in, a small JSON-able dict out (the XCom values), each a
short call into ``ml/``. They import torch/pandas (through ``ml``) only when called, so
the DAG files that import this module parse fast.

Every path that crosses a task boundary (XCom) is relative to the project's base
directory when it lies inside it (``data/features/v1``, ``experiments/runs/...``,
``models/staging/ctr_model/v1``) and is resolved with ``ml.paths.resolve`` on use, so a
scheduler worker, ``airflow dags test`` and a shell in another directory agree.

Upstream values may be ``None``: ``airflow tasks test`` runs each task in its own
temporary DAG run, so a task tested after its upstream finds no XCom. Each task then
falls back to something sensible and says so in its log (the configured features path,
the latest complete training run, the registry's latest version).

Errors a retry cannot fix (bad data, bad config, a failed quality gate) raise
``AirflowFailException`` so the task fails at once without retrying.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Callable, Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, NoReturn

from ml import paths

log = logging.getLogger(__name__)

DAG_ID = "training_pipeline"
FEATURE_DAG_ID = "feature_engineering_pipeline"
#: Airflow connection (type ``slackwebhook``) that receives notifications when it exists.
SLACK_CONN_ID = os.environ.get("CTR_SLACK_CONN_ID", "slack_webhook")
#: Env var choosing the training DAG's schedule (read when the DAG file is parsed).
SCHEDULE_ENV = "CTR_TRAINING_SCHEDULE"
DEFAULT_SCHEDULE = "@weekly"
FEATURES_ASSET_NAME = "ctr_features"
SCHEDULE_PRESETS = ("@hourly", "@daily", "@weekly", "@monthly", "@yearly")
MODEL_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$"
STAGING = "staging"
PRODUCTION = "production"


# --- helpers ---------------------------------------------------------------------------


def fail(message: str) -> NoReturn:
    """Fail the task without retrying (the problem needs a person, not another attempt)."""
    from airflow.sdk.exceptions import AirflowFailException

    log.error("❌ %s", message)
    raise AirflowFailException(message)


def display_path(path: str | os.PathLike[str]) -> str:
    """``path`` relative to the base directory when inside it, else absolute."""
    p = paths.resolve(path)
    base = paths.base_dir()
    return str(p.relative_to(base)) if p.is_relative_to(base) else str(p)


def features_asset_uri() -> str:
    """``file://`` URI of the default features directory (the Asset both DAGs share)."""
    return paths.resolve(paths.FEATURES_DIR).as_uri()


def features_asset() -> Any:
    """The Asset ``feature_engineering_pipeline`` updates and training can be scheduled on."""
    from airflow.sdk import Asset

    return Asset(name=FEATURES_ASSET_NAME, uri=features_asset_uri())


def training_schedule(value: str | None = None) -> Any:
    """Turn ``$CTR_TRAINING_SCHEDULE`` into an Airflow ``schedule``.

    Args:
        value: ``@weekly`` (default), ``@daily`` or another preset, a 5-field cron
            expression, ``none`` (manual only) or ``asset`` (run when
            ``feature_engineering_pipeline`` updates the features Asset). ``None``
            reads the environment.

    Returns:
        A preset or cron string, ``None``, or a list holding the features Asset.

    Raises:
        ValueError: The value is none of these (names the variable and the value).
    """
    raw = os.environ.get(SCHEDULE_ENV, DEFAULT_SCHEDULE) if value is None else value
    text = raw.strip()
    lowered = text.lower()
    if lowered in ("", "none", "null", "manual"):
        return None
    if lowered == "asset":
        return [features_asset()]
    if lowered in SCHEDULE_PRESETS:
        return lowered
    from croniter import croniter

    if len(text.split()) == 5 and croniter.is_valid(text):
        return text
    raise ValueError(
        f"{SCHEDULE_ENV}={raw!r} is not a schedule: use one of {', '.join(SCHEDULE_PRESETS)}, "
        "a 5-field cron expression such as '0 2 * * 1', 'none' (manual runs only) or "
        "'asset' (run when feature_engineering_pipeline refreshes the features)"
    )


def run_key(dag_id: str, run_id: str) -> str:
    """A short, digits-only key of one DAG run (stable across retries and clears)."""
    digest = hashlib.sha256(f"{dag_id}\n{run_id}".encode()).hexdigest()
    return f"{int(digest[:16], 16) % 10**10:010d}"


def run_dir_for(
    runs_dir: str | os.PathLike[str],
    experiment_name: str,
    dag_id: str,
    run_id: str,
    started_at: datetime | None = None,
) -> Path:
    """The training run directory of one DAG run: the same path for every try.

    ``<runs_dir>/<experiment_name>_<YYYYmmdd_HHMMSS>_<run key>``: the timestamp is the
    DAG run's start (for people), the key identifies the DAG run (for retries: a second
    try finds the first try's directory by its key and resumes there, even when the
    run's start time was reset by a clear).
    """
    root = paths.resolve(runs_dir)
    key = run_key(dag_id, run_id)
    if root.is_dir():
        mine = sorted(
            p
            for p in root.iterdir()
            if p.is_dir()
            and p.name.startswith(f"{experiment_name}_")
            and p.name.endswith(f"_{key}")
        )
        if mine:
            return mine[-1]
    when = (started_at or datetime.now(timezone.utc)).astimezone(timezone.utc)
    return root / f"{experiment_name}_{when:%Y%m%d_%H%M%S}_{key}"


def _load_config(config_path: str, epochs: int | None = None) -> Any:
    from ml.config import ConfigError, load_config

    try:
        cfg = load_config(config_path)
        if epochs is not None:
            cfg = cfg.replace(training={"epochs": int(epochs)})
    except ConfigError as exc:
        fail(f"config_path={config_path!r}: {exc}")
    return cfg


def _latest_run(cfg: Any, why: str) -> Path:
    from ml.training.run_dir import latest_complete_run

    run = latest_complete_run(cfg.output.runs_dir, cfg.experiment_name)
    if run is None:
        fail(
            f"{why}, and there is no complete training run under "
            f"{display_path(cfg.output.runs_dir)} (experiment {cfg.experiment_name!r}) to "
            "fall back on. Run train_model first (`airflow tasks test training_pipeline "
            "train_model`), or trigger the whole DAG (`airflow dags test training_pipeline`)."
        )
    log.info("%s: using the latest complete training run %s", why, display_path(run))
    return run


def _run_dir_or_latest(run_dir: str | None, cfg: Any) -> Path:
    if run_dir is None:
        return _latest_run(cfg, "No run_dir from train_model (XCom not found)")
    path = paths.resolve(run_dir)
    from ml.training.run_dir import is_complete

    if not is_complete(path):
        fail(
            f"training run {display_path(path)} is not complete (no COMPLETE marker); "
            "clear train_model to finish it"
        )
    return path


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        fail(f"{display_path(path)} does not exist; the training run is incomplete")
    except ValueError as exc:
        fail(f"{display_path(path)} is not valid JSON: {exc}")
    if not isinstance(data, dict):
        fail(f"{display_path(path)} must hold a JSON object")
    return data


def check_conf_keys(conf: Mapping[str, Any] | None, allowed: Mapping[str, Any]) -> None:
    """Reject a DAG-run conf key that is not a param (a typo would be ignored silently)."""
    unknown = sorted(set(conf or {}) - set(allowed))
    if unknown:
        fail(
            f"unknown conf key {unknown[0]!r}"
            + (f" (and {unknown[1:]})" if len(unknown) > 1 else "")
            + f"; this DAG's params are: {', '.join(sorted(allowed))}"
        )


# --- training_pipeline -------------------------------------------------------------------


def validate_features(features_path: str, config_path: str) -> dict[str, Any]:
    """Check that the train/val/test splits exist and match the config's feature spec.

    Returns:
        ``{"features_path": <path relative to the base directory>}``.
    """
    from ml.data.validate import FeatureValidationError
    from ml.data.validate import validate_features as _validate

    cfg = _load_config(config_path)
    features_dir = paths.resolve(features_path)
    try:
        report = _validate(features_dir, cfg.features, numeric_nan=cfg.data.numeric_nan)
    except FeatureValidationError as exc:
        fail(
            f"features_path={display_path(features_dir)} failed validation: {exc}\n"
            "Fix the data, or (re)generate it: `ctr-pipeline data generate` or trigger "
            f"{FEATURE_DAG_ID}."
        )
    for line in report.lines():
        log.info(line)
    return {"features_path": display_path(features_dir)}


def train_model(
    features_path: str | None,
    *,
    config_path: str,
    default_features_path: str,
    epochs: int | None,
    dag_id: str,
    run_id: str,
    started_at: datetime | None,
    log_line: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Train (or resume, or reuse) this DAG run's training run.

    Returns:
        ``{"run_dir": <path relative to the base directory>}``.
    """
    if features_path is None:
        log.info(
            "No features_path from validate_features (XCom not found, e.g. under "
            "`airflow tasks test`): using the features_path param %s",
            default_features_path,
        )
        features_path = default_features_path
    cfg = _load_config(config_path, epochs)
    run_dir = run_dir_for(cfg.output.runs_dir, cfg.experiment_name, dag_id, run_id, started_at)
    from ml.training.trainer import TrainingError, train

    # The trainer logs "🚀 Running training command...", each epoch and "✅ Training complete".
    log.info(
        "Run directory for %s / %s (the same for every try): %s",
        dag_id,
        run_id,
        display_path(run_dir),
    )
    try:
        result = train(
            cfg,
            features_dir=paths.resolve(features_path),
            run_dir=run_dir,
            resume=True,
            log=log_line or log.info,
        )
    except TrainingError as exc:
        fail(f"training failed: {exc}")
    if result.resumed_from_epoch:
        log.info("   (resumed from the checkpoint of epoch %d)", result.resumed_from_epoch)
    return {"run_dir": display_path(result.run_dir)}


def _production_champion(model_name: str, features_dir: Path) -> Any:
    """Score the production model (``current``) on ``features_dir``'s test split, or None."""
    from ml.evaluation.evaluate import evaluate_checkpoint
    from ml.evaluation.gates import Champion
    from ml.registry.errors import NotFoundError
    from ml.registry.model_registry import ModelRegistry

    registry = ModelRegistry()
    version = registry.current_version(model_name)
    if version is None:
        log.info("No production model %r yet: nothing to compare against", model_name)
        return None, None
    try:
        checkpoint = registry.path_of(model_name, version, PRODUCTION) / "model.pt"
    except NotFoundError as exc:
        fail(f"production/{model_name}/current points at {version}, which is unusable: {exc}")
    try:
        scores = evaluate_checkpoint(checkpoint, features_dir, split="test")
    except (OSError, ValueError) as exc:  # CheckpointError, DataLoadError are ValueErrors
        fail(
            f"cannot score the production model {model_name} {version} on "
            f"{display_path(features_dir)} for the champion/challenger gate: {exc}"
        )
    return Champion(version, float(scores["auc"]), float(scores["accuracy"])), checkpoint


def evaluate_model(
    run_dir: str | None,
    *,
    config_path: str,
    model_name: str,
    min_auc: float,
    min_accuracy: float,
    max_auc_drop: float,
) -> dict[str, Any]:
    """Apply the quality gates to a training run; fail the DAG run (no retry) if one fails.

    Returns:
        ``{"metrics": {test metrics, "run_dir", "champion", "gates"}}``.
    """
    from ml.evaluation.gates import GateConfigError, evaluate_gates
    from ml.notifications import metrics_lines

    cfg = _load_config(config_path)
    run = _run_dir_or_latest(run_dir, cfg)
    metrics = _read_json(run / "metrics.json")
    run_info = _read_json(run / "run.json")
    features_dir = Path(run_info.get("features_dir") or paths.resolve(cfg.data.features_dir))

    champion, _ = _production_champion(model_name, features_dir)
    challenger_auc = None
    if champion is not None:
        from ml.evaluation.evaluate import evaluate_checkpoint

        # Score both models with the same code on the same rows, so the comparison is fair.
        mine = evaluate_checkpoint(run / "model_best.pt", features_dir, split="test")
        challenger_auc = float(mine["auc"])
        log.info(
            "⚔️  Champion/challenger on %s test split: production %s AUC %.4f, new model %.4f",
            display_path(features_dir),
            champion.version,
            champion.test_auc,
            challenger_auc,
        )
    try:
        report = evaluate_gates(
            metrics,
            min_auc=min_auc,
            min_accuracy=min_accuracy,
            max_auc_drop=max_auc_drop,
            champion=champion,
            challenger_auc=challenger_auc,
        )
    except GateConfigError as exc:
        fail(str(exc))

    for line in metrics_lines(metrics):
        log.info(line)
    for result in report.results:
        log.info("   %s gate %s: %s", "✅" if result.passed else "❌", result.name, result.message)
    if not report.passed:
        fail(f"{report.summary()} (run {display_path(run)}; nothing was registered)")

    summary: dict[str, Any] = {
        k: metrics[k]
        for k in (
            "test_auc",
            "test_accuracy",
            "test_logloss",
            "val_auc",
            "best_epoch",
            "epochs_run",
            "train_time_s",
        )
        if k in metrics
    }
    summary["run_dir"] = display_path(run)
    summary["champion"] = (
        None
        if champion is None
        else {
            "version": champion.version,
            "test_auc": champion.test_auc,
            "test_accuracy": champion.test_accuracy,
            "challenger_test_auc": challenger_auc,
        }
    )
    summary["gates"] = [r.to_dict() for r in report.results]
    return {"metrics": summary}


def register_model(
    run_dir: str | None,
    metrics: Mapping[str, Any] | None,
    *,
    config_path: str,
    model_name: str,
    min_auc: float,
    min_accuracy: float,
    max_auc_drop: float,
    auto_promote: bool,
    dag_id: str,
    run_id: str,
) -> dict[str, Any]:
    """Register the run in staging (once per training run), and promote it if asked.

    Returns:
        ``{"model_version": "v3", "registered_path": "models/staging/ctr_model/v3"}``.
    """
    from ml.notifications import registered_lines
    from ml.registry.errors import RegistryError
    from ml.registry.model_registry import ModelRegistry

    cfg = _load_config(config_path)
    if metrics is None:
        # Never register something the gates have not passed in this DAG run.
        log.info("No metrics from evaluate_model (XCom not found): checking the gates here")
        metrics = evaluate_model(
            run_dir,
            config_path=config_path,
            model_name=model_name,
            min_auc=min_auc,
            min_accuracy=min_accuracy,
            max_auc_drop=max_auc_drop,
        )["metrics"]
        run_dir = run_dir or str(metrics["run_dir"])
    run = _run_dir_or_latest(run_dir, cfg)

    registry = ModelRegistry()
    try:
        rv = registry.register(
            run, model_name, dag_id=dag_id, run_id=run_id, created_by=f"airflow:{dag_id}"
        )
    except RegistryError as exc:
        fail(f"registering {display_path(run)} as {model_name!r} failed: {exc}")
    path = display_path(rv.path)
    for line in registered_lines(rv.name, rv.version, STAGING, path, created=rv.created):
        log.info(line)

    if auto_promote:
        current = registry.current_version(model_name)
        if current == rv.version:
            log.info("🚀 %s %s is already the production model", model_name, rv.version)
        else:
            registry.promote_to_production(
                model_name,
                rv.version,
                reason=f"auto_promote: all quality gates passed in {dag_id} / {run_id}",
            )
            log.info("🚀 Promoted %s %s to production (auto_promote)", model_name, rv.version)
    return {"model_version": rv.version, "registered_path": path}


def notify_completion(
    metrics: Mapping[str, Any] | None,
    model_version: str | None,
    registered_path: str | None,
    *,
    model_name: str,
    dag_id: str,
    run_id: str,
) -> dict[str, Any]:
    """Log the completion summary and post it to Slack when a webhook is configured.

    Returns:
        ``{"posted": bool}`` (not pushed to XCom by the DAG).
    """
    from ml.notifications import success_message
    from ml.registry.errors import NotFoundError
    from ml.registry.model_registry import ModelRegistry

    registry = ModelRegistry()
    if model_version is None:
        try:
            model_version = registry.get_latest_version(model_name, STAGING)
        except NotFoundError:
            model_version = None
        log.info(
            "No model_version from register_model (XCom not found): reporting the "
            "registry's latest staging version, %s %s",
            model_name,
            model_version,
        )
    if model_version is not None and registered_path is None:
        registered_path = display_path(registry.path_of(model_name, model_version, STAGING))
    if metrics is None and registered_path is not None:
        metrics_file = paths.resolve(registered_path) / "metrics.json"
        metrics = json.loads(metrics_file.read_text()) if metrics_file.is_file() else None
    text = success_message(
        model_name=model_name,
        version=model_version,
        path=registered_path,
        metrics=metrics,
        dag_id=dag_id,
        run_id=run_id,
        promoted=model_version is not None
        and registry.current_version(model_name) == model_version,
        gates=(metrics or {}).get("gates") or (),
    )
    for line in text.splitlines():
        log.info(line)
    return {"posted": post_to_slack(text)}


def post_to_slack(text: str, conn_id: str | None = None) -> bool:
    """Post ``text`` to the Slack webhook connection; never raises.

    Returns:
        Whether it was posted. Without the connection the notification is log-only.
    """
    from airflow.sdk import BaseHook
    from airflow.sdk.exceptions import AirflowNotFoundException

    from ml.notifications import slack_payload

    conn_id = conn_id or SLACK_CONN_ID
    try:
        BaseHook.get_connection(conn_id)
    except AirflowNotFoundException:
        log.info(
            "No Airflow connection %r: notifications are log-only (add a 'slackwebhook' "
            "connection named %r to post them to Slack)",
            conn_id,
            conn_id,
        )
        return False
    try:
        from airflow.providers.slack.hooks.slack_webhook import SlackWebhookHook

        SlackWebhookHook(slack_webhook_conn_id=conn_id, timeout=10).send_dict(slack_payload(text))
    except Exception as exc:  # a notification problem must never fail the pipeline
        log.warning("Slack notification via connection %r failed: %s", conn_id, exc)
        return False
    log.info("📣 Notification posted to Slack (connection %r)", conn_id)
    return True


def notify_failure(context: Mapping[str, Any]) -> None:
    """``on_failure_callback``: log and post which task failed, why, and its log URL."""
    from ml.notifications import failure_message

    ti = context.get("ti") or context.get("task_instance")
    text = failure_message(
        dag_id=getattr(ti, "dag_id", None) or DAG_ID,
        run_id=str(context.get("run_id") or getattr(ti, "run_id", "")),
        task_id=getattr(ti, "task_id", "unknown task"),
        error=context.get("exception"),
        log_url=getattr(ti, "log_url", None),
        try_number=getattr(ti, "try_number", None),
    )
    for line in text.splitlines():
        log.error(line)
    post_to_slack(text)


# --- feature_engineering_pipeline -------------------------------------------------------


def generate_features(rows: int, seed: int) -> dict[str, Any]:
    """(Re)generate the default features directory atomically.

    Returns:
        ``{"features_path", "rows"}``.
    """
    from ml.data.generate import GenerationError, describe
    from ml.data.generate import generate_features as _generate

    target = paths.resolve(paths.FEATURES_DIR)
    log.info("🏭 Generating %d rows (seed %d) into %s", rows, seed, display_path(target))
    try:
        report = _generate(target, rows=rows, seed=seed, overwrite=True)
    except GenerationError as exc:
        fail(f"feature generation failed: {exc}")
    for line in describe(report):
        log.info(line)
    return {"features_path": display_path(target), "rows": int(sum(report["rows"].values()))}


def save_features(features_path: str | None, config_path: str) -> dict[str, Any]:
    """Validate the generated features; the DAG marks the features Asset updated.

    Returns:
        The Asset event's extra: ``{"features_path", "rows", "digest"}``.
    """
    from ml.data.validate import fingerprint

    features_path = features_path or display_path(paths.FEATURES_DIR)
    validate_features(features_path, config_path)
    cfg = _load_config(config_path)
    fp = fingerprint(paths.resolve(features_path), cfg.features)
    extra = {"features_path": features_path, "digest": str(fp["digest"])}
    log.info("📦 Features saved: %s (digest %s)", features_path, extra["digest"][:12])
    return extra
