"""The deploy steps: from a registered version to production through a live canary.

``check_candidate`` → ``start_canary`` → ``evidence`` (polled until ready) → ``decide``
→ (a person approves, or ``approval: auto``) ``promote`` → ``finish``. Plain functions
of :class:`DeploySettings` and a ``ModelRegistry``; ``dags/deploy_model.py`` calls them
(its ``wait_for_evidence`` trigger polls :func:`evidence`), and so can a script.

- The canary is the registry's setting (:mod:`ml.registry.canary`): running
  ``ctr-pipeline serve`` processes send ``canary_traffic`` of their users to the
  candidate without a restart; the service logs which variant scored each request.
- Evidence is the service's logs since the canary started: rows with an outcome per
  variant, the candidate's counting only when that version scored them.
- The decision is the A/B report (:mod:`ml.serving.report.ab`) on ``metric``: with
  ``approval: auto`` a significant win promotes, anything else (a significant loss, no
  significant difference at ``min_impressions``, ``max_wait`` passed) ends the canary;
  with ``manual`` a person decides in the Airflow UI, the report in front of them.
- Every change is recorded in the registry's history with ``by`` and a ``reason``
  naming the run and the verdict.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ml.errors import ConfigError, UserError

log = logging.getLogger("ml.pipeline")
AUTO, MANUAL = "auto", "manual"
PROMOTE, END = "promote", "end"


@dataclass(frozen=True)
class DeploySettings:
    """The deploy run's parameters (the DAG's params, by the same names)."""

    model_name: str = "ctr_model"
    #: the version to deploy; None: the latest staging version
    version: str | None = None
    canary_traffic: float = 0.1
    #: rows with an outcome needed per variant before deciding
    min_impressions: int = 1000
    #: seconds to wait for them before deciding on what there is
    max_wait_s: float = 24 * 3600.0
    approval: str = MANUAL
    metric: str = "auc"
    alpha: float = 0.05
    #: the serving logs (default: experiments/serving/<model_name>)
    log_dir: str | None = None
    require_card: bool = True
    #: names the run in history reasons, e.g. "deploy_model manual__2026-12-07"
    run: str = "deploy_model"

    @classmethod
    def from_mapping(cls, values: dict[str, Any], **given: Any) -> DeploySettings:
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in values.items() if k in names}, **given).check()

    def check(self) -> DeploySettings:
        """Raise :class:`ConfigError` naming the first bad parameter; return self."""
        from ml.registry.canary import check_traffic
        from ml.registry.layout import validate_name, validate_version
        from ml.serving.report.ab import METRICS

        validate_name(self.model_name)
        if self.version is not None:
            validate_version(self.version)
        try:
            check_traffic(self.canary_traffic)
        except UserError as exc:
            raise ConfigError(f"canary_traffic: {exc}") from exc
        if not isinstance(self.min_impressions, int) or self.min_impressions < 1:
            raise ConfigError(
                f"min_impressions must be an integer >= 1, got {self.min_impressions!r}"
            )
        if not self.max_wait_s > 0:
            raise ConfigError(f"max_wait_s must be > 0 seconds, got {self.max_wait_s!r}")
        if self.approval not in (AUTO, MANUAL):
            raise ConfigError(f"approval must be 'manual' or 'auto', got {self.approval!r}")
        if self.metric not in METRICS:
            raise ConfigError(f"metric must be one of {METRICS}, got {self.metric!r}")
        if not 0 < self.alpha < 0.5:
            raise ConfigError(f"alpha must be in (0, 0.5), got {self.alpha!r}")
        return self

    def log_path(self) -> Path:
        from ml.serving.service.settings import ServeSettings

        return ServeSettings(model=self.model_name, log_dir=self.log_dir).log_path()


def check_candidate(s: DeploySettings, registry: Any) -> dict[str, Any]:
    """The version to deploy verifies, has metrics and (``require_card``) a model card.

    Returns:
        ``{"version", "current", "card", "test_auc"}``.

    Raises:
        NotFoundError: no such version. IntegrityError: a file differs from its manifest.
        UserError: it is already ``current``, or its metrics or card are missing.
    """
    from ml.cards.files import CARD_HTML, CARD_MD

    version = s.version or registry.get_latest_version(s.model_name)
    registry.verify(s.model_name, version, raise_on_error=True)
    info = registry.show(s.model_name, version, "staging")
    current = registry.current_version(s.model_name)
    problems = []
    if version == current:
        problems.append(f"{version} is production's current version already")
    metrics = info["metadata"].get("metrics") or {}
    if "test_auc" not in metrics:
        problems.append("its metadata has no test metrics (test_auc)")
    cards = [f for f in (CARD_HTML, CARD_MD) if f in info["files"]]
    if s.require_card and not cards:
        problems.append(f"it has no model card ({CARD_HTML}); register it through the pipeline")
    if problems:
        raise UserError(f"{s.model_name} {version} cannot be deployed: {'; '.join(problems)}")
    auc = metrics["test_auc"]
    log.info("✅ %s %s verifies (test AUC %s); current: %s", s.model_name, version, auc, current)
    card = str(Path(info["path"]) / cards[0]) if cards else None
    return {"version": version, "current": current, "card": card, "test_auc": auc}


def start_canary(s: DeploySettings, registry: Any, version: str, by: str) -> dict[str, Any]:
    """Set the registry's canary; returns ``{"version", "traffic", "since"}`` (epoch s).

    Raises:
        UserError: another version's canary is running (it is never replaced).
    """
    other = registry.get_canary(s.model_name)
    if other is not None and other.get("version") != version:
        raise UserError(
            f"{s.model_name}: a canary of {other['version']} is running (set by "
            f"{other.get('by')} at {other.get('since')}); wait for it to finish or turn it off "
            f"(`ctr-pipeline registry canary {s.model_name} --off`), then run this again"
        )
    since = round(time.time(), 3)
    registry.set_canary(
        s.model_name, version, s.canary_traffic, by=by, reason=f"{s.run}: canary started"
    )
    log.info("🐤 %s %s gets %.0f%% of users", s.model_name, version, 100 * s.canary_traffic)
    return {"version": version, "traffic": s.canary_traffic, "since": since}


def evidence(s: DeploySettings, version: str, since: float) -> dict[str, Any]:
    """Rows with an outcome per variant since ``since``; ``ready`` when both have
    ``min_impressions`` or ``max_wait_s`` has passed (``timed_out``)."""
    from ml.serving.service.outcomes import joined_outcomes
    from ml.serving.service.settings import CANDIDATE, CONTROL

    logs = joined_outcomes(s.log_path(), since)
    control = sum(1 for o in logs.outcomes if o.variant == CONTROL)
    candidate = sum(1 for o in logs.outcomes if o.variant == CANDIDATE and o.version == version)
    waited = time.time() - since
    enough = min(control, candidate) >= s.min_impressions
    timed_out = not enough and waited >= s.max_wait_s
    return {
        CONTROL: control,
        CANDIDATE: candidate,
        "ready": enough or timed_out,
        "timed_out": timed_out,
        "waited_s": round(waited, 1),
    }


def decide(s: DeploySettings, version: str, since: float, links: dict[str, str]) -> dict[str, Any]:
    """The A/B report since ``since`` and what to do.

    Returns:
        ``{"verdict", "action", "reason", "report", "markdown", "text"}``: ``action``
        is ``promote`` (auto and a significant win), ``end`` (auto otherwise) or ``ask``
        (manual: a person decides); ``markdown`` is the approval's body, ``text`` the
        Slack/email message (:func:`ml.notifications.decision_message`).
    """
    from ml.notifications import decision_message
    from ml.serving.report.ab import ab_report, report_lines, report_markdown

    report = ab_report(s.log_path(), alpha=s.alpha, metric=s.metric, since=since)
    counts = evidence(s, version, since)
    comparison = report.get("comparison") or {}
    verdict = str(comparison.get("verdict") or "undecided")
    if verdict == "better":
        why = f"candidate BETTER on {s.metric}"
    elif verdict == "worse":
        why = f"candidate WORSE on {s.metric}"
    elif counts["timed_out"]:
        why = f"max_wait ({s.max_wait_s:g} s) passed with no significant difference"
    else:
        why = f"no significant difference on {s.metric} at {s.min_impressions} impressions"
    n = f"{counts['control']:,} control / {counts['candidate']:,} candidate outcomes"
    reason = f"{s.run}: {why} ({n})"
    action = "ask" if s.approval == MANUAL else (PROMOTE if verdict == "better" else END)
    lines = report_lines(report)
    md = [
        f"### {s.model_name} {version}: canary at {s.canary_traffic:.0%}",
        "",
        f"**{why}** ({n}).",
    ]
    md += ["", *report_markdown(report), ""]
    md += [f"- [{label}]({url})" for label, url in links.items() if url]
    text = decision_message(
        model_name=s.model_name,
        version=version,
        traffic=s.canary_traffic,
        why=why,
        evidence=n,
        action=action,
        report_lines=lines,
        links=links,
        run=s.run,
    )
    log.info("⚖️  %s -> %s", reason, action)
    return {
        "verdict": verdict,
        "action": action,
        "reason": reason,
        "report": _finite(report),
        "markdown": "\n".join(md),
        "text": text,
    }


def _finite(value: Any) -> Any:
    """The report with NaN as None (an XCom is JSON)."""
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return value


def promote(s: DeploySettings, registry: Any, version: str, by: str, reason: str) -> dict[str, Any]:
    """Promote the candidate (its canary stays until :func:`finish`)."""
    p = registry.promote_to_production(s.model_name, version, reason, by=by)
    log.info("🚀 %s %s promoted (was %s) by %s", s.model_name, version, p.previous, by)
    return {"promoted": version, "previous": p.previous}


def finish(
    s: DeploySettings, registry: Any, version: str, by: str, note: str = ""
) -> dict[str, Any]:
    """Canary off (when it is still this candidate's); the outcome (``promoted`` when
    ``current`` is the candidate, else ``not promoted``) and the notification text."""
    current = registry.current_version(s.model_name)
    outcome = "promoted" if current == version else "not promoted"
    setting = registry.get_canary(s.model_name)
    if setting is not None and setting.get("version") == version:  # never another's canary
        why = f"{s.run}: finished, {outcome}" + (f" ({note})" if note else "")
        registry.clear_canary(s.model_name, by=by, reason=why)
    text = f"{s.model_name} {version}: {outcome}; canary off, production serves {current}"
    text += f" ({note})" if note else ""
    log.info("🏁 %s", text)
    return {"outcome": outcome, "current": current, "text": text}


#: The tasks between the canary's start and ``finish``, in order.
STEPS = ("wait_for_evidence", "decide", "approve", "promote")


def finish_note(
    states: dict[str, str | None], decision: dict[str, Any] | None, response: Any, default: str
) -> str:
    """Why the canary ends, for ``finish``'s history line and message ("" when there is
    nothing to add): who rejected it (``response``: the approval's result), the verdict
    (``decision``: ``decide``'s result), and what failed (the run's task ``states``):
    ``"rejected by bob (Airflow UI); verdict better"``, ``"approve failed; promote
    upstream_failed"``."""
    parts = []
    chosen = (response or {}).get("chosen_options") if isinstance(response, dict) else None
    if chosen and "Approve" not in chosen:
        parts.append(f"{chosen[0].lower()}ed by {approver(response, default)}")
    if decision and decision.get("action") == END:
        parts.append(f"approval: auto ended it, verdict {decision.get('verdict')}")
    elif decision and parts:
        parts.append(f"verdict {decision.get('verdict')}")
    parts += [f"{t} {states[t]}" for t in STEPS if states.get(t) in ("failed", "upstream_failed")]
    return "; ".join(parts)


def links(name: str, version: str, base_url: str | None = None) -> dict[str, str]:
    """The candidate's card and the model's Models page in the Airflow UI (absolute with
    a configured base URL, else relative to the UI's root)."""
    from ml.cards import links as ui

    base = base_url or ui.ui_base_url() or ""
    page = f"{base}/plugin/{ui.NAV_ROUTE}{ui.APP_PREFIX}/view/{name}"
    return {f"model card of {version}": f"{page}/{version}", f"Models page: {name}": page}


def approver(response: Any, default: str) -> str:
    """``by`` for the history from the approval task's result (``responded_by_user``)."""
    user = (response or {}).get("responded_by_user") if isinstance(response, dict) else None
    name = user.get("name") or user.get("id") if isinstance(user, dict) else None
    return f"{name} (Airflow UI)" if name else default
