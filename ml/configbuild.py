"""Strict building of the config's frozen dataclasses from parsed YAML.

Every key is checked against the dataclass's fields (an unknown one is an error naming
it and listing the allowed ones) and every value against its type hint (int, float,
str, bool, tuples of those, ``{str: value}`` mappings, optional values, nested dataclasses,
and value types that
parse themselves through ``from_config``/``to_config``, like the tuning space).
"""

from __future__ import annotations

import dataclasses
import types
import typing
from typing import Any, TypeVar

from ml.errors import ConfigError

T = TypeVar("T")


class AutoBool(str):
    """A tri-state key: ``auto``, ``true`` or ``false`` (the YAML booleans or the strings,
    any case); it records as ``auto`` or a boolean (``data.streaming``)."""

    CHOICES = ("auto", "true", "false")
    AUTO: AutoBool  # the default, set below

    @classmethod
    def from_config(cls, value: Any, where: str) -> AutoBool:
        text = str(value).lower() if isinstance(value, (bool, str)) else None
        if text not in cls.CHOICES:
            raise ConfigError(f"{where} must be auto, true or false, got {value!r}")
        return cls(text)

    def to_config(self) -> Any:
        return {"true": True, "false": False}.get(str(self), "auto")


AutoBool.AUTO = AutoBool("auto")


def build(cls: type[T], raw: Any, where: str) -> T:
    """An instance of dataclass ``cls`` from the mapping ``raw`` (``where`` names it)."""
    if not isinstance(raw, dict):
        raise ConfigError(f"{where} must be a mapping, got {type(raw).__name__}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(raw) - set(fields))
    if unknown:
        raise ConfigError(
            f"{where}: unknown key {unknown[0]!r}"
            + (f" (and {unknown[1:]})" if len(unknown) > 1 else "")
            + f"; allowed keys: {sorted(fields)}"
        )
    values = {
        name: coerce(hints[name], value, f"{where}.{name}" if where != "config" else name)
        for name, value in raw.items()
    }
    return cls(**values)


def coerce(tp: Any, value: Any, where: str) -> Any:
    """``value`` checked against (and converted to) the type hint ``tp``."""
    origin = typing.get_origin(tp)
    if hasattr(tp, "from_config"):  # a value type that parses itself (tuning.space)
        return tp.from_config(value, where)
    if dataclasses.is_dataclass(tp):
        return build(tp, value, where)  # type: ignore[arg-type]
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        (inner,) = [a for a in args if a is not type(None)]
        return coerce(inner, value, where)
    if origin is dict:
        (key_tp, inner) = typing.get_args(tp)
        if not isinstance(value, dict):
            raise ConfigError(f"{where} must be a mapping such as {{name: value}}, got {value!r}")
        bad = [k for k in value if not isinstance(k, key_tp)]
        if bad:
            raise ConfigError(f"{where}: key {bad[0]!r} must be a {key_tp.__name__}")
        return {k: coerce(inner, v, f"{where}.{k}") for k, v in value.items()}
    if origin is tuple:
        (inner, _) = typing.get_args(tp)
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where} must be a list, got {value!r}")
        return tuple(coerce(inner, v, f"{where}[{i}]") for i, v in enumerate(value))
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{where} must be a number, got {value!r}")
        return float(value)
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where} must be an integer, got {value!r}")
        return value
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"{where} must be a string, got {value!r}")
        return value
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{where} must be true or false, got {value!r}")
        return value
    raise TypeError(f"unsupported config type {tp!r} at {where}")  # internal invariant


def to_plain(obj: Any) -> Any:
    """Plain lists and dicts of a config value (tuples become lists)."""
    if hasattr(obj, "to_config"):
        return obj.to_config()
    if isinstance(obj, dict):
        return {k: to_plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_plain(v) for v in obj]
    return obj
