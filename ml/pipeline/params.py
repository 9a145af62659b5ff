"""What a pipeline run is given: its identity (:class:`PipelineRun`) and its params.

:class:`Params` are the training DAG's params (same names, same defaults), so the DAG,
``ctr-pipeline run`` and ``make run`` describe a run the same way. The DAG validates them
with JSON schema before a run exists; :meth:`Params.from_mapping` checks them again for
callers without Airflow.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from ml import paths
from ml.config import Config, load_config
from ml.errors import ConfigError, UserError
from ml.evaluation.gates import GateParams
from ml.monitoring import DEFAULT_MAX_PSI, DRIFT_ACTIONS
from ml.training.run_dir import run_key

DEFAULT_MODEL_NAME = "ctr_model"
#: The ``dag_id`` of runs started by ``ctr-pipeline run`` (no Airflow).
CLI_PIPELINE_ID = "ctr-pipeline"


@dataclass(frozen=True)
class PipelineRun:
    """Which pipeline run a step belongs to (a DAG run, or one ``ctr-pipeline run``)."""

    dag_id: str
    run_id: str
    logical_date: datetime | None = None
    started_at: datetime | None = None

    @property
    def key(self) -> str:
        """The run key its training run directories carry (``ml.training.run_dir``)."""
        return run_key(self.dag_id, logical_date=self.logical_date, run_id=self.run_id)

    def describe(self) -> str:
        return f"{self.dag_id} / {self.run_id}"


@dataclass(frozen=True)
class Params:
    """The pipeline's params; see docs/airflow.md for each one."""

    config_path: str = paths.DEFAULT_CONFIG
    features_path: str | None = None
    model_name: str = DEFAULT_MODEL_NAME
    min_auc: float = 0.65
    min_accuracy: float = 0.60
    max_auc_drop: float = 0.005
    baseline_tolerance: float | None = 0.0
    auto_promote: bool = False
    epochs: int | None = None
    force_retrain: bool = False
    #: Drift check in validate (ml.monitoring.drift): PSI threshold and warn | fail.
    max_psi: float = DEFAULT_MAX_PSI
    drift_action: str = "warn"
    #: Optuna trials before training (0: no tuning) and mapped workers running them.
    tuning_trials: int = 0
    tuning_parallel: int = 2
    #: ``{"training": {"epochs": 2}}``-style config overrides (``ctr-pipeline run --set``).
    config_overrides: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict, compare=False)

    @classmethod
    def from_mapping(cls, raw: Mapping[str, Any]) -> Params:
        """Build from a DAG's params (or CLI flags); unknown keys go to ``extra``."""
        names = {f.name for f in dataclasses.fields(cls)} - {"extra"}
        known = {k: v for k, v in raw.items() if k in names}
        extra = {k: v for k, v in raw.items() if k not in names}
        params = cls(**known, extra=extra)
        if params.epochs is not None and (isinstance(params.epochs, bool) or params.epochs < 1):
            raise UserError(f"epochs must be a positive integer or null, got {params.epochs!r}")
        if isinstance(params.max_psi, bool) or not (
            isinstance(params.max_psi, (int, float)) and params.max_psi > 0
        ):
            raise UserError(f"max_psi must be a positive number, got {params.max_psi!r}")
        if params.drift_action not in DRIFT_ACTIONS:
            raise UserError(
                f"drift_action must be one of {DRIFT_ACTIONS}, got {params.drift_action!r}"
            )
        for name, low in (("tuning_trials", 0), ("tuning_parallel", 1)):
            value = getattr(params, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise UserError(f"{name} must be an integer >= {low}, got {value!r}")
        return params

    @property
    def gates(self) -> GateParams:
        return GateParams(
            min_auc=self.min_auc,
            min_accuracy=self.min_accuracy,
            max_auc_drop=self.max_auc_drop,
            baseline_tolerance=self.baseline_tolerance,
        )

    def config(self) -> Config:
        """The training config at ``config_path`` with the ``epochs`` override applied."""
        cfg = load_config(self.config_path)
        if self.config_overrides:
            cfg = cfg.replace(**self.config_overrides)
        if self.epochs is not None:
            cfg = cfg.replace(training={"epochs": int(self.epochs)})
        return cfg

    def features_dir(self, cfg: Config) -> str:
        """``features_path`` when given, else the config's ``data.features_dir``."""
        chosen = self.features_path or cfg.data.features_dir
        if not str(chosen).strip():
            raise ConfigError("features_path is empty; pass a directory or null")
        return str(chosen)
