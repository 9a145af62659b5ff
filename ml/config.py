"""The one typed training configuration.

``config/model_config.yaml`` is parsed once (``yaml.safe_load``) into a frozen
:class:`Config`. Every section and key is declared here with its type; an unknown or
misspelled key, a wrong type or an out-of-range value raises :class:`ConfigError`
naming the file and the key (``model.embeding_dim``), so a typo never silently falls
back to a default.

Layout::

    Config
    ├── experiment_name   run directories are <experiment_name>_<timestamp>
    ├── seed
    ├── features: FeatureSpec   label / categorical / numeric column names
    ├── data: DataConfig        features_dir, min_frequency, numeric_nan, streaming
    ├── model: ModelConfig      name and hyperparameters
    ├── training: TrainingConfig optimiser, batch size, epochs, patience, device
    ├── output: OutputConfig    runs_dir
    ├── tuning: TuningConfig    search space (ml/tuning/space.py); not in the digest
    └── watch: WatchConfig      watch_production's thresholds; not in the digest
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ml import paths
from ml.choices import (
    DEVICES,
    MODEL_CHOICES,
    MODEL_KEYS,
    MONITOR_CHOICES,
    NUMERIC_NAN_POLICIES,
    PRECISIONS,
)
from ml.configbuild import AutoBool, build, to_plain
from ml.errors import ConfigError
from ml.tuning.space import TuningConfig

#: Most hash buckets per field: ids are int32 and bucket ids run to N.
MAX_BUCKETS = 2**31 - 2
#: Most training processes per machine (training.distributed.nproc).
MAX_NPROC = 64


@dataclass(frozen=True)
class FeatureSpec:
    """Which parquet columns are the label, categorical and numeric features.

    Any parquet data with these columns trains; either feature list may be empty,
    but not both. ``hash_buckets`` (``{column: N}``) hashes a categorical column's values
    into ``N`` buckets instead of fitting a vocabulary (:mod:`ml.data.hashing`).
    """

    label: str = "click"
    categorical: tuple[str, ...] = ()
    numeric: tuple[str, ...] = ()
    # {categorical column: buckets}: ids hashed into N buckets, no vocabulary (for fields
    # with more distinct values than fit in memory or an embedding table).
    hash_buckets: dict[str, int] = field(default_factory=dict)

    @property
    def feature_columns(self) -> tuple[str, ...]:
        return self.categorical + self.numeric

    @property
    def all_columns(self) -> tuple[str, ...]:
        return (self.label, *self.categorical, *self.numeric)

    def _check(self, where: str) -> None:
        if not self.categorical and not self.numeric:
            raise ConfigError(f"{where}: features lists no categorical and no numeric column")
        seen: set[str] = set()
        for col in self.all_columns:
            if not col:
                raise ConfigError(f"{where}: features has an empty column name")
            if col in seen:
                raise ConfigError(
                    f"{where}: column {col!r} is listed twice in features "
                    "(label, categorical and numeric must be disjoint)"
                )
            seen.add(col)
        for col, n in self.hash_buckets.items():
            if col not in self.categorical:
                raise ConfigError(
                    f"{where}: hash_buckets.{col}: {col!r} is not a categorical column "
                    f"(features.categorical: {list(self.categorical)}); only categorical "
                    "columns are hashed"
                )
            if not 2 <= n <= MAX_BUCKETS:
                raise ConfigError(
                    f"{where}: hash_buckets.{col} must be an integer in [2, {MAX_BUCKETS}] "
                    f"(the number of buckets), got {n}"
                )

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "label": self.label,
            "categorical": list(self.categorical),
            "numeric": list(self.numeric),
        }
        if self.hash_buckets:  # absent when unused: older readers still read the spec
            out["hash_buckets"] = dict(self.hash_buckets)
        return out

    @classmethod
    def from_dict(cls, raw: dict[str, Any], where: str = "features") -> FeatureSpec:
        spec = build(cls, raw, where)
        spec._check(where)
        return spec


@dataclass(frozen=True)
class DataConfig:
    # Directory holding {train,val,test}/data.parquet (relative to the base directory).
    features_dir: str = paths.FEATURES_DIR
    # Categories seen fewer times than this in train map to the out-of-vocabulary bucket.
    min_frequency: int = 5
    # NaN/inf in a numeric column: "error" rejects the data, "impute" replaces them with
    # the train mean (after clipping inf) and adds nothing else.
    numeric_nan: str = "impute"
    # Warn (in the training log) about a categorical field whose share of validation
    # rows encoded as out-of-vocabulary exceeds this.
    max_oov_share: float = 0.5
    # Each numeric column also becomes a categorical field of up to this many train
    # quantile bins (0: off); robust to heavy tails and non-linear effects.
    numeric_bins: int = 16
    # auto | true | false: stream the rows from a shard cache with bounded memory instead
    # of loading every split; auto streams when the data would not fit in memory.
    streaming: AutoBool = AutoBool.AUTO

    def _check(self, where: str) -> None:
        if self.min_frequency < 1:
            raise ConfigError(f"{where}.min_frequency must be >= 1, got {self.min_frequency}")
        if self.numeric_bins < 0 or self.numeric_bins > 1024:
            raise ConfigError(f"{where}.numeric_bins must be in [0, 1024], got {self.numeric_bins}")
        if not 0.0 <= self.max_oov_share <= 1.0:
            raise ConfigError(f"{where}.max_oov_share must be in [0, 1], got {self.max_oov_share}")
        if self.numeric_nan not in NUMERIC_NAN_POLICIES:
            raise ConfigError(
                f"{where}.numeric_nan must be one of {NUMERIC_NAN_POLICIES}, "
                f"got {self.numeric_nan!r}"
            )


@dataclass(frozen=True)
class ModelConfig:
    # auto (train candidate families within auto_budget, keep the best on validation:
    # ml.training.auto), logreg (baseline), fm (factorization machine), dcnv2 (cross
    # network v2 + MLP), deepfm (FM + MLP) or finalmlp (two gated MLP streams, bilinear
    # fusion).
    name: str = "auto"
    embedding_dim: int = 16
    hidden_units: tuple[int, ...] = (256, 128)
    cross_layers: int = 2  # dcnv2 only
    dropout: float = 0.2
    # auto only: seconds for all the candidates; null: by the train split's size
    # (ml.training.auto.auto_budget).
    auto_budget: float | None = None

    def _check(self, where: str) -> None:
        if self.name not in MODEL_CHOICES:
            raise ConfigError(f"{where}.name must be one of {MODEL_CHOICES}, got {self.name!r}")
        if self.auto_budget is not None and self.auto_budget <= 0:
            raise ConfigError(
                f"{where}.auto_budget must be > 0 seconds or null (by the data size), "
                f"got {self.auto_budget}"
            )
        if self.embedding_dim < 1:
            raise ConfigError(f"{where}.embedding_dim must be >= 1, got {self.embedding_dim}")
        if any(h < 1 for h in self.hidden_units):
            raise ConfigError(f"{where}.hidden_units must be positive, got {self.hidden_units}")
        if self.cross_layers < 0:
            raise ConfigError(f"{where}.cross_layers must be >= 0, got {self.cross_layers}")
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"{where}.dropout must be in [0, 1), got {self.dropout}")


@dataclass(frozen=True)
class DistributedConfig:
    """Training on several processes (DistributedDataParallel, ml.training.launch)."""

    # Processes (ranks) on this machine, launched with torchrun: one per GPU, or CPU
    # processes (gloo); 1 trains in the calling process. How a run trains, not what it
    # trains: left out of the recorded config and its digest, so a run resumes with
    # another count.
    nproc: int = 1

    def _check(self, where: str) -> None:
        if not 1 <= self.nproc <= MAX_NPROC:
            raise ConfigError(f"{where}.nproc must be in [1, {MAX_NPROC}], got {self.nproc}")


@dataclass(frozen=True)
class TrainingConfig:
    learning_rate: float = 3e-4
    # null (both): chosen from the train size (ml.training.sizing: auto_batch_size and
    # auto_weight_decay).
    weight_decay: float | None = None
    batch_size: int | None = None
    epochs: int = 100
    # Early stopping: the validation metric watched (val_auc or val_logloss; auto:
    # val_auc from 10,000 validation rows, else val_logloss), how many epochs without an
    # improvement larger than min_delta end training, and the best epoch by that metric
    # is the checkpoint kept (then calibrated on the validation split).
    monitor: str = "auto"
    # null: 3, or 5 on a validation split under 10,000 rows (ml.training.sizing.auto_patience).
    patience: int | None = None
    min_delta: float = 0.0
    # auto: CUDA when available, else CPU.
    device: str = "auto"
    # CPU threads for torch; null keeps torch's default.
    num_threads: int | None = None
    # fp32, or bf16: the forward pass under torch.autocast(bfloat16) (weights, optimizer
    # and evaluation stay fp32). ~1.9x the samples/s of fp32 on a CPU with AVX-512 BF16.
    # auto: bf16 where the device computes it natively, else fp32
    # (ml.training.hardware.resolve_precision).
    precision: str = "auto"
    distributed: DistributedConfig = field(default_factory=DistributedConfig)

    def _check(self, where: str) -> None:
        self.distributed._check(f"{where}.distributed")
        if self.learning_rate <= 0:
            raise ConfigError(f"{where}.learning_rate must be > 0, got {self.learning_rate}")
        if self.weight_decay is not None and self.weight_decay < 0:
            raise ConfigError(
                f"{where}.weight_decay must be >= 0 or null (automatic), got {self.weight_decay}"
            )
        if self.batch_size is not None and self.batch_size < 1:
            raise ConfigError(
                f"{where}.batch_size must be >= 1 or null (automatic), got {self.batch_size}"
            )
        if self.epochs < 1:
            raise ConfigError(f"{where}.epochs must be >= 1, got {self.epochs}")
        if self.patience is not None and self.patience < 1:
            raise ConfigError(
                f"{where}.patience must be >= 1 or null (automatic), got {self.patience}"
            )
        if self.monitor not in MONITOR_CHOICES:
            raise ConfigError(
                f"{where}.monitor must be one of {MONITOR_CHOICES}, got {self.monitor!r}"
            )
        if self.min_delta < 0:
            raise ConfigError(f"{where}.min_delta must be >= 0, got {self.min_delta}")
        if self.device not in DEVICES:
            raise ConfigError(f"{where}.device must be one of {DEVICES}, got {self.device!r}")
        if self.num_threads is not None and self.num_threads < 1:
            raise ConfigError(f"{where}.num_threads must be >= 1 or null, got {self.num_threads}")
        if self.precision not in PRECISIONS:
            raise ConfigError(
                f"{where}.precision must be one of {PRECISIONS}, got {self.precision!r}"
            )


@dataclass(frozen=True)
class OutputConfig:
    # Run directories are created here (relative to the base directory).
    runs_dir: str = paths.RUNS_DIR


@dataclass(frozen=True)
class WatchConfig:
    """``watch_production``'s thresholds (docs/airflow.md); each DAG param overrides one."""

    # Outcomes of the last window_s seconds are judged.
    window_s: float = 3600.0
    # Fewer outcomes than this: too few to judge, never a rollback.
    min_outcomes: int = 500
    # Live log loss limit (null: none); the whole interval must be above it.
    max_logloss: float | None = None
    # Live log loss above the previous version's by more than this (whole interval).
    max_logloss_increase: float = 0.05
    # |mean predicted / observed CTR - 1| limit, with the prediction outside the interval.
    max_calibration_error: float = 0.25
    # No rollback within this many seconds of the last promotion or rollback.
    cooldown_s: float = 3600.0
    # Two-sided level of every interval.
    alpha: float = 0.05
    # PSI of a served feature against the training profile reported as drifted.
    max_psi: float = 0.25

    def check(self, where: str = "watch.") -> None:
        """Raise :class:`ConfigError` naming the first bad threshold (``where`` + key)."""
        for name in ("window_s", "max_logloss_increase", "max_calibration_error", "max_psi"):
            if not getattr(self, name) > 0:
                raise ConfigError(f"{where}{name} must be > 0, got {getattr(self, name)!r}")
        if isinstance(self.min_outcomes, bool) or not isinstance(self.min_outcomes, int):
            raise ConfigError(f"{where}min_outcomes must be an integer, got {self.min_outcomes!r}")
        if self.min_outcomes < 1:
            raise ConfigError(f"{where}min_outcomes must be >= 1, got {self.min_outcomes!r}")
        if not self.cooldown_s >= 0:
            raise ConfigError(f"{where}cooldown_s must be >= 0, got {self.cooldown_s!r}")
        if not 0 < self.alpha < 0.5:
            raise ConfigError(f"{where}alpha must be in (0, 0.5), got {self.alpha!r}")
        if self.max_logloss is not None and not self.max_logloss > 0:
            raise ConfigError(f"{where}max_logloss must be > 0 or null, got {self.max_logloss!r}")


@dataclass(frozen=True)
class Config:
    experiment_name: str = "ctr_model"
    seed: int = 42
    features: FeatureSpec = field(default_factory=FeatureSpec)
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    training: TrainingConfig = field(default_factory=TrainingConfig)
    output: OutputConfig = field(default_factory=OutputConfig)
    tuning: TuningConfig = field(default_factory=TuningConfig)
    watch: WatchConfig = field(default_factory=WatchConfig)

    def to_dict(self) -> dict[str, Any]:
        plain: dict[str, Any] = to_plain(dataclasses.asdict(self))
        return plain

    def inapplicable_keys(self) -> list[str]:
        """``model.KEY`` entries that the chosen model family does not use."""
        used = MODEL_KEYS[self.model.name]
        return [
            f"model.{f.name}"
            for f in dataclasses.fields(ModelConfig)
            if f.name != "name" and f.name not in used
        ]

    def ignored_settings(self) -> list[str]:
        """Inapplicable ``model.KEY`` entries set to something other than the default."""
        default = ModelConfig()
        return [
            key
            for key in self.inapplicable_keys()
            if getattr(self.model, key.split(".", 1)[1]) != getattr(default, key.split(".", 1)[1])
        ]

    def recorded_dict(self) -> dict[str, Any]:
        """The config as a run records it: without the keys the model does not use.

        Two configs that differ only in keys the model ignores train the same model, so
        they record (and digest) the same; nor do the ``tuning`` section (how to search
        is not what a run trains), the ``watch`` section (how production is watched) and
        ``training.distributed`` (how many processes train it: a run resumes with another).
        """
        raw = self.to_dict()
        raw.pop("tuning", None)
        raw.pop("watch", None)
        raw["training"].pop("distributed", None)  # how many processes, not what is trained
        for key in self.inapplicable_keys():
            raw["model"].pop(key.split(".", 1)[1], None)
        return raw

    def to_yaml(self) -> str:
        """The recorded form (:meth:`recorded_dict`) as YAML; ``load_config`` reads it back."""
        return yaml.safe_dump(self.recorded_dict(), sort_keys=False)

    def digest(self) -> str:
        """sha256 of the recorded form as canonical JSON: equal configs hash equal whatever
        the YAML layout, and keys the model ignores do not count."""
        blob = json.dumps(self.recorded_dict(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(blob.encode()).hexdigest()

    def replace(self, **sections: Any) -> Config:
        """A copy with overrides: ``cfg.replace(training={"epochs": 2})``."""
        raw = self.to_dict()
        for key, value in sections.items():
            if isinstance(value, dict) and isinstance(raw.get(key), dict):
                raw[key] = {**raw[key], **value}
            else:
                raw[key] = value
        return config_from_dict(raw)


def config_from_dict(raw: Any, where: str = "config") -> Config:
    """Build and validate a :class:`Config` from plain data (as parsed from YAML)."""
    if raw is None:
        raw = {}
    cfg = build(Config, raw, where)
    cfg.features._check(f"{where}: features")
    cfg.data._check("data")
    cfg.model._check("model")
    cfg.training._check("training")
    cfg.tuning.check(cfg)
    cfg.watch.check()
    if not cfg.experiment_name or "/" in cfg.experiment_name:
        raise ConfigError(
            f"{where}: experiment_name must be a non-empty name without '/', "
            f"got {cfg.experiment_name!r}"
        )
    return cfg


def inapplicable_warning(cfg: Config) -> str:
    """A warning naming the settings ``cfg``'s model ignores ("" when there are none).

    A key counts when it is set to something other than its default: a config may hold
    settings for several models (and tuning switches models), so this is a warning, not
    an error.
    """
    keys = cfg.ignored_settings()
    if not keys:
        return ""
    return (
        f"config keys {', '.join(keys)} do not apply to model {cfg.model.name!r} and are "
        "ignored (left out of the run's recorded config)"
    )


def load_config(path: str | os.PathLike[str] = paths.DEFAULT_CONFIG) -> Config:
    """Load the YAML file at ``path`` (relative paths resolve against the base directory)."""
    resolved = paths.resolve(path)
    if not resolved.is_file():
        raise ConfigError(
            f"config file {resolved} does not exist; pass --config with the path of a YAML "
            f"file such as {paths.DEFAULT_CONFIG}"
        )
    try:
        raw = yaml.safe_load(resolved.read_text())
    except yaml.YAMLError as exc:
        raise ConfigError(f"{resolved} is not valid YAML: {exc}") from exc
    try:
        return config_from_dict(raw, where=str(resolved))
    except ConfigError as exc:
        msg = str(exc)
        if not msg.startswith(str(resolved)):
            msg = f"{resolved}: {msg}"
        raise ConfigError(msg) from None


def write_config(cfg: Config, path: Path) -> None:
    """Write ``cfg`` as YAML (the form ``load_config`` reads back)."""
    path.write_text(cfg.to_yaml())
