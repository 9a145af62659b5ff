"""Before a promotion: is the candidate worse than production, or tested on other data?

:func:`promotion_check` compares a staging version with production's current version.
The Models page shows it before its Promote button and asks for an explicit
confirmation when :attr:`PromotionCheck.needs_confirmation`; ``ctr-pipeline registry
promote`` then needs ``--force``. The approval step of the closed loop can call it too.

What it compares:

- **Same data** (both versions record the same ``data_fingerprint`` digest): the
  deltas are the test metrics recorded at registration; the intervals come from scoring
  both on that test split (the candidate's features directory).
- **Other data** (the digests differ, or one is missing): recorded metrics are not
  comparable, so both are scored on the candidate's test split, when it is still there.

"Worse" means beyond noise, at 95%: the paired bootstrap interval of AUC(candidate) −
AUC(production) lies entirely below 0, or the paired interval of the log loss
difference lies entirely above 0. Without intervals (the split or a model could not
be scored), any drop in the recorded AUC or rise in the recorded log loss counts.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

from ml import paths
from ml.cards.stats import DEFAULT_BOOTSTRAP
from ml.errors import CtrPipelineError
from ml.fsutil import display_path

SAME_DATA = "recorded"
SCORED = "scored"
NOTHING = "nothing"


@dataclass(frozen=True)
class PromotionCheck:
    """The candidate against production (see the module doc for the rules).

    ``compared``: ``recorded`` (same data: recorded metrics, intervals from scoring when
    possible), ``scored`` (both scored on the candidate's test split) or ``nothing``
    (no production version, or nothing comparable). Deltas are candidate − production;
    intervals are ``{"diff", "low", "high", ...}`` or None.
    """

    name: str
    candidate: str
    production: str | None
    compared: str
    worse: bool
    other_data: bool
    auc_delta: float | None = None
    logloss_delta: float | None = None
    auc_interval: dict[str, Any] | None = None
    logloss_interval: dict[str, Any] | None = None
    candidate_data: str | None = None
    production_data: str | None = None
    scored_on: str | None = None
    lines: list[str] = field(default_factory=list)

    @property
    def needs_confirmation(self) -> bool:
        """Worse, or tested on other data: promote only when asked to explicitly."""
        return self.worse or self.other_data

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "needs_confirmation": self.needs_confirmation}

    def summary(self) -> str:
        """One line for the history: why a confirmation was needed, with the deltas."""
        why = []
        if self.worse:
            why.append(f"worse than {self.production}")
        if self.other_data:
            why.append("tested on other data")
        deltas = []
        if self.auc_delta is not None:
            deltas.append(f"AUC {self.auc_delta:+.4f}{_bounds(self.auc_interval)}")
        if self.logloss_delta is not None:
            deltas.append(f"log loss {self.logloss_delta:+.4f}{_bounds(self.logloss_interval)}")
        return " and ".join(why) + (f" ({', '.join(deltas)})" if deltas else "")

    def audit_reason(self, reason: str | None) -> str | None:
        """The history's reason: the user's, plus the check when it was overridden."""
        if not self.needs_confirmation:
            return reason
        forced = f"promoted despite the check: {self.summary()}"
        return f"{reason.strip()} [{forced}]" if reason and reason.strip() else forced


def _bounds(interval: dict[str, Any] | None) -> str:
    if not interval or not _finite(interval.get("low"), interval.get("high")):
        return ""
    return f", 95% {interval['low']:+.4f} to {interval['high']:+.4f}"


def _finite(*values: Any) -> bool:
    return all(isinstance(v, (int, float)) and math.isfinite(v) for v in values)


def _data_of(info: dict[str, Any]) -> tuple[str | None, str]:
    meta = info["metadata"]
    fp = meta.get("data_fingerprint")
    digest = fp.get("digest") if isinstance(fp, dict) else None
    features = meta.get("features_dir")
    where = (
        display_path(paths.resolve(features)) if features else "an unrecorded features directory"
    )
    label = f"{where} (data {str(digest)[:12]})" if digest else f"{where} (no data fingerprint)"
    return (str(digest) if digest else None), label


def _recorded(info: dict[str, Any], key: str) -> float | None:
    value = (info["metadata"].get("metrics") or {}).get(key)
    return float(value) if isinstance(value, (int, float)) and math.isfinite(value) else None


def promotion_check(
    registry: Any, name: str, version: str, *, n_boot: int = DEFAULT_BOOTSTRAP, seed: int = 0
) -> PromotionCheck:
    """Compare staging ``version`` of ``name`` with production's current version.

    Raises:
        NotFoundError: no such staging version (from the registry).
    """
    from ml.registry.layout import PRODUCTION, STAGING

    cand = registry.show(name, version, STAGING)
    current = registry.current_version(name)
    if current is None or current == version:
        why = "no production version yet" if current is None else f"{version} already is current"
        return PromotionCheck(name, version, current, NOTHING, False, False, lines=[why])
    prod = registry.show(name, current, PRODUCTION)
    (c_digest, c_label), (p_digest, p_label) = _data_of(cand), _data_of(prod)
    other = c_digest is None or c_digest != p_digest
    fields: dict[str, Any] = {"candidate_data": c_label, "production_data": p_label}
    scored, why_not = _score(registry, name, current, version, cand, n_boot, seed)
    if not other:
        fields["auc_delta"], fields["logloss_delta"] = _recorded_deltas(cand, prod)
    elif scored is not None:
        fields["auc_delta"], fields["logloss_delta"] = scored["auc"], scored["logloss"]
    if scored is not None:
        fields["auc_interval"] = scored["auc_interval"]
        fields["logloss_interval"] = scored["logloss_interval"]
        fields["scored_on"] = scored["on"]
    compared = SAME_DATA if not other else (SCORED if scored is not None else NOTHING)
    worse = _is_worse(fields)
    check = PromotionCheck(name, version, current, compared, worse, other, **fields)
    return PromotionCheck(**{**asdict(check), "lines": _lines(check, why_not)})


def _recorded_deltas(cand: dict[str, Any], prod: dict[str, Any]) -> tuple[Any, Any]:
    out = []
    for key in ("test_auc", "test_logloss"):
        a, b = _recorded(prod, key), _recorded(cand, key)
        out.append(b - a if a is not None and b is not None else None)
    return out[0], out[1]


def _score(
    registry: Any,
    name: str,
    current: str,
    version: str,
    cand: dict[str, Any],
    n_boot: int,
    seed: int,
) -> tuple[dict[str, Any] | None, str | None]:
    """Both scored on the candidate's test split (cached), or None and why not."""
    from ml.cards.compare_cache import cached_compare_versions

    features = cand["metadata"].get("features_dir")
    if not features:
        return None, f"{version} records no features directory"
    try:
        result = cached_compare_versions(
            registry, name, [current, version], features_dir=features, n_boot=n_boot, seed=seed
        )
    except (CtrPipelineError, OSError) as exc:
        return None, str(exc)
    (diff,) = result["differences"]
    on = f"{result['features_dir']} {result['split']} split ({result['rows']:,} rows)"
    return {**diff, "on": on}, None


def _is_worse(fields: dict[str, Any]) -> bool:
    auc_iv, ll_iv = fields.get("auc_interval"), fields.get("logloss_interval")
    if auc_iv and _finite(auc_iv.get("high")) and auc_iv["high"] < 0:
        return True
    if ll_iv and _finite(ll_iv.get("low")) and ll_iv["low"] > 0:
        return True
    if auc_iv or ll_iv:
        return False
    auc, ll = fields.get("auc_delta"), fields.get("logloss_delta")
    return bool((auc is not None and auc < 0) or (ll is not None and ll > 0))


def _lines(check: PromotionCheck, why_not: str | None) -> list[str]:
    c, p = check.candidate, check.production
    lines = [
        f"{check.name} {c} (candidate) against {p} (production's current version)",
        f"  {c} tested on {check.candidate_data}",
        f"  {p} tested on {check.production_data}",
    ]
    if check.compared == SAME_DATA:
        lines.append("  same data: deltas from the test metrics recorded at registration")
    elif check.compared == SCORED:
        lines.append(f"  other data: both scored on {c}'s test split")
    else:
        lines.append(f"  other data, and they could not be scored on the same rows: {why_not}")
    for label, delta, iv in (
        ("AUC", check.auc_delta, check.auc_interval),
        ("log loss", check.logloss_delta, check.logloss_interval),
    ):
        if delta is not None:
            lines.append(f"  {label} {c} − {p}: {delta:+.4f}{_bounds(iv)}")
    if check.scored_on:
        lines.append(f"  intervals from scoring both on {check.scored_on}")
    elif check.compared == SAME_DATA:
        lines.append(f"  no intervals (could not score: {why_not}); any drop counts as worse")
    verdict = []
    if check.worse:
        verdict.append(f"{c} is WORSE than {p}")
    if check.other_data:
        verdict.append(f"{c} was tested on other data than {p}")
    lines.append(
        ("  " + "; ".join(verdict) + ": promote only if you mean it")
        if verdict
        else f"  {c} is not worse than {p} on the same data"
    )
    return lines
