"""What a pipeline run is given: its identity (:class:`PipelineRun`) and its params.

:class:`Params` is the one table of the training DAG's params: each field declares its
name, type, default, bounds and description once (:func:`param`). Everything else is
generated from it, so nothing can drift:

- the DAG's ``Param`` dict (``dags/training_pipeline.py``: :meth:`ParamSpec.json_schema`);
- ``ctr-pipeline run``'s flags (``ml/pipeline/cli.py``: :meth:`ParamSpec.flag`);
- the checks for callers without Airflow (:meth:`Params.from_mapping`, the same rules
  as the DAG's JSON schema, with a message naming the param);
- docs/airflow.md's params table is checked against it (tests/pipeline/test_params.py).

Light on purpose (no pandas, torch or config parsing at import): the DAG file imports
this module while it is parsed.
"""

from __future__ import annotations

import dataclasses
import functools
import re
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from ml import paths
from ml.choices import MODEL_CHOICES
from ml.errors import ConfigError, UserError
from ml.monitoring import DEFAULT_MAX_PSI, DRIFT_ACTIONS
from ml.registry.layout import NAME_PATTERN
from ml.training.run_dir import run_key

#: The ``dag_id`` of runs started by ``ctr-pipeline run`` (no Airflow).
CLI_PIPELINE_ID = "ctr-pipeline"

_JSON_TYPES = {str: "string", float: "number", int: "integer", bool: "boolean"}


@dataclass(frozen=True)
class ParamSpec:
    """One param: what the DAG's ``Param`` and ``run``'s flag are generated from."""

    name: str
    type: type  # str, float, int or bool
    nullable: bool
    default: Any
    description: str
    minimum: float | None = None
    maximum: float | None = None
    exclusive_minimum: float | None = None
    enum: tuple[str, ...] | None = None
    pattern: str | None = None
    #: The ``ctr-pipeline run`` option, when it is not ``--<name with dashes>``.
    cli_flag: str | None = None

    @property
    def flag(self) -> str:
        return self.cli_flag or "--" + self.name.replace("_", "-")

    def json_schema(self) -> dict[str, Any]:
        """The JSON-schema keywords of Airflow's ``Param`` (``type``, bounds, ...)."""
        kind = _JSON_TYPES[self.type]
        schema: dict[str, Any] = {"type": ["null", kind] if self.nullable else kind}
        if self.type is str:
            schema["minLength"] = 1
        for key, value in (
            ("minimum", self.minimum),
            ("maximum", self.maximum),
            ("exclusiveMinimum", self.exclusive_minimum),
            ("pattern", self.pattern),
        ):
            if value is not None:
                schema[key] = value
        if self.enum is not None:
            schema["enum"] = list(self.enum) + ([None] if self.nullable else [])
        return schema

    def check(self, value: Any) -> Any:
        """``value`` when the DAG's JSON schema would accept it (an int for a number too).

        Raises:
            UserError: names the param, the value and what it must be.
        """
        if value is None and self.nullable:
            return None
        kind = self.type
        ok = isinstance(value, kind) and (kind is bool or not isinstance(value, bool))
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            ok, value = True, float(value)
        if not ok:
            what = _JSON_TYPES[kind] + (" or null" if self.nullable else "")
            article = "an" if what[0] in "aeiou" else "a"
            raise UserError(f"param {self.name} must be {article} {what}, got {value!r}")
        problem = self._range_problem(value)
        if problem:
            raise UserError(f"param {self.name}: {value!r} {problem}")
        return value

    def _range_problem(self, value: Any) -> str | None:
        if self.type is str:
            if not value.strip():
                return "is empty"
            if self.pattern and not re.search(self.pattern, value):
                return f"does not match {self.pattern}"
        if self.enum is not None and value not in self.enum:
            return f"is not one of {', '.join(self.enum)}"
        if self.minimum is not None and value < self.minimum:
            return f"is less than the minimum of {self.minimum}"
        if self.maximum is not None and value > self.maximum:
            return f"is greater than the maximum of {self.maximum}"
        if self.exclusive_minimum is not None and value <= self.exclusive_minimum:
            return f"must be greater than {self.exclusive_minimum}"
        return None


def param(default: Any, description: str, **rules: Any) -> Any:
    """A :class:`Params` field that is a DAG param; ``rules`` are :class:`ParamSpec`'s
    bounds (``minimum``, ``maximum``, ``exclusive_minimum``, ``enum``, ``pattern``,
    ``cli_flag``)."""
    return field(default=default, metadata={"param": (description, rules)})


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
    """The training DAG's params (and ``ctr-pipeline run``'s); docs/airflow.md has a table."""

    config_path: str = param(
        paths.DEFAULT_CONFIG,
        "Training config YAML (relative to the project base directory).",
        cli_flag="--config",
    )
    features_path: str | None = param(
        None,
        "Features directory; null: the config's data.features_dir.",
        cli_flag="--features-dir",
    )
    model_name: str = param(
        "ctr_model",
        "Registry name: a letter or digit, then letters, digits, '_', '.', '-'.",
        pattern=f"^{NAME_PATTERN}$",
    )
    min_auc: float = param(0.65, "Gate: test AUC.", minimum=0, maximum=1)
    min_accuracy: float = param(0.60, "Gate: test accuracy.", minimum=0, maximum=1)
    max_auc_drop: float = param(
        0.005,
        "Gate: largest test-AUC drop allowed versus the production model.",
        minimum=0,
        maximum=1,
    )
    baseline_tolerance: float | None = param(
        0.0,
        "Gate: how far below the logistic-regression baseline's test AUC the model may be; "
        "null turns the gate off.",
        minimum=0,
        maximum=1,
    )
    auto_promote: bool = param(False, "Promote the new version when every gate passes.")
    epochs: int | None = param(
        None, "Override training.epochs from the config (null: keep it).", minimum=1, maximum=10_000
    )
    model_family: str | None = param(
        None,
        "Override model.name from the config: a family (logreg, fm, dcnv2, deepfm, "
        "finalmlp) trains only it, auto chooses among them on validation; null keeps the "
        "config's.",
        enum=MODEL_CHOICES,
    )
    force_retrain: bool = param(
        False,
        "Train and register even when a registered version was trained on the same data, "
        "config and code (otherwise the run names that version and skips).",
    )
    max_psi: float = param(
        DEFAULT_MAX_PSI,
        "Drift check: a feature whose PSI against the production model's training data "
        "exceeds this is drifted.",
        exclusive_minimum=0,
    )
    drift_action: str = param(
        "warn",
        "Drift check: warn (log and report) or fail the run on a drifted feature.",
        enum=DRIFT_ACTIONS,
    )
    tuning_trials: int = param(
        0,
        "Optuna trials of the config's tuning.space before train_model (0: no tuning); "
        "train_model takes the best one. See docs/tuning.md.",
        minimum=0,
        maximum=10_000,
    )
    tuning_parallel: int = param(
        2,
        "Workers running the trials: mapped tune_worker tasks in the DAG, processes in "
        "ctr-pipeline run (one trial at a time each).",
        minimum=1,
        maximum=64,
    )
    #: ``{"training": {"epochs": 2}}``-style config overrides (``ctr-pipeline run --set``).
    config_overrides: dict[str, Any] = field(default_factory=dict)
    #: Keys of a DAG run's conf that are not params (kept for the summary, never used).
    extra: dict[str, Any] = field(default_factory=dict, compare=False)

    @classmethod
    def from_mapping(cls, raw: Mapping[str, Any]) -> Params:
        """Build from a DAG's params (or CLI flags), checked as the DAG's JSON schema
        checks them; keys that are not params go to ``extra``.

        Raises:
            UserError: a value the DAG would refuse (names the param).
        """
        specs = {s.name: s for s in param_specs()}
        known = {k: specs[k].check(v) for k, v in raw.items() if k in specs}
        extra = {k: v for k, v in raw.items() if k not in specs and k != "config_overrides"}
        overrides = dict(raw.get("config_overrides") or {})
        return cls(**known, config_overrides=overrides, extra=extra)

    def config(self) -> Any:
        """The training config at ``config_path`` with the overrides, ``epochs`` and
        ``model_family`` applied."""
        from ml.config import load_config

        cfg = load_config(self.config_path)
        if self.config_overrides:
            cfg = cfg.replace(**self.config_overrides)
        if self.epochs is not None:
            cfg = cfg.replace(training={"epochs": int(self.epochs)})
        if self.model_family is not None:
            cfg = cfg.replace(model={"name": self.model_family})
        return cfg

    def features_dir(self, cfg: Any) -> str:
        """``features_path`` when given, else the config's ``data.features_dir``."""
        chosen = self.features_path or cfg.data.features_dir
        if not str(chosen).strip():
            raise ConfigError("features_path is empty; pass a directory or null")
        return str(chosen)

    def as_dict(self) -> dict[str, Any]:
        """The params (and the config overrides) as plain values, for the run summary."""
        return {k: v for k, v in dataclasses.asdict(self).items() if k != "extra"}


@functools.cache
def param_specs() -> tuple[ParamSpec, ...]:
    """Every param of :class:`Params`, in declaration order."""
    hints = typing.get_type_hints(Params)
    out = []
    for f in dataclasses.fields(Params):
        if "param" not in f.metadata:
            continue
        description, rules = f.metadata["param"]
        hint = hints[f.name]
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        kind = args[0] if args else hint
        nullable = bool(args) and type(None) in typing.get_args(hint)
        out.append(ParamSpec(f.name, kind, nullable, f.default, description, **rules))
    return tuple(out)
