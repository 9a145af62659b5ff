"""Airflow glue for the DAGs: schedules and the Asset, conf checks, errors, notifications.

The work itself is ``ml.pipeline`` (the same steps ``ctr-pipeline run`` calls); each
task is one call through :func:`run_step`, which translates errors once: a
``UserError`` or ``GateFailedError`` fails the task without retrying (a person must fix
the input), anything else (a ``RetryableError``: disk full, lock timeout, service down)
is raised as it is, so Airflow retries. Nothing heavy is imported at module level, so the
DAG files parse fast.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

from ml import paths

log = logging.getLogger(__name__)
T = TypeVar("T")

DAG_ID = "training_pipeline"
FEATURE_DAG_ID = "feature_engineering_pipeline"
SCHEDULE_ENV = "CTR_TRAINING_SCHEDULE"
DEFAULT_SCHEDULE = "@weekly"
SCHEDULE_PRESETS = ("@hourly", "@daily", "@weekly", "@monthly", "@yearly")
FEATURES_ASSET_NAME = "ctr_features"
#: The Asset's URI (fixed when the DAG files are parsed); default: the default features dir.
ASSET_URI_ENV = "CTR_FEATURES_ASSET_URI"
MODEL_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$"


def features_asset_uri() -> str:
    """``$CTR_FEATURES_ASSET_URI``, or the ``file://`` URI of the default features dir."""
    configured = os.environ.get(ASSET_URI_ENV, "").strip()
    return configured or paths.resolve(paths.FEATURES_DIR).as_uri()


def features_asset() -> Any:
    """The ``ctr_features`` Asset: a feature DAG's outlet, training's optional schedule."""
    from airflow.sdk import Asset

    return Asset(name=FEATURES_ASSET_NAME, uri=features_asset_uri())


def training_schedule(value: str | None = None) -> Any:
    """``$CTR_TRAINING_SCHEDULE`` (or ``value``) as an Airflow ``schedule``.

    ``@weekly`` (default) or another preset, a 5-field cron expression, ``none`` (manual
    only) or ``asset`` (after each update of the features Asset).

    Raises:
        ValueError: none of these (names the variable and the value).
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
        "'asset' (run when the features Asset is updated)"
    )


def fail(message: str) -> Any:
    """Fail the task without retrying (the problem needs a person, not another attempt)."""
    from airflow.sdk.exceptions import AirflowFailException

    log.error("❌ %s", message)
    raise AirflowFailException(message)


def check_conf_keys(conf: Mapping[str, Any] | None, params: Mapping[str, Any]) -> None:
    """Fail on a conf key that is not a param (a typo would otherwise be ignored)."""
    unknown = sorted(set(conf or {}) - set(params))
    if unknown:
        fail(
            f"unknown conf key {unknown[0]!r}"
            + (f" (and {unknown[1:]})" if len(unknown) > 1 else "")
            + f"; the params are {sorted(params)}"
        )


def pipeline_context() -> tuple[Any, Any]:
    """``(Params, PipelineRun)`` of the running task's DAG run."""
    from airflow.sdk import get_current_context

    from ml.pipeline.params import Params, PipelineRun

    context = get_current_context()
    dag_run = context["dag_run"]
    run = PipelineRun(
        dag_id=dag_run.dag_id,
        run_id=context["run_id"],
        logical_date=getattr(dag_run, "logical_date", None),
        started_at=getattr(dag_run, "run_after", None) or getattr(dag_run, "start_date", None),
    )
    return Params.from_mapping(context["params"]), run


def run_step(step: str, func: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Call an ``ml.pipeline`` step and translate its errors once (see module doc)."""
    from ml.errors import GateFailedError, UserError
    from ml.pipeline.steps import record_failure

    try:
        return func(*args, **kwargs)
    except (UserError, GateFailedError) as exc:
        _record(record_failure, args, step, exc)
        fail(str(exc))
        raise  # unreachable: fail() raises
    except Exception as exc:
        _record(record_failure, args, step, exc)
        raise


def _record(
    record_failure: Callable[..., None], args: tuple[Any, ...], step: str, exc: Exception
) -> None:
    run = args[1] if len(args) > 1 else None
    if run is not None and hasattr(run, "run_id"):
        record_failure(run, step, exc)


def post_to_slack(text: str, conn_id: str | None = None) -> bool:
    """Post ``text`` to the Slack webhook connection (``dags/notifications.py``)."""
    import notifications

    return bool(notifications.post_to_slack(text, conn_id))


def send_email(text: str, subject: str | None = None, conn_id: str | None = None) -> bool:
    """Email ``text`` through the SMTP connection (``dags/notifications.py``)."""
    import notifications

    return bool(notifications.send_email(text, subject, conn_id))


def notify(text: str) -> None:
    """Log ``text`` line by line and send it to every configured channel."""
    for line in text.splitlines():
        log.info(line)
    post_to_slack(text)
    send_email(text)


def notify_failure(context: Mapping[str, Any]) -> None:
    """``on_failure_callback``: name the DAG, the task, the error and its log URL."""
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
    send_email(text)


def feature_target() -> Path:
    """The directory ``feature_engineering_pipeline`` writes (the default features dir)."""
    return paths.resolve(paths.FEATURES_DIR)
