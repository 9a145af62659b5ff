"""Text of the pipeline's log summaries and notifications (no Airflow, no network).

The training DAG logs these lines (the spec's "Expected output in logs") and posts the
same text to Slack when a webhook connection is configured; keeping the wording here
lets it be tested and reused without Airflow.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

#: Metrics shown in the summaries, in this order when present.
SUMMARY_METRICS = ("test_accuracy", "test_auc", "test_logloss")


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4f}"
    return str(value)


def metrics_lines(metrics: Mapping[str, Any], prefix: str = "test_") -> list[str]:
    """The spec's metric block: ``📊 Model Metrics:`` then ``   test_auc: 0.7891`` lines.

    Args:
        metrics: A flat metrics dict; the entries starting with ``prefix`` are shown,
            sorted by name.
        prefix: Which metrics (``test_``, ``val_``...).

    Returns:
        The lines, without trailing newlines.
    """
    keys = sorted(k for k, v in metrics.items() if k.startswith(prefix) and _is_number(v))
    return ["📊 Model Metrics:", *(f"   {k}: {_fmt(metrics[k])}" for k in keys)]


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def registered_lines(name: str, version: str, stage: str, path: str, *, created: bool) -> list[str]:
    """``✅ Model registered: ctr_model v1 (staging)`` and its ``   Path: ...`` line.

    Args:
        name: Registered model name.
        version: Version string (``v1``).
        stage: Registry stage (``staging``).
        path: Where the version lives, relative to the base directory when possible.
        created: ``False`` when the training run was already registered (a rerun).

    Returns:
        The lines, without trailing newlines.
    """
    if created:
        head = f"✅ Model registered: {name} {version} ({stage})"
    else:
        head = (
            f"✅ Model already registered: {name} {version} ({stage}) "
            "(this training run was registered before; no new version)"
        )
    return [head, f"   Path: {path}"]


def success_message(
    *,
    model_name: str,
    version: str | None,
    path: str | None,
    metrics: Mapping[str, Any] | None,
    dag_id: str,
    run_id: str,
    stage: str = "staging",
    promoted: bool = False,
    gates: Sequence[Mapping[str, Any]] = (),
    tuning: Mapping[str, Any] | None = None,
) -> str:
    """The completion summary, starting with ``🎉 Training Pipeline Complete!``.

    Args:
        model_name: Registered model name.
        version: The version registered by this run (``None`` when unknown).
        path: Its location.
        metrics: Test metrics (may be ``None`` when unknown).
        dag_id: The DAG id.
        run_id: The DAG run id.
        stage: Stage the version is in.
        promoted: Whether the run promoted the version to production.
        gates: Gate results (dicts with ``name``, ``passed``, ``message``).
        tuning: The study the model came from (``ml.tuning.report.summary``), if tuned.

    Returns:
        Multi-line text for the log and for Slack.
    """
    lines = ["🎉 Training Pipeline Complete!", f"   DAG run: {dag_id} / {run_id}"]
    if version is not None:
        lines.append(f"   Model: {model_name} {version} ({stage})")
    else:
        lines.append(f"   Model: {model_name} (version unknown)")
    if path:
        lines.append(f"   Path: {path}")
    for key in SUMMARY_METRICS:
        if metrics and _is_number(metrics.get(key)):
            lines.append(f"   {key}: {_fmt(metrics[key])}")
    for gate in gates:
        mark = "✅" if gate.get("passed") else "❌"
        lines.append(f"   {mark} gate {gate.get('name')}: {gate.get('message')}")
    lines += tuning_lines(tuning)
    if promoted and version is not None:
        lines.append(f"   🚀 Promoted to production: {model_name} {version}")
    elif version is not None:
        lines.append(
            f"   Next: review it, then promote with `ctr-pipeline registry promote "
            f"{model_name} {version}`"
        )
    return "\n".join(lines)


def tuning_lines(tuning: Mapping[str, Any] | None) -> list[str]:
    """The tuning block: the best trial, its parameters, and trials ran/pruned/failed."""
    if not tuning or not tuning.get("best"):
        return []
    best, trials = tuning["best"], tuning.get("trials") or {}
    params = ", ".join(f"{k}={_fmt(v)}" for k, v in (best.get("params") or {}).items())
    ran = int(trials.get("finished", 0)) + int(trials.get("failed", 0))
    return [
        f"   🔎 Tuned: best trial {best.get('number')} of study {tuning.get('study')} "
        f"({tuning.get('metric')} {_fmt(best.get('value'))})",
        f"      parameters: {params or '-'}",
        f"      trials: {ran} ran, {trials.get('complete', 0)} complete, "
        f"{trials.get('pruned', 0)} pruned, {trials.get('failed', 0)} failed",
    ]


def failure_message(
    *,
    dag_id: str,
    run_id: str,
    task_id: str,
    error: BaseException | str | None,
    log_url: str | None,
    try_number: int | None = None,
) -> str:
    """The failure notification: names the task, the error and where its log is.

    Args:
        dag_id: The DAG id.
        run_id: The DAG run id.
        task_id: The failed task.
        error: The exception (or its text).
        log_url: The task log's URL in the Airflow UI.
        try_number: The attempt that failed.

    Returns:
        Multi-line text for the log and for Slack.
    """
    if isinstance(error, BaseException):
        err = f"{type(error).__name__}: {error}"
    else:
        err = error or "unknown error"
    attempt = f" (attempt {try_number})" if try_number else ""
    lines = [
        f"❌ Training Pipeline FAILED at {task_id}{attempt}",
        f"   DAG run: {dag_id} / {run_id}",
        f"   Error: {err}",
    ]
    if log_url:
        lines.append(f"   Log: {log_url}")
    return "\n".join(lines)


def slack_payload(text: str) -> dict[str, Any]:
    """The JSON body for a Slack incoming webhook."""
    return {"text": text}
