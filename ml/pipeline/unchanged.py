""" "Nothing changed since vN": skip training and registration when a registered version was
trained on the same data, config and code.

The check (:func:`check`) runs in the validate step, before any drift or tuning step:
the data fingerprint, the config digest (its recorded form) and the code's source
digest are looked up in the registry (``ModelRegistry.find_version``). A match is
recorded in the run summary as ``unchanged_since``; the later steps read it there
(:func:`recorded`) and pass vN's run directory, metrics, version and path on instead of
training, gating and registering again, so the run succeeds naming vN. The param
``force_retrain`` turns the check off.
"""

from __future__ import annotations

import logging
from typing import Any

from ml.config import Config
from ml.data.lineage import ValidatedData
from ml.fsutil import display_path
from ml.pipeline.params import Params, PipelineRun
from ml.pipeline.summary import read_summary, update_summary
from ml.registry.layout import STAGING

log = logging.getLogger("ml.pipeline")
#: vN's metrics passed on as the ``metrics`` XCom when a run is skipped.
METRIC_KEYS = ("test_auc", "test_accuracy", "test_logloss", "val_auc", "val_logloss")


def check(params: Params, cfg: Config, data: ValidatedData) -> dict[str, Any] | None:
    """The registered version trained on exactly these inputs, or None (or when forced).

    Returns:
        ``{"version", "registered_path", "run_dir", "metrics"}`` of that version.
    """
    from ml.provenance import code_version
    from ml.registry.model_registry import ModelRegistry

    if params.force_retrain:
        log.info("force_retrain: training even if nothing changed since the last version")
        return None
    registry = ModelRegistry()
    version = registry.find_version(
        params.model_name,
        data_digest=data.digest,
        config_digest=cfg.digest(),
        code_digest=str(code_version()["source_digest"]),
    )
    if version is None:
        return None
    info = registry.show(params.model_name, version, STAGING)
    meta = info["metadata"]
    metrics = {k: v for k, v in (meta.get("metrics") or {}).items() if k in METRIC_KEYS}
    same = {
        "version": version,
        "registered_path": display_path(info["path"]),
        "run_dir": display_path((meta.get("source") or {}).get("run_dir") or info["path"]),
        "metrics": {**metrics, "unchanged_since": version},
    }
    log.info(
        "✅ Nothing changed since %s %s (same data, config and code): skipping training and "
        "registration; set force_retrain=true to train anyway",
        params.model_name,
        version,
    )
    return same


def validated_data(run: PipelineRun) -> ValidatedData | None:
    """The features as this run's validate step validated them (None: not recorded)."""
    summary = read_summary(run.dag_id, run.run_id) or {}
    raw = summary.get("data")
    return ValidatedData.from_dict(raw) if isinstance(raw, dict) else None


def recorded(run: PipelineRun) -> dict[str, Any] | None:
    """The ``unchanged_since`` the validate step recorded for this run, if any."""
    summary = read_summary(run.dag_id, run.run_id) or {}
    same = summary.get("unchanged_since")
    return same if isinstance(same, dict) else None


def skip(run: PipelineRun, step: str, **values: Any) -> dict[str, Any]:
    """Record ``step`` as skipped with the values it passes on (vN's); returns them."""
    update_summary(run.dag_id, run.run_id, steps={step: {"state": "skipped"}}, **values)
    return values
