"""Watching production: live figures from feedback, and an automatic rollback.

:func:`watch` reads the serving logs (:mod:`ml.serving.service.outcomes`) and computes,
for production's ``current`` version (rows it scored as the control, in the last
``window_s`` seconds) and for the version a rollback would go to (every row it scored):
rows with an outcome, observed CTR (Wilson interval), mean predicted CTR, log loss (with
its interval) and the calibration error ``|predicted / observed - 1|``.

``current`` is **degraded** when, with at least ``min_outcomes`` rows:

- its log loss is above ``max_logloss`` even at the low end of its interval; or
- its log loss exceeds the previous version's by more than ``max_logloss_increase``
  even at the low end of the (Welch) interval of the difference (the previous version
  needs ``min_outcomes`` rows too); or
- its calibration error is above ``max_calibration_error`` and the mean predicted CTR
  lies outside the observed CTR's interval.

Each test needs the whole interval past its limit, so feedback that is only noise (a
fair coin) does not trigger it. A degraded ``current`` is rolled back (``by``
``watch_production (automatic)``, the figures as the history ``reason``) unless
``dry_run``, or a rollback or promotion happened less than ``cooldown_s`` ago (so it
never flaps), or there is nothing to roll back to. The served rows' feature drift
against the version's training profile (``--log-features``) is reported, never acted on.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np

from ml.config import WatchConfig

log = logging.getLogger("ml.pipeline")
BY = "watch_production (automatic)"


@dataclass(frozen=True)
class WatchSettings(WatchConfig):
    """What one check judges: the thresholds (the config's ``watch`` section,
    :class:`ml.config.WatchConfig`, with the DAG's params over it), the model and its logs."""

    model_name: str = "ctr_model"
    log_dir: str | None = None
    dry_run: bool = False

    @classmethod
    def from_config(cls, cfg: WatchConfig, params: Mapping[str, Any]) -> WatchSettings:
        """The config's thresholds, each overridden by a ``params`` value that is not
        None (the DAG's params default to None: "the config's"); unknown keys ignored."""
        names = {f.name for f in fields(cls)}
        given = {k: v for k, v in params.items() if k in names and v is not None}
        return cls(**{**asdict(cfg), **given})

    def check(self, where: str = "") -> None:
        """Raise :class:`ConfigError` naming the first bad threshold (its bare name: these
        are the DAG's params here, not the config's ``watch.`` keys)."""
        super().check(where=where)

    def log_path(self) -> Path:
        from ml.serving.service.settings import ServeSettings

        return ServeSettings(model=self.model_name, log_dir=self.log_dir).log_path()


@dataclass
class Figures:
    """One version's live figures."""

    version: str
    rows: int
    clicks: int
    ctr: dict[str, Any]
    mean_predicted: float | None
    logloss: dict[str, Any]
    calibration_error: float | None
    losses: Any = field(default=None, repr=False)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out.pop("losses")
        return out


def figures(version: str, clicked: list[int], scores: list[float], alpha: float) -> Figures:
    from ml.serving.report import stats

    y = np.asarray(clicked, dtype=np.float64)
    p = np.asarray(scores, dtype=np.float64)
    losses = stats.row_logloss(y, p)
    n, clicks = len(y), int(y.sum())
    mean_pred = float(p.mean()) if n else None
    ctr = clicks / n if n else math.nan
    calib = abs(mean_pred / ctr - 1) if mean_pred is not None and ctr > 0 else None
    return Figures(
        version,
        n,
        clicks,
        stats.wilson(clicks, n, alpha).to_dict(),
        mean_pred,
        stats.mean_with_ci(losses, alpha).to_dict(),
        calib,
        losses,
    )


def _live(s: WatchSettings, current: str, previous: str | None) -> dict[str, Figures]:
    from ml.serving.service.outcomes import joined_outcomes
    from ml.serving.service.settings import CONTROL

    out: dict[str, Figures] = {}
    windows: list[tuple[str, float | None]] = [(current, time.time() - s.window_s)]
    if previous is not None:
        windows.append((previous, None))
    for version, since in windows:
        rows = [
            o
            for o in joined_outcomes(s.log_path(), since).outcomes
            if o.variant == CONTROL and o.version == version
        ]
        out[version] = figures(version, [o.clicked for o in rows], [o.score for o in rows], s.alpha)
    return out


def degradations(s: WatchSettings, cur: Figures, prev: Figures | None) -> list[str]:
    """What is wrong with ``cur`` (empty: nothing, or too few outcomes to say)."""
    from ml.serving.report import stats

    if cur.rows < s.min_outcomes:
        return []
    found = []
    ll = cur.logloss
    if s.max_logloss is not None and ll["low"] > s.max_logloss:
        found.append(
            f"log loss {ll['value']:.4f} [{ll['low']:.4f}, {ll['high']:.4f}] > {s.max_logloss:g}"
        )
    if prev is not None and prev.rows >= s.min_outcomes:
        diff = stats.mean_difference(prev.losses, cur.losses, s.alpha)
        if diff.low > s.max_logloss_increase:
            found.append(
                f"log loss {ll['value']:.4f} vs {prev.version}'s {prev.logloss['value']:.4f}: "
                f"+{diff.value:.4f} [{diff.low:+.4f}, {diff.high:+.4f}] "
                f"> +{s.max_logloss_increase:g}"
            )
    ctr = cur.ctr
    outside = cur.mean_predicted is not None and not ctr["low"] <= cur.mean_predicted <= ctr["high"]
    if outside and (cur.calibration_error or 0) > s.max_calibration_error:
        found.append(
            f"predicted CTR {cur.mean_predicted:.4f} vs observed {ctr['value']:.4f} "
            f"[{ctr['low']:.4f}, {ctr['high']:.4f}] (calibration error "
            f"{cur.calibration_error:.0%} > {s.max_calibration_error:.0%})"
        )
    return found


def _last_change_age(registry: Any, name: str) -> float | None:
    """Seconds since the last promote or rollback of ``name`` (None: never)."""
    for ev in reversed(registry.history(name)):
        if ev.get("event") in ("promote", "rollback") and ev.get("at"):
            at = datetime.fromisoformat(str(ev["at"]).replace("Z", "+00:00"))
            return time.time() - at.timestamp()
    return None


def watch(s: WatchSettings, registry: Any, *, run: str = "watch_production") -> dict[str, Any]:
    """Check production's live figures; roll back a degraded ``current`` (see module doc).

    Returns:
        ``{"current", "previous", "figures", "degraded", "action", "text"}``; ``action`` is
        ``none``, ``too_few_outcomes``, ``rolled_back``, ``dry_run``, ``cooldown`` or
        ``no_previous``.
    """
    s.check()
    current = registry.current_version(s.model_name)
    if current is None:
        return {"current": None, "action": "none", "text": f"{s.model_name}: no production version"}
    previous = registry.rollback_target(s.model_name)
    live = _live(s, current, previous)
    cur, prev = live[current], live.get(previous) if previous else None
    found = degradations(s, cur, prev)
    result: dict[str, Any] = {
        "current": current,
        "previous": previous,
        "figures": {v: f.to_dict() for v, f in live.items()},
        "degraded": found,
        "drift": drift_of_served_rows(s, registry, current),
    }
    age = _last_change_age(registry, s.model_name)
    if cur.rows < s.min_outcomes:
        action = "too_few_outcomes"
    elif not found:
        action = "none"
    elif previous is None:
        action = "no_previous"
    elif age is not None and age < s.cooldown_s:
        action = "cooldown"
    elif s.dry_run:
        action = "dry_run"
    else:
        reason = f"{run}: {current} degraded on {cur.rows:,} outcomes: " + "; ".join(found)
        registry.rollback(s.model_name, reason, by=BY)
        action = "rolled_back"
    result["action"] = action
    result["text"] = _text(s, cur, found, action, previous)
    log.info("👀 %s", result["text"])
    return result


def _text(s: WatchSettings, cur: Figures, found: list[str], action: str, prev: str | None) -> str:
    head = f"{s.model_name} {cur.version}: {cur.rows:,} outcomes in the last {s.window_s:g} s"
    what = "; ".join(found) if found else "within the thresholds"
    verbs = {
        "too_few_outcomes": f"too few to judge (min_outcomes {s.min_outcomes})",
        "none": what,
        "rolled_back": f"DEGRADED ({what}): rolled back to {prev}",
        "dry_run": f"DEGRADED ({what}): would roll back to {prev} (dry_run)",
        "cooldown": f"DEGRADED ({what}): not rolled back, changed less than {s.cooldown_s:g} s ago",
        "no_previous": f"DEGRADED ({what}): no previous version to roll back to",
    }
    return f"{head}: {verbs[action]}"


def drift_of_served_rows(s: WatchSettings, registry: Any, version: str) -> dict[str, Any] | None:
    """PSI of each feature of the logged served rows (``features``) against the version's
    training profile; None when no rows were logged or the version has no profile."""
    import pandas as pd

    from ml.monitoring.drift import compare_categorical, compare_numeric, load_profile
    from ml.serving.service.outcomes import PREDICTIONS_FILE, read_jsonl

    path = s.log_path() / PREDICTIONS_FILE
    since = time.time() - s.window_s
    columns: dict[str, list[Any]] = {}
    if not path.is_file():
        return None
    for rec in read_jsonl(path):
        feats = rec.get("features")
        if not isinstance(feats, dict) or rec.get("version") != version:
            continue
        if float(rec.get("at", 0)) < since:
            continue
        for c, values in feats.items():
            columns.setdefault(c, []).extend(values)
    profile = load_profile(registry, s.model_name, "production", version) if columns else None
    if not profile:
        return None
    fields = []
    for kind, compare in (("categorical", compare_categorical), ("numeric", compare_numeric)):
        for column, ref in (profile.get(kind) or {}).items():
            if column in columns:
                series = pd.Series(
                    columns[column], dtype=object if kind == "categorical" else float
                )
                fields.append(compare(column, ref, series, s.max_psi).to_dict())
    rows = max((len(v) for v in columns.values()), default=0)
    return {"rows": rows, "max_psi": s.max_psi, "fields": fields}
