"""Models side by side on the same rows: registry versions or training runs.

Every model is scored by the same code on one split (default: the test split the newest
of them was trained with), so the numbers are comparable even when the models were
trained on different data. Each model after the first is compared with the first: the
metric differences, a paired bootstrap 95% interval of the AUC difference
(:func:`ml.cards.stats.bootstrap_auc_difference`) and a paired 95% interval of the log
loss difference (:func:`ml.cards.stats.paired_mean_difference` of per-row losses).
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, TypedDict

import numpy as np

from ml import paths
from ml.cards.predictions import union_spec
from ml.cards.stats import (
    DEFAULT_BOOTSTRAP,
    bootstrap_auc_difference,
    model_metrics,
    paired_mean_difference,
    row_logloss,
)
from ml.errors import CardError
from ml.fsutil import display_path
from ml.training import run_dir as rd

if TYPE_CHECKING:
    from typing import Unpack

METRICS = ("auc", "logloss", "accuracy", "ece", "mean_score")
_VERSION_RE = re.compile(r"v([1-9][0-9]*)\Z")


class CompareOptions(TypedDict, total=False):
    """The keyword options of :func:`compare_predictors` that the other compares pass on."""

    split: str
    n_boot: int
    seed: int


def compare_predictors(
    models: Sequence[tuple[str, Any]],
    features_dir: str | os.PathLike[str],
    *,
    split: str = "test",
    n_boot: int = DEFAULT_BOOTSTRAP,
    seed: int = 0,
) -> dict[str, Any]:
    """Score ``(label, predictor)`` pairs on one split; differences against the first.

    Returns:
        ``{"features_dir", "split", "rows", "base_ctr", "models": [{"label", metrics}],
        "differences": [{"a", "b", "<metric>", "auc_interval", "logloss_interval"}]}``.

    Raises:
        CardError: fewer than two models.
        DataLoadError: the split is missing or lacks a column one of the models reads.
    """
    from threadpoolctl import threadpool_limits

    from ml.data.loading import load_split

    if len(models) < 2:
        raise CardError("compare needs at least two models")
    spec = models[0][1].features
    for _, predictor in models[1:]:
        spec = union_spec(spec, predictor.features.feature_columns)
    df = load_split(features_dir, split, spec)
    labels = df[spec.label].to_numpy()
    scores = [np.asarray(p.predict_proba(df), dtype=np.float64) for _, p in models]
    rows = [
        {"label": label, **model_metrics(labels, s)}
        for (label, _), s in zip(models, scores, strict=True)
    ]
    with threadpool_limits(1):  # the bootstrap's small vectors: extra BLAS threads only wait
        diffs = _differences(models, labels, scores, rows, n_boot, seed)
    return {
        "features_dir": display_path(paths.resolve(features_dir)),
        "split": split,
        "rows": int(labels.size),
        "base_ctr": float(labels.mean()) if labels.size else float("nan"),
        "models": rows,
        "differences": diffs,
    }


def _differences(
    models: Sequence[tuple[str, Any]],
    labels: Any,
    scores: list[Any],
    rows: list[dict[str, Any]],
    n_boot: int,
    seed: int,
) -> list[dict[str, Any]]:
    diffs = []
    for i in range(1, len(models)):
        entry: dict[str, Any] = {"a": models[0][0], "b": models[i][0]}
        entry.update({k: rows[i][k] - rows[0][k] for k in METRICS})
        entry["auc_interval"] = bootstrap_auc_difference(
            labels, scores[0], scores[i], n_boot=n_boot, seed=seed
        )
        entry["logloss_interval"] = paired_mean_difference(
            row_logloss(labels, scores[0]), row_logloss(labels, scores[i])
        )
        diffs.append(entry)
    return diffs


def _version_number(version: str) -> int:
    m = _VERSION_RE.match(version)
    if not m:
        raise CardError(f"{version!r} is not a version such as v3")
    return int(m.group(1))


def _stage_of(registry: Any, name: str, version: str) -> str:
    from ml.registry.layout import PRODUCTION, STAGING

    if version in registry.list_versions(name, STAGING):
        return STAGING
    if version in registry.list_versions(name, PRODUCTION):
        return PRODUCTION
    registry.path_of(name, version, STAGING)  # raises the registry's not-found error
    return STAGING


def duplicates(items: Sequence[str]) -> list[str]:
    """The items given more than once, in order of first repeat."""
    seen: set[str] = set()
    again: dict[str, None] = {}
    for item in items:
        if item in seen:
            again[item] = None
        seen.add(item)
    return list(again)


def version_stages(registry: Any, name: str, versions: Sequence[str]) -> dict[str, str]:
    """Each version's stage (staging when it is in both), checking the list first.

    Raises:
        CardError: fewer than two versions, or a version given twice.
        NotFoundError: an unknown version (from the registry).
    """
    again = duplicates(versions)
    if again:
        raise CardError(
            f"version(s) {', '.join(again)} given more than once; list each version once"
        )
    if len(versions) < 2:
        raise CardError("compare needs at least two different versions, e.g. v1 v2")
    return {v: _stage_of(registry, name, v) for v in versions}


def default_features_dir(
    registry: Any, name: str, versions: Sequence[str], stages: dict[str, str]
) -> str:
    """The features directory the newest of ``versions`` was trained with.

    Raises:
        CardError: it records none.
    """
    newest = max(versions, key=_version_number)
    info = registry.show(name, newest, stages[newest])
    features_dir = info["metadata"].get("features_dir")
    if not features_dir:
        raise CardError(f"{name} {newest} records no features directory; pass --features-dir")
    return str(features_dir)


def compare_versions(
    registry: Any,
    name: str,
    versions: Sequence[str],
    *,
    features_dir: str | os.PathLike[str] | None = None,
    **options: Unpack[CompareOptions],
) -> dict[str, Any]:
    """Compare registered versions of ``name`` (default data: the newest one's split);
    ``options`` as :func:`compare_predictors`'.

    Raises:
        CardError: fewer than two versions, a version given twice, or no recorded
            features directory.
        NotFoundError: an unknown version (from the registry).
    """
    stages = version_stages(registry, name, versions)
    if features_dir is None:
        features_dir = default_features_dir(registry, name, versions, stages)
    models = [(v, registry.load(name, v, stages[v])) for v in versions]
    out = compare_predictors(models, features_dir, **options)
    out["name"] = name
    return out


def compare_runs(
    run_dirs: Sequence[str | os.PathLike[str]],
    *,
    features_dir: str | os.PathLike[str] | None = None,
    **options: Unpack[CompareOptions],
) -> dict[str, Any]:
    """Compare training runs (complete ones) on one split (default: the newest run's);
    ``options`` as :func:`compare_predictors`'.

    Raises:
        CardError: fewer than two runs, an incomplete run, or no recorded features.
    """
    from ml.serving.predictor import Predictor

    roots = list(dict.fromkeys(paths.resolve(r) for r in run_dirs))
    if len(roots) < 2:
        raise CardError("compare needs at least two different runs")
    infos = {}
    for root in roots:
        if not rd.is_complete(root):
            raise CardError(f"{display_path(root)} is not a complete training run")
        infos[root] = rd.read_run_info(root)
    if features_dir is None:
        newest = max(roots, key=lambda r: str(infos[r].get("finished_at") or ""))
        features_dir = infos[newest].get("features_dir")
        if not features_dir:
            raise CardError(f"{display_path(newest)} records no features directory")
    models = [(root.name, Predictor.load(root)) for root in roots]
    return compare_predictors(models, features_dir, **options)


def comparison_lines(result: dict[str, Any]) -> list[str]:
    """The comparison as an aligned text table for the terminal."""
    models = result["models"]
    labels = [m["label"] for m in models]
    diffs = result["differences"]
    header = ["metric", *labels, *(f"{d['b']} - {d['a']}" for d in diffs)]
    names = {
        "auc": "AUC",
        "logloss": "log loss",
        "accuracy": "accuracy",
        "ece": "ECE",
        "mean_score": "mean score",
    }
    rows = [
        [names[k], *(f"{m[k]:.4f}" for m in models), *(f"{d[k]:+.4f}" for d in diffs)]
        for k in METRICS
    ]
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    lines = [
        f"{result.get('name', 'models')} on {result['features_dir']} {result['split']} split "
        f"({result['rows']:,} rows, click rate {result['base_ctr']:.2%})",
        "  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)),
    ]
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]
    for d in diffs:
        iv = d["auc_interval"]
        lines.append(
            f"AUC {d['b']} - {d['a']}: {iv['diff']:+.4f}, 95% bootstrap interval "
            f"{iv['low']:+.4f} to {iv['high']:+.4f} ({iv['n_boot']} resamples; "
            f"{d['b']} better in {iv['p_b_better']:.0%})"
        )
        ll = d.get("logloss_interval")
        if ll:
            lines.append(
                f"log loss {d['b']} - {d['a']}: {ll['diff']:+.4f}, 95% interval "
                f"{ll['low']:+.4f} to {ll['high']:+.4f} (paired, per row)"
            )
    return lines
