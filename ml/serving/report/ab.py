"""``ctr-pipeline serve report``: realised CTR and AUC per variant, and a verdict.

Joins the service's prediction log with its feedback log (:mod:`ml.serving.service.outcomes`),
then per variant: rows with an outcome, clicks, CTR with its Wilson interval, the mean
predicted score (calibration at a glance), the log loss with its interval and the AUC
with DeLong's interval. The candidate is compared with the control on the chosen metric
(``auc`` by default: the ranking quality the model is responsible for; ``ctr``; or
``logloss``: ranking and calibration, lower is better, Welch's interval):

- ``auc``: the AUC difference, DeLong's test for independent samples (the two variants
  scored different users);
- ``ctr``: the CTR difference, the two-proportion z-test.

The verdict is ``better`` or ``worse`` when the ``1 - alpha`` interval of the
difference excludes 0, else ``undecided`` (collect more outcomes). With a shadow model,
its AUC is compared with the served scores on the same rows (paired DeLong). Each row
counts with its first outcome; later ones are counted (``duplicate_feedback``), not used.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from ml.serving.report import stats
from ml.serving.service.outcomes import JoinedLogs, Outcome, joined_outcomes
from ml.serving.service.settings import CANDIDATE, CONTROL

METRICS = ("auc", "ctr", "logloss")
_TESTS = {
    "auc": "DeLong (independent samples)",
    "ctr": "two-proportion z-test",
    "logloss": "Welch (independent samples)",
}


def _variant(rows: list[Outcome], alpha: float) -> dict[str, Any]:
    y = np.array([o.clicked for o in rows], dtype=np.int8)
    s = np.array([o.score for o in rows], dtype=np.float64)
    return {
        "versions": sorted({o.version for o in rows}),
        "rows": len(rows),
        "clicks": int(y.sum()),
        "ctr": stats.wilson(int(y.sum()), len(rows), alpha).to_dict(),
        "mean_score": float(s.mean()) if len(s) else math.nan,
        "logloss": stats.mean_with_ci(stats.row_logloss(y, s), alpha).to_dict(),
        "auc": stats.auc_with_ci(y, s, alpha).to_dict(),
    }


def _arrays(rows: list[Outcome]) -> tuple[Any, Any]:
    return np.array([o.clicked for o in rows]), np.array([o.score for o in rows])


def ab_report(
    log_dir: Path, *, alpha: float = 0.05, metric: str = "auc", since: float | None = None
) -> dict[str, Any]:
    """The report as a dict (``--json`` prints it); ``since``: requests logged from then."""
    if metric not in METRICS:
        raise ValueError(f"metric must be one of {METRICS}, got {metric!r}")
    logs: JoinedLogs = joined_outcomes(log_dir, since)
    groups: dict[str, list[Outcome]] = {CONTROL: [], CANDIDATE: []}
    for o in logs.outcomes:
        groups.setdefault(o.variant, []).append(o)
    report: dict[str, Any] = {
        "log_dir": str(log_dir),
        "predictions": logs.predictions,
        "outcomes": len(logs.outcomes),
        "unmatched_feedback": logs.unmatched,
        "duplicate_feedback": logs.duplicates,
        "skipped_lines": logs.skipped_lines,
        "alpha": alpha,
        "metric": metric,
        "variants": {name: _variant(rows, alpha) for name, rows in groups.items() if rows},
        "comparison": None,
        "shadow": None,
    }
    control, candidate = groups[CONTROL], groups[CANDIDATE]
    if control and candidate:
        yc, sc = _arrays(control)
        yt, st = _arrays(candidate)
        auc = stats.auc_difference(yc, sc, yt, st, alpha)
        ctr = stats.proportion_difference(int(yc.sum()), len(yc), int(yt.sum()), len(yt), alpha)
        # lower is better: the verdict reads control - candidate
        gain = stats.mean_difference(stats.row_logloss(yt, st), stats.row_logloss(yc, sc), alpha)
        loss = stats.Estimate(-gain.value, -gain.high, -gain.low, gain.p_value)
        chosen = {"auc": auc, "ctr": ctr, "logloss": gain}[metric]
        report["comparison"] = {
            "auc_difference": auc.to_dict(),
            "ctr_difference": ctr.to_dict(),
            "logloss_difference": loss.to_dict(),
            "verdict": stats.verdict(chosen),
            "test": _TESTS[metric],
        }
    shadowed = [o for o in logs.outcomes if o.shadow_score is not None]
    if shadowed:
        y, served = _arrays(shadowed)
        shadow_scores = np.array([o.shadow_score for o in shadowed], dtype=np.float64)
        diff = stats.paired_auc_difference(y, served, shadow_scores, alpha)
        report["shadow"] = {
            "versions": sorted({str(o.shadow_version) for o in shadowed}),
            "rows": len(shadowed),
            "auc": stats.auc_with_ci(y, shadow_scores, alpha).to_dict(),
            "served_auc": stats.auc_with_ci(y, served, alpha).to_dict(),
            "auc_difference": diff.to_dict(),
            "verdict": stats.verdict(diff),
            "test": "paired DeLong (same rows)",
        }
    return report


def _ci(e: dict[str, Any], signed: bool = False) -> str:
    fmt = "{:+.4f}" if signed else "{:.4f}"
    if e["value"] is None or math.isnan(e["value"]):
        return "n/a"
    text = f"{fmt.format(e['value'])} [{fmt.format(e['low'])}, {fmt.format(e['high'])}]"
    p = e.get("p_value")
    if p is None:
        return text
    return text + (f" p={p:.3g}" if p >= 0.001 else " p<0.001")


def _notes(report: dict[str, Any]) -> str:
    notes = [
        f"{report['unmatched_feedback']:,} feedback rows without a logged prediction"
        if report["unmatched_feedback"]
        else "",
        f"{report['duplicate_feedback']:,} later outcomes for a row ignored (the first counts)"
        if report.get("duplicate_feedback")
        else "",
        f"{report['skipped_lines']:,} over-long log lines skipped"
        if report.get("skipped_lines")
        else "",
    ]
    text = "; ".join(n for n in notes if n)
    return f" ({text})" if text else ""


def report_lines(report: dict[str, Any]) -> list[str]:
    """The report as the table ``serve report`` prints."""
    level = f"{100 * (1 - report['alpha']):g}%"
    lines = [
        f"A/B report from {report['log_dir']}: {report['predictions']:,} logged requests, "
        f"{report['outcomes']:,} rows with an outcome" + _notes(report),
        f"{'variant':<10} {'versions':<10} {'rows':>8} {'clicks':>7}  "
        f"{'CTR (' + level + ' CI)':<26} {'mean score':>10}  {'log loss':<26}"
        f"AUC ({level} CI, DeLong)",
    ]
    for name, v in report["variants"].items():
        lines.append(
            f"{name:<10} {','.join(v['versions']):<10} {v['rows']:>8,} {v['clicks']:>7,}  "
            f"{_ci(v['ctr']):<26} {v['mean_score']:>10.4f}  {_ci(v['logloss']):<26}"
            f"{_ci(v['auc'])}"
        )
    comp = report["comparison"]
    if comp is None:
        lines.append("verdict: undecided (outcomes for both control and candidate are needed)")
    else:
        lines.append(f"candidate - control: AUC {_ci(comp['auc_difference'], True)} (DeLong)")
        lines.append(f"candidate - control: CTR {_ci(comp['ctr_difference'], True)} (z-test)")
        lines.append(
            f"candidate - control: log loss {_ci(comp['logloss_difference'], True)} (Welch)"
        )
        lines.append(
            f"verdict: the candidate is {comp['verdict'].upper()} on {report['metric']} "
            f"({comp['test']}, {level} interval"
            + (" contains 0: collect more outcomes)" if comp["verdict"] == "undecided" else ")")
        )
    shadow = report["shadow"]
    if shadow is not None:
        lines.append(
            f"shadow {','.join(shadow['versions'])} - served on the same {shadow['rows']:,} rows: "
            f"AUC {_ci(shadow['auc_difference'], True)} ({shadow['test']}): "
            f"{shadow['verdict']}"
        )
    return lines


def report_markdown(report: dict[str, Any]) -> list[str]:
    """The report as Markdown lines: one table row per variant, the differences and the
    verdict as a list (the HITL approval's body; a GitHub-flavoured table renders there
    where a fixed-width block is run together)."""
    level = f"{100 * (1 - report['alpha']):g}%"
    lines = [
        f"| variant | versions | rows | clicks | CTR ({level} CI) | mean score | log loss "
        f"| AUC ({level} CI) |",
        "|---|---|---:|---:|---|---:|---|---|",
    ]
    for name, v in report["variants"].items():
        lines.append(
            f"| {name} | {','.join(v['versions'])} | {v['rows']:,} | {v['clicks']:,} "
            f"| {_ci(v['ctr'])} | {v['mean_score']:.4f} | {_ci(v['logloss'])} "
            f"| {_ci(v['auc'])} |"
        )
    comp = report["comparison"]
    if comp is None:
        return [*lines, "", "- verdict: undecided (outcomes for both variants are needed)"]
    lines += [
        "",
        f"- candidate - control: AUC {_ci(comp['auc_difference'], True)} (DeLong)",
        f"- candidate - control: CTR {_ci(comp['ctr_difference'], True)} (z-test)",
        f"- candidate - control: log loss {_ci(comp['logloss_difference'], True)} (Welch)",
        f"- verdict: the candidate is **{comp['verdict'].upper()}** on {report['metric']} "
        f"({comp['test']}, {level} interval)",
    ]
    return lines
