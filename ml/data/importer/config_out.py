"""The ``features:`` block to paste into a config, or a whole config written for the data.

:func:`write_config` copies the shipped ``config/model_config.yaml`` (the base directory's,
else the checkout's) and changes only ``features`` and ``data.features_dir``, keeping
every other line and comment. The file starts with a marker line; an existing file
without it (a user's config) is never replaced.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import yaml

from ml import paths
from ml.config import Config, FeatureSpec, config_from_dict
from ml.errors import DataImportError
from ml.fsutil import atomic_write_text, display_path

MARKER = "# Written by `ctr-pipeline data import`"
_HASH_KEY = re.compile(r"^\s+hash_buckets\s*:")
_TOP_KEY = re.compile(r"^[A-Za-z_][\w-]*\s*:")


def features_block(spec: FeatureSpec, features_dir: str) -> str:
    """YAML for the config: the ``features`` section and ``data.features_dir``."""
    features = yaml.safe_dump(
        {"features": spec.to_dict()}, default_flow_style=None, sort_keys=False, width=88
    )
    return features + f"data:\n  features_dir: {_scalar(features_dir)}\n"


def _scalar(value: str) -> str:
    return yaml.safe_dump(value, default_style=None).splitlines()[0]


def base_config_path() -> Path:
    """The config to start from: the base directory's default config, else the checkout's."""
    local = paths.resolve(paths.DEFAULT_CONFIG)
    if local.is_file():
        return local
    return Path(__file__).resolve().parents[3] / paths.DEFAULT_CONFIG


def write_config(
    path: str | os.PathLike[str], spec: FeatureSpec, features_dir: str, source: str
) -> Path:
    """Write a config for the imported data at ``path`` (relative: the base directory).

    Raises:
        DataImportError: ``path`` exists and was not written by this command, or the base
            config cannot be read.
    """
    target = paths.resolve(path)
    if target.exists() and not target.read_text(errors="replace").startswith(MARKER):
        raise DataImportError(
            f"config file {display_path(target)} exists and was not written by `ctr-pipeline "
            "data import`; it is never replaced: choose another --write-config path"
        )
    base = base_config_path()
    try:
        text = base.read_text(encoding="utf-8")
    except OSError as exc:
        raise DataImportError(f"cannot read the base config {base}: {exc}") from exc
    header = (
        f"{MARKER} from {source}: {display_path(base)} with only `features` and "
        "`data.features_dir` changed.\n"
    )
    atomic_write_text(target, header + _edit(text, spec, features_dir))
    return target


def _edit(text: str, spec: FeatureSpec, features_dir: str) -> str:
    """``text`` with the features section and data.features_dir replaced (comments kept)."""
    wanted = _expected(text, spec, features_dir)
    try:
        edited = _replace_data_dir(_replace_features(text.splitlines(), spec), features_dir)
        result = "\n".join(edited) + "\n"
        if config_from_dict(yaml.safe_load(result)) == wanted:
            return result
    except (ValueError, StopIteration, yaml.YAMLError):
        pass
    return wanted.to_yaml()  # an unusual layout: a plain dump (loses comments)


def _expected(text: str, spec: FeatureSpec, features_dir: str) -> Config:
    cfg = config_from_dict(yaml.safe_load(text))
    return cfg.replace(features=spec.to_dict(), data={"features_dir": features_dir})


def _replace_features(lines: list[str], spec: FeatureSpec) -> list[str]:
    start = next(i for i, line in enumerate(lines) if re.match(r"^features\s*:", line))
    end = start + 1
    while end < len(lines) and not _TOP_KEY.match(lines[end]):
        end += 1
    while end > start + 1 and (not lines[end - 1].strip() or lines[end - 1].startswith("#")):
        end -= 1
    block = yaml.safe_dump(
        {"features": spec.to_dict()}, default_flow_style=None, sort_keys=False, width=88
    ).splitlines()
    if not spec.hash_buckets:  # keep the template's (empty) hash_buckets and its comments
        block += _hash_buckets_lines(lines[start:end])
    return [*lines[:start], *block, *lines[end:]]


def _hash_buckets_lines(section: list[str]) -> list[str]:
    """The ``hash_buckets:`` line of a features section and the comment lines under it."""
    at = next((i for i, line in enumerate(section) if _HASH_KEY.match(line)), None)
    if at is None:
        return []
    end = at + 1
    while end < len(section) and section[end].lstrip().startswith("#"):
        end += 1
    return section[at:end]


def _replace_data_dir(lines: list[str], features_dir: str) -> list[str]:
    start = next(i for i, line in enumerate(lines) if re.match(r"^data\s*:", line))
    for i in range(start + 1, len(lines)):
        if _TOP_KEY.match(lines[i]):
            break
        match = re.match(r"^(\s+features_dir\s*:\s*)(\S+)(\s*#.*)?$", lines[i])
        if match:
            lines[i] = f"{match.group(1)}{_scalar(features_dir)}{match.group(3) or ''}"
            return lines
    return [*lines[: start + 1], f"  features_dir: {_scalar(features_dir)}", *lines[start + 1 :]]
