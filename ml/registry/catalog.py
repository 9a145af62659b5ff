"""Reading the registry: which versions exist, ``current``, references, one version's details.

Nothing here writes or locks. A version is *visible* when its directory is real and
holds ``MANIFEST.json``; listings get that from the index (``published-<stage>``, see
:mod:`ml.registry.index`) and ``stat`` only the directories the index does not list.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from ml.errors import IntegrityError, InvalidNameError, ModelNotFoundError
from ml.registry import _fs, index
from ml.registry.layout import (
    CURRENT,
    MANIFEST,
    METADATA,
    PRODUCTION,
    STAGES,
    STAGING,
    Layout,
    validate_name,
    validate_stage,
    version_number,
)
from ml.registry.provenance import lineage_digests


def visible_numbers(layout: Layout, stage: str, name: str) -> list[int]:
    """Numbers of the complete versions of ``name`` in ``stage``, ascending."""
    nums = layout.version_numbers(stage, name)
    if not nums:
        return nums
    listed = index.in_ranges(nums, index.published(layout, stage, name) or [])
    return [
        n
        for n, ok in zip(nums, listed, strict=True)
        if ok or layout.has_manifest(stage, name, f"v{n}")
    ]


def list_models(layout: Layout, stage: str = STAGING) -> dict[str, list[str]]:
    """Every model in ``stage`` with its visible versions, in numeric order."""
    out: dict[str, list[str]] = {}
    for name in layout.model_names(stage):
        nums = visible_numbers(layout, stage, name)
        if nums:
            out[name] = [f"v{n}" for n in nums]
    return out


def latest_version(layout: Layout, name: str, stage: str = STAGING) -> str:
    """The highest visible version of ``name`` in ``stage``.

    Raises:
        ModelNotFoundError: the model has no visible version in ``stage``.
    """
    for n in reversed(layout.version_numbers(stage, name)):
        # Only the top candidates are stat'ed, so this stays fast with many versions.
        if layout.has_manifest(stage, name, f"v{n}"):
            return f"v{n}"
    raise layout.model_not_found(name, stage)


def current_version(layout: Layout, name: str) -> str | None:
    """The version ``production/<name>/current`` points at, or None if there is none."""
    link = layout.current_link(name)
    layout.check_no_links(link.parent)
    try:
        target = os.readlink(link)
    except (FileNotFoundError, NotADirectoryError):
        return None
    except OSError as exc:  # EINVAL: a regular file/dir named current
        raise IntegrityError(
            f"{layout.display(link)} is not a symbolic link; remove it and promote a version again"
        ) from exc
    target = target.rstrip("/")
    if version_number(target) is None:
        # An absolute or ../ target would point outside the registry: never follow it.
        raise IntegrityError(
            f"{layout.display(link)} points at {target!r}, not at a version directory "
            f"beside it; promote a version again to repair it"
        )
    return target


def resolve(
    layout: Layout, name: str, ref: str = "latest", stage: str | None = None
) -> tuple[str, str]:
    """Turn ``ref`` (``'current'``, ``'latest'`` or ``'vN'``) into ``(stage, version)``."""
    validate_name(name)
    if ref == CURRENT:
        if stage not in (None, PRODUCTION):
            raise InvalidNameError(
                f"'current' exists only in production, not in {stage!r}; use 'latest' or "
                "a version such as 'v3' with --stage staging"
            )
        version = current_version(layout, name)
        if version is None:
            raise ModelNotFoundError(
                f"Model {name!r} has no current production version "
                f"({layout.display(layout.current_link(name))} is missing); "
                f"promote one with `ctr-pipeline registry promote {name} vN`"
            )
        layout.require_version(PRODUCTION, name, version)
        return PRODUCTION, version
    stage = validate_stage(stage or STAGING)
    if ref == "latest":
        return stage, latest_version(layout, name, stage)
    if not isinstance(ref, str) or version_number(ref) is None:
        raise InvalidNameError(
            f"invalid version reference {ref!r}: use 'current', 'latest' or a version such as 'v3'"
        )
    layout.require_version(stage, name, ref)
    return stage, ref


def read_json(layout: Layout, path: Path, what: str) -> dict[str, Any]:
    """A registry JSON file (manifest, metadata) as a mapping, or an IntegrityError."""
    fix = "run `ctr-pipeline registry verify` and restore or delete the version"
    try:
        data = json.loads(_fs.read_regular(path))
    except (OSError, ValueError) as exc:
        raise IntegrityError(f"cannot read {what} {layout.display(path)}: {exc}; {fix}") from exc
    if not isinstance(data, dict):
        raise IntegrityError(f"{layout.display(path)} is not a JSON object")
    return data


def show(
    layout: Layout, name: str, ref: str = "latest", stage: str | None = None
) -> dict[str, Any]:
    """Everything known about one version: metadata, files, stage and whether current."""
    stage, version = resolve(layout, name, ref, stage)
    vdir = layout.version_dir(stage, name, version)
    manifest = read_json(layout, vdir / MANIFEST, "manifest")
    return {
        "name": name,
        "version": version,
        "stage": stage,
        "path": str(vdir),
        "current": current_version(layout, name) == version if stage == PRODUCTION else False,
        "in_production": layout.has_manifest(PRODUCTION, name, version),
        "files": manifest.get("files", {}),
        "metadata": read_json(layout, vdir / METADATA, "metadata"),
    }


def _facts(layout: Layout, name: str, numbers: set[int]) -> dict[int, dict[str, Any]]:
    """Index lines for ``numbers``; versions without one are read from metadata.json."""
    facts = index.entries(layout, name, numbers)
    for n in sorted(numbers - set(facts)):
        for stage in STAGES:
            path = layout.version_dir(stage, name, f"v{n}") / METADATA
            try:
                facts[n] = index.entry(read_json(layout, path, "metadata"), f"v{n}")
                break
            except IntegrityError:
                continue
    return facts


def version_records(layout: Layout, name: str, *, last: int | None = None) -> list[dict[str, Any]]:
    """One record per visible version (either stage), oldest first, for ``registry list``.

    Each has ``version``, ``stages`` (``["staging", "production"]``...), ``current``,
    ``created_at``, ``test_auc``, ``test_logloss`` and the producing run (``dag_id``,
    ``run_id``, ``run_dir``). ``last`` keeps only the newest ``last`` versions.
    """
    validate_name(name)
    by_stage = {s: set(visible_numbers(layout, s, name)) for s in STAGES}
    numbers = sorted(by_stage[STAGING] | by_stage[PRODUCTION])
    if last is not None:
        numbers = numbers[-last:] if last > 0 else []
    current = current_version(layout, name)
    facts = _facts(layout, name, set(numbers))
    records = []
    for n in numbers:
        fact = facts.get(n, {})
        records.append(
            {
                "version": f"v{n}",
                "stages": [s for s in STAGES if n in by_stage[s]],
                "current": current == f"v{n}",
                **{k: fact.get(k) for k in ("created_at", "test_auc", "test_logloss")},
                **{k: fact.get(k) for k in ("dag_id", "run_id", "run_dir")},
            }
        )
    return records


def find_version(
    layout: Layout, name: str, *, data_digest: str, config_digest: str, code_digest: str
) -> str | None:
    """The newest visible version trained on this data, config and code, or None.

    The index narrows the search (lines containing the data digest); the candidate's
    own ``metadata.json`` confirms it, so a deleted version never matches. Versions the
    index lacks are read directly: those ``published-staging`` lists, or, in a registry
    without that file (written before it existed), every visible one.
    """
    validate_name(name)
    wanted = (data_digest, config_digest, code_digest)
    if not all(isinstance(d, str) and d for d in wanted):
        return None
    indexed, candidates = index.search(layout, name, data_digest)
    ranges = index.published(layout, STAGING, name)
    if ranges is None:  # no scan otherwise: this stays fast with many versions
        known = set(visible_numbers(layout, STAGING, name))
        known |= set(visible_numbers(layout, PRODUCTION, name))
    else:
        known = {n for lo, hi in ranges for n in range(lo, hi + 1)}
    candidates.update(_facts(layout, name, known - indexed))
    for n in sorted(candidates, reverse=True):
        fact = candidates[n]
        if (fact.get("data_digest"), fact.get("config_digest"), fact.get("code_digest")) != wanted:
            continue
        if _confirm(layout, name, f"v{n}", wanted):
            return f"v{n}"
    return None


def _confirm(layout: Layout, name: str, version: str, wanted: tuple[str, str, str]) -> bool:
    for stage in STAGES:
        if layout.has_manifest(stage, name, version):
            path = layout.version_dir(stage, name, version) / METADATA
            try:
                return lineage_digests(read_json(layout, path, "metadata")) == wanted
            except IntegrityError:
                continue
    return False
