"""Champion/challenger: score the production model and the new one on the same rows.

The production model (``production/<name>/current``, loaded through the registry, so it
is verified against its manifest first) and the new run's checkpoint are scored by the
same code on the new run's test split, so the comparison is fair even when the data
changed since production was trained.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ml.data.row_groups import iter_split
from ml.evaluation.gates import Champion
from ml.metrics import binary_metrics
from ml.serving.predictor import Predictor

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Comparison:
    """The production model's and the challenger's scores on one test split."""

    champion: Champion
    challenger: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": self.champion.version,
            "test_auc": self.champion.test_auc,
            "test_accuracy": self.champion.test_accuracy,
            "challenger_test_auc": self.challenger["auc"],
            "challenger_test_accuracy": self.challenger["accuracy"],
        }


def compare_with_production(
    registry: Any, model_name: str, run_dir: Path, features_dir: str | Path
) -> Comparison | None:
    """Score production's current version and ``run_dir``'s model on the test split.

    Returns:
        None when ``model_name`` has no production version yet.

    Raises:
        RegistryError: ``current`` points at a version that is missing or fails
            verification.
        DataLoadError: the test split lacks a column one of the models needs.
    """
    version = registry.current_version(model_name)
    if version is None:
        log.info("No production model %r yet: nothing to compare against", model_name)
        return None
    production: Predictor = registry.load(model_name, "current")
    challenger = Predictor.load(run_dir)
    spec = challenger.features
    columns = {*spec.all_columns, *production.features.feature_columns}
    labels, prod_p, mine_p = [], [], []
    # one row group slice at a time: memory bounded by a slice plus the scores
    for chunk in iter_split(features_dir, "test", _union_spec(spec, columns)):
        labels.append(chunk.frame[spec.label].to_numpy())
        prod_p.append(production.predict_proba(chunk.frame))
        mine_p.append(challenger.predict_proba(chunk.frame))
    y = np.concatenate(labels)
    prod = binary_metrics(y, np.concatenate(prod_p))
    mine = binary_metrics(y, np.concatenate(mine_p))
    return Comparison(Champion(version, float(prod["auc"]), float(prod["accuracy"])), mine)


def _union_spec(spec: Any, columns: set[str]) -> Any:
    """``spec`` widened to every column either model reads (as categorical or numeric)."""
    from ml.config import FeatureSpec

    extra = tuple(sorted(columns - set(spec.all_columns)))
    return FeatureSpec(spec.label, spec.categorical + extra, spec.numeric)
