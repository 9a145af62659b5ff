"""Airflow glue for the DAGs: schedules and the Asset, conf checks, errors, notifications.

The work itself is ``ml.pipeline`` (the same steps ``ctr-pipeline run`` calls), and
message delivery is ``pipeline_notifications.py`` beside this file; each
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


def features_asset_uri() -> str:
    """``$CTR_FEATURES_ASSET_URI``, or the ``file://`` URI of the default features dir."""
    configured = os.environ.get(ASSET_URI_ENV, "").strip()
    return configured or paths.resolve(paths.FEATURES_DIR).as_uri()


def features_asset() -> Any:
    """The ``ctr_features`` Asset: a feature DAG's outlet, training's optional schedule."""
    from airflow.sdk import Asset

    return Asset(name=FEATURES_ASSET_NAME, uri=features_asset_uri())


MODEL_ASSET_NAME = "ctr_model_registered"
#: The URI of the Asset register_model updates (deploy_model's schedule).
MODEL_ASSET_URI_ENV = "CTR_MODEL_ASSET_URI"


def model_asset() -> Any:
    """The Asset ``register_model`` updates with each version it registers (extra:
    ``model_name``, ``version``); ``deploy_model`` runs after each event.
    ``$CTR_MODEL_ASSET_URI``, else the URI of the registry's staging dir (``file://``, or
    ``s3://bucket/models/staging`` for a registry at ``$CTR_PIPELINE_REGISTRY``)."""
    from airflow.sdk import Asset

    configured = os.environ.get(MODEL_ASSET_URI_ENV, "").strip()
    from ml.storage.url import is_url

    root = paths.registry_root()
    if is_url(root):
        uri = configured or f"{root.rstrip('/')}/staging"
    else:
        uri = configured or (paths.resolve(root) / "staging").as_uri()
    return Asset(name=MODEL_ASSET_NAME, uri=uri)


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


def notify(text: str, run: Any, try_number: int | None) -> None:
    """Deliver the success message of ``run`` (once per try of notify_completion)."""
    from pipeline_notifications import deliver

    key = f"success:notify_completion:{try_number}"
    deliver(text, dag_id=run.dag_id, run_id=run.run_id, key=key)


def notify_failure(context: Mapping[str, Any]) -> None:
    """``on_failure_callback`` of every task (see dags/pipeline_notifications.py)."""
    from pipeline_notifications import notify_failure as _notify

    _notify(context)


def notify_retry(context: Mapping[str, Any]) -> None:
    """``on_retry_callback`` of long tasks (see dags/pipeline_notifications.py)."""
    from pipeline_notifications import notify_retry as _notify

    _notify(context)


def dag_defaults() -> dict[str, Any]:
    """What every DAG of the project shares (``@dag(..., **glue.dag_defaults())``): a fixed
    start date, no catch-up, one run at a time, one retry after 30 s, failures notified."""
    from datetime import timedelta

    import pendulum

    return {
        "start_date": pendulum.datetime(2024, 1, 1, tz="UTC"),
        "catchup": False,
        "max_active_runs": 1,
        "default_args": {
            "owner": "ml-platform",
            "retries": 1,
            "retry_delay": timedelta(seconds=30),
            "on_failure_callback": notify_failure,
        },
    }
