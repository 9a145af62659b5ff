"""The config's ``tuning:`` section: what to optimise and the search space.

::

    tuning:
      metric: val_auc            # val_auc (maximised) | val_logloss (minimised)
      trials: 30                 # ctr-pipeline tune's default --trials
      space:                     # SECTION.KEY: a range, or a list of choices
        training.learning_rate: {low: 0.001, high: 0.05, log: true}
        model.dropout: {low: 0.0, high: 0.3}
        data.min_frequency: {low: 1, high: 200, log: true}   # an int key: integers
        model.name: [dcnv2, deepfm]
        model.hidden_units: [[64], [256, 128]]

Any key of the ``data``, ``model`` and ``training`` sections may be tuned (except
``data.features_dir`` and ``training.device``). A range (``low``, ``high``, optional
``log`` and ``step``) fits int and float keys; a list of choices (or ``{choices:
[...]}``) fits any key, list-valued ones (``hidden_units``) included. An unknown key, an
empty or inverted range, or a choice the key cannot take is a :class:`ConfigError`
naming ``tuning.space.SECTION.KEY``.

``model.*`` keys that the trial's ``model.name`` does not use are not sampled for that
trial (the sampler sees a conditional space); :meth:`SearchSpace.inapplicable` names
them so the tuner can warn. The section is not part of a run's recorded config nor of
its digest (:meth:`ml.config.Config.recorded_dict`): tuning settings never change what a
training run is.
"""

from __future__ import annotations

import json
import math
import types
import typing
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from ml.errors import ConfigError

if TYPE_CHECKING:
    import optuna

    from ml.config import Config

TUNABLE_SECTIONS = ("data", "model", "training")
#: Keys that say where or on what to train, not how: never tuned.
UNTUNABLE = frozenset({"data.features_dir", "training.device"})
_RANGE_KEYS = frozenset({"low", "high", "log", "step"})


@dataclass(frozen=True)
class SearchParam:
    """One ``SECTION.KEY`` of the space: a range (``low``..``high``) or ``choices``."""

    key: str
    low: float | None = None
    high: float | None = None
    log: bool = False
    step: float | None = None
    choices: tuple[Any, ...] | None = None

    @property
    def section(self) -> str:
        return self.key.split(".", 1)[0]

    @property
    def name(self) -> str:
        return self.key.split(".", 1)[1]

    def to_config(self) -> Any:
        if self.choices is not None:
            return [list(c) if isinstance(c, tuple) else c for c in self.choices]
        out: dict[str, Any] = {"low": self.low, "high": self.high}
        if self.log:
            out["log"] = True
        if self.step is not None:
            out["step"] = self.step
        return out

    def labels(self) -> list[Any]:
        """The choices as Optuna takes them (lists become their JSON text)."""
        assert self.choices is not None
        return [label(c) for c in self.choices]

    def describe(self) -> str:
        if self.choices is not None:
            return "{" + ", ".join(str(label(c)) for c in self.choices) + "}"
        return f"[{self.low:g}, {self.high:g}]" + (" log" if self.log else "")


def label(value: Any) -> Any:
    """A config value as an Optuna parameter value (lists become compact JSON text)."""
    if isinstance(value, (list, tuple)):
        return json.dumps(list(value))
    return value


def _parse_param(key: Any, raw: Any, where: str) -> SearchParam:
    here = f"{where}.{key}"
    if not isinstance(key, str) or key.count(".") != 1:
        raise ConfigError(f"{where}: key {key!r} must be SECTION.KEY, e.g. model.dropout")
    if isinstance(raw, Mapping) and set(raw) == {"choices"}:
        raw = raw["choices"]
    if isinstance(raw, list):
        if not raw:
            raise ConfigError(f"{here}: the list of choices is empty")
        choices = tuple(tuple(c) if isinstance(c, list) else c for c in raw)
        if len({json.dumps(label(c)) for c in choices}) != len(choices):
            raise ConfigError(f"{here}: a choice is listed twice in {raw}")
        return SearchParam(key, choices=choices)
    if not isinstance(raw, Mapping) or not {"low", "high"} <= set(raw):
        raise ConfigError(
            f"{here} must be a list of choices or a range {{low: A, high: B}} "
            f"(optionally log: true, step: S), got {raw!r}"
        )
    unknown = sorted(set(raw) - _RANGE_KEYS)
    if unknown:
        raise ConfigError(
            f"{here}: unknown range key {unknown[0]!r}; allowed: low, high, log, step"
        )
    for name in ("low", "high", "step"):
        value = raw.get(name)
        if name in raw and (isinstance(value, bool) or not isinstance(value, (int, float))):
            raise ConfigError(f"{here}.{name} must be a number, got {value!r}")
    low, high, step = raw["low"], raw["high"], raw.get("step")
    log = raw.get("log", False)
    if not isinstance(log, bool):
        raise ConfigError(f"{here}.log must be true or false, got {log!r}")
    if low == high:
        raise ConfigError(f"{here}: empty range (low == high == {low}); use a list to fix a value")
    if low > high:
        raise ConfigError(f"{here}: inverted range (low {low} > high {high})")
    if log and low <= 0:
        raise ConfigError(f"{here}: a log range needs low > 0, got {low}")
    if step is not None and (step <= 0 or log):
        raise ConfigError(f"{here}.step must be > 0 and cannot be combined with log")
    return SearchParam(key, low=low, high=high, log=log, step=step)


class SearchSpace:
    """The ``tuning.space`` mapping, parsed (a value type of the frozen config)."""

    def __init__(self, params: tuple[SearchParam, ...] = ()) -> None:
        self.params = params

    @classmethod
    def from_config(cls, raw: Any, where: str) -> SearchSpace:
        """Parse the mapping's shape (checked against the config by :meth:`check`)."""
        if raw is None:
            return cls()
        if not isinstance(raw, Mapping):
            raise ConfigError(f"{where} must be a mapping of SECTION.KEY to a range or choices")
        return cls(tuple(_parse_param(k, v, where) for k, v in raw.items()))

    def to_config(self) -> dict[str, Any]:
        return {p.key: p.to_config() for p in self.params}

    def __iter__(self) -> Iterator[SearchParam]:
        return iter(self.params)

    def __len__(self) -> int:
        return len(self.params)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SearchSpace) and other.params == self.params

    def __hash__(self) -> int:
        return hash(self.params)

    def __repr__(self) -> str:
        return f"SearchSpace({self.to_config()!r})"

    def check(self, cfg: Config, where: str) -> None:
        """Every key exists and is tunable; every range end and choice is a valid value."""
        for p in self.params:
            kind = _kind(cfg, p, where)
            if p.choices is None and kind not in ("int", "float"):
                raise ConfigError(
                    f"{where}.{p.key}: a range needs a numeric key ({p.key} is {kind}); "
                    "list the choices instead"
                )
            if p.choices is None and kind == "int":
                for name in ("low", "high", "step"):
                    value = getattr(p, name)
                    if value is not None and not float(value).is_integer():
                        raise ConfigError(f"{where}.{p.key}.{name} must be an integer, got {value}")
            values = p.choices if p.choices is not None else (p.low, p.high)
            for value in values:
                _check_value(cfg, p, kind, value, where)

    def inapplicable(self, model_name: str) -> list[str]:
        """``model.*`` keys of the space that ``model_name`` does not use."""
        from ml.choices import MODEL_KEYS

        used = MODEL_KEYS[model_name] | {"name"}
        return [p.key for p in self.params if p.section == "model" and p.name not in used]

    def suggest(self, trial: optuna.Trial, cfg: Config) -> dict[str, Any]:
        """Sample one trial's values (``model.name`` first; keys its model ignores are
        skipped). Returns ``{SECTION.KEY: config value}``."""
        from ml.choices import MODEL_KEYS

        model = cfg.model.name
        values: dict[str, Any] = {}
        for p in sorted(self.params, key=lambda q: q.key != "model.name"):
            if p.section == "model" and p.name != "name" and p.name not in MODEL_KEYS[model]:
                continue
            kind = _kind(cfg, p, "tuning.space")
            if p.choices is not None:
                values[p.key] = decode(p, trial.suggest_categorical(p.key, p.labels()))
            elif kind == "int":
                assert p.low is not None and p.high is not None
                values[p.key] = trial.suggest_int(
                    p.key, int(p.low), int(p.high), step=int(p.step or 1), log=p.log
                )
            else:
                assert p.low is not None and p.high is not None
                values[p.key] = trial.suggest_float(
                    p.key, float(p.low), float(p.high), step=p.step, log=p.log
                )
            if p.key == "model.name":
                model = values[p.key]
        return values

    def defaults(self, cfg: Config) -> tuple[dict[str, Any], list[str]]:
        """The config's own values as Optuna parameters (trial 0), and the keys left out
        because the config's value lies outside the space (trial 0 still trains with
        them; the sampler sees that trial without those parameters)."""
        from ml.choices import MODEL_KEYS

        used = MODEL_KEYS[cfg.model.name] | {"name"}
        params: dict[str, Any] = {}
        outside: list[str] = []
        for p in self.params:
            if p.section == "model" and p.name not in used:
                continue
            value = getattr(getattr(cfg, p.section), p.name)
            if p.choices is not None:
                if label(value) in p.labels():
                    params[p.key] = label(value)
                    continue
            elif (
                isinstance(value, (int, float))
                and p.low is not None
                and p.high is not None
                and p.low <= value <= p.high
            ):
                params[p.key] = value
                continue
            outside.append(f"{p.key}={label(value)} (space {p.describe()})")
        return params, outside

    def values(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """Optuna parameters (a trial's ``params``) back to config values."""
        by_key = {p.key: p for p in self.params}
        return {k: decode(by_key[k], v) if k in by_key else v for k, v in params.items()}


def decode(p: SearchParam, value: Any) -> Any:
    """An Optuna categorical value back to the config value (JSON text to a list)."""
    if p.choices is not None:
        for choice in p.choices:
            if label(choice) == value:
                return list(choice) if isinstance(choice, tuple) else choice
    return value


def apply(cfg: Config, values: Mapping[str, Any]) -> Config:
    """``cfg`` with ``{SECTION.KEY: value}`` set (keys not in ``values`` keep their value)."""
    sections: dict[str, dict[str, Any]] = {}
    for key, value in values.items():
        section, name = key.split(".", 1)
        sections.setdefault(section, {})[name] = value
    return cfg.replace(**sections) if sections else cfg


def _kind(cfg: Config, p: SearchParam, where: str) -> str:
    """``int``, ``float``, ``str``, ``bool`` or ``list``: the type of the key's value."""
    section = getattr(cfg, p.section, None) if p.section in TUNABLE_SECTIONS else None
    hints = typing.get_type_hints(type(section)) if section is not None else {}
    if p.name not in hints or p.key in UNTUNABLE:
        tunable = sorted(
            f"{s}.{k}"
            for s in TUNABLE_SECTIONS
            for k in typing.get_type_hints(type(getattr(cfg, s)))
            if f"{s}.{k}" not in UNTUNABLE
        )
        raise ConfigError(f"{where}: unknown key {p.key!r}; tunable keys: {', '.join(tunable)}")
    tp = hints[p.name]
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        tp = next(a for a in typing.get_args(tp) if a is not type(None))
    if typing.get_origin(tp) is tuple:
        return "list"
    return {int: "int", float: "float", str: "str", bool: "bool"}[tp]


def _check_value(cfg: Config, p: SearchParam, kind: str, value: Any, where: str) -> None:
    if kind == "list":
        value = list(value) if isinstance(value, tuple) else value
    elif kind == "int" and isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, float) and not math.isfinite(value):
        raise ConfigError(f"{where}.{p.key}: {value} is not a finite number")
    try:
        # Validated as the config would be (an empty space stops the recursion).
        cfg.replace(tuning={"space": {}}, **{p.section: {p.name: value}})
    except ConfigError as exc:
        hint = (
            " (the choices of a list key are lists: [[64], [256, 128]])" if kind == "list" else ""
        )
        raise ConfigError(
            f"{where}.{p.key}: {label(value)!r} is not a valid value: {exc}{hint}"
        ) from None


@dataclass(frozen=True)
class TuningConfig:
    """The ``tuning`` section (see the module docstring)."""

    # val_auc (higher is better) or val_logloss (lower is better), on the validation split.
    metric: str = "val_auc"
    # Finished trials to reach (ctr-pipeline tune's default --trials).
    trials: int = 20
    space: SearchSpace = field(default_factory=SearchSpace)

    def check(self, cfg: Config, where: str = "tuning") -> None:
        from ml.choices import MONITORS

        if self.metric not in MONITORS:
            raise ConfigError(
                f"{where}.metric must be one of {tuple(MONITORS)}, got {self.metric!r}"
            )
        if self.trials < 1:
            raise ConfigError(f"{where}.trials must be >= 1, got {self.trials}")
        self.space.check(cfg, f"{where}.space")

    @property
    def direction(self) -> Literal["maximize", "minimize"]:
        """``maximize`` or ``minimize`` (Optuna's words) for the metric."""
        from ml.choices import MONITORS

        return "maximize" if MONITORS[self.metric] == "max" else "minimize"
