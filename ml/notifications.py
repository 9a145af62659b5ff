"""Text of the pipeline's log summaries and notifications (no Airflow, no network).

The training DAG logs these lines (the spec's "Expected output in logs") and sends the
same text to Slack and by email when those connections are configured
(``dags/notifications.py``); keeping the wording here lets it be tested and reused
without Airflow. An email's subject is :func:`email_subject` of the text and its body
:func:`email_html` (the text, escaped, in a ``<pre>`` block).
"""

from __future__ import annotations

import html
import re
from collections.abc import Mapping, Sequence
from typing import Any

#: Metrics shown in the summaries, in this order when present.
SUMMARY_METRICS = ("test_accuracy", "test_auc", "test_logloss")
#: How each DAG is named in a notification's title (others: by their dag_id).
PIPELINE_TITLES = {
    "training_pipeline": "Training Pipeline",
    "ctr-pipeline": "Training Pipeline",
    "feature_engineering_pipeline": "Feature Pipeline",
}


def pipeline_title(dag_id: str) -> str:
    """``Training Pipeline`` for the training DAG, ``Feature Pipeline``, else the dag_id."""
    return PIPELINE_TITLES.get(dag_id, dag_id)


def task_log_url(
    base_url: str | None,
    *,
    dag_id: str,
    run_id: str,
    task_id: str,
    try_number: int | None = None,
    map_index: int = -1,
) -> str | None:
    """The task log's page in the Airflow UI under ``base_url`` (None without a base URL:
    no server is known to run, e.g. under ``airflow dags test``)."""
    from urllib.parse import quote

    if not base_url:
        return None
    mapped = f"/mapped/{map_index}" if map_index >= 0 else ""
    attempt = f"?try_number={try_number}" if try_number else ""
    return (
        f"{base_url.rstrip('/')}/dags/{quote(dag_id)}/runs/{quote(run_id, safe='')}"
        f"/tasks/{quote(task_id)}{mapped}{attempt}"
    )


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


def _secs(value: Any) -> str:
    return f"{float(value):.1f}" if _is_number(value) else str(value)


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
    rerun_try: int | None = None,
    drift: Mapping[str, Any] | None = None,
    unchanged_since: str | None = None,
    tuning: Mapping[str, Any] | None = None,
    model_choice: Mapping[str, Any] | None = None,
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
        rerun_try: The try number when this is a re-run (a cleared task), else None.
        drift: The drift check's report (``DriftReport.to_dict()``), if it ran.
        unchanged_since: The version this run found identical inputs for (training and
            registration were skipped), else None.
        tuning: The study the model came from (``ml.tuning.report.summary``), if tuned.
        model_choice: ``model.name: auto``'s choice and candidates table
            (``ml.training.auto.AutoChoice.to_dict()``), when it chose.

    Returns:
        Multi-line text for the log and for Slack.
    """
    head = "🎉 Training Pipeline Complete!"
    if rerun_try:
        head += f" (re-run of {run_id}, try {rerun_try})"
    lines = [head, f"   DAG run: {dag_id} / {run_id}"]
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
    lines += drift_lines(drift)
    if unchanged_since:
        lines.append(
            f"   ⏭️  Nothing changed since {model_name} {unchanged_since} (same data, config "
            "and code): training and registration skipped (force_retrain=true overrides)"
        )
    lines += tuning_lines(tuning)
    lines += model_choice_lines(model_choice)
    if promoted and version is not None:
        lines.append(f"   🚀 Promoted to production: {model_name} {version}")
    elif version is not None:
        lines.append(
            f"   Next: review it, then promote with `ctr-pipeline registry promote "
            f"{model_name} {version}`"
        )
    return "\n".join(lines)


def drift_lines(drift: Mapping[str, Any] | None) -> list[str]:
    """The drift report in a message: its headline and each drifted field's PSI."""
    if not drift:
        return []
    lines = [f"   {drift.get('headline', '🌊 Drift check: no headline')}"]
    for f in drift.get("fields") or ():
        if f.get("drifted"):
            lines.append(
                f"      ⚠️ {f.get('field')}: PSI {f.get('psi')} ({f.get('largest_change')})"
            )
    return lines


def model_choice_lines(choice: Mapping[str, Any] | None) -> list[str]:
    """``model.name: auto``'s block: the family kept, why, and one line per candidate
    (validation AUC and log loss, epochs, seconds, or why it was skipped)."""
    if not choice or not choice.get("chosen"):
        return []
    lines = [
        f"   🧭 Model family: {choice['chosen']} (automatic: {choice.get('reason', '')}; "
        f"{_secs(choice.get('seconds'))} s of a {_secs(choice.get('budget_s'))} s budget)"
    ]
    for c in choice.get("candidates") or ():
        mark = "→" if c.get("family") == choice["chosen"] else " "
        if c.get("skipped"):
            lines.append(f"      {mark} {c.get('family')}: skipped, {c['skipped']}")
            continue
        lines.append(
            f"      {mark} {c.get('family')}: val AUC {_fmt(c.get('val_auc'))}, val log loss "
            f"{_fmt(c.get('val_logloss'))}, {c.get('epochs')} epochs, {_secs(c.get('seconds'))} s"
            + (f" ({c['cut_short']})" if c.get("cut_short") else "")
        )
    return lines


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
        f"❌ {pipeline_title(dag_id)} FAILED at {task_id}{attempt}",
        f"   DAG run: {dag_id} / {run_id}",
        f"   Error: {err}",
    ]
    if log_url:
        lines.append(f"   Log: {log_url}")
    return "\n".join(lines)


def retry_message(
    *,
    dag_id: str,
    run_id: str,
    task_id: str,
    error: BaseException | str | None,
    try_number: int | None,
    log_url: str | None,
) -> str:
    """A long task failed and will be retried: who, why, and that it resumes."""
    err = f"{type(error).__name__}: {error}" if isinstance(error, BaseException) else error
    lines = [
        f"🔁 {pipeline_title(dag_id)}: {task_id} failed on try {try_number or '?'} and will "
        "be retried (it resumes from its last checkpoint)",
        f"   DAG run: {dag_id} / {run_id}",
        f"   Error: {err or 'unknown error'}",
    ]
    if log_url:
        lines.append(f"   Log: {log_url}")
    return "\n".join(lines)


#: What happens after the decision, by ``ml.pipeline.deploy.decide``'s action.
DECISION_NEXT = {
    "ask": "waiting for approval in Airflow (Browse → Required Actions, task approve)",
    "promote": "promoting it (approval: auto, a significant win)",
    "end": "ending the canary (approval: auto, no significant win)",
}


def decision_message(
    *,
    model_name: str,
    version: str,
    traffic: float,
    why: str,
    evidence: str,
    action: str,
    report_lines: Sequence[str],
    links: Mapping[str, str],
    run: str,
) -> str:
    """``deploy_model``'s decision report, starting with ``⚖️ Canary decision:``: the
    verdict, what happens next, the A/B table (per variant: rows, clicks, CTR, log loss,
    AUC with intervals; the differences) and the links to the card and the Models page.

    Args:
        why: The verdict in words (``candidate BETTER on auc``).
        evidence: The outcomes counted (``1,000 control / 1,000 candidate outcomes``).
        action: ``ask``, ``promote`` or ``end``.
        report_lines: ``serve report``'s table (``ml.serving.report.ab.report_lines``).
        run: The DAG run (``deploy_model manual__...``).
    """
    lines = [
        f"⚖️ Canary decision: {why}",
        f"   Model: {model_name} {version} (canary at {traffic:.0%} of users)",
        f"   Evidence: {evidence}",
        f"   Next: {DECISION_NEXT.get(action, action)}",
        "",
        *(f"   {line}" for line in report_lines),
        "",
    ]
    lines += [f"   {label}: {url}" for label, url in links.items() if url]
    dag_id, _, run_id = run.partition(" ")
    lines.append(f"   DAG run: {dag_id} / {run_id}" if run_id else f"   DAG run: {run}")
    return "\n".join(lines)


def slack_payload(text: str) -> dict[str, Any]:
    """The JSON body for a Slack incoming webhook."""
    return {"text": text}


def email_subject(text: str, prefix: str = "[ctr-pipeline]") -> str:
    """A subject line for ``text``: its first line without the emoji, then the model
    (a success) or the DAG run (a failure), e.g. ``[ctr-pipeline] Training Pipeline
    Complete! – ctr_model v3 (staging)``.
    """
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if not lines:
        return f"{prefix} notification"
    head = re.sub(r"^\W+", "", lines[0])  # without the leading emoji

    def field(name: str) -> str:
        return next((ln.removeprefix(name).strip() for ln in lines if ln.startswith(name)), "")

    detail = field("Model:") or field("DAG run:")
    return f"{prefix} {head}" + (f" – {detail}" if detail else "")


def email_html(text: str) -> str:
    """The email body: ``text`` escaped in a ``<pre>`` block (the SMTP hook sends HTML)."""
    return f'<pre style="font-family: monospace; font-size: 13px">{html.escape(text)}</pre>\n'
