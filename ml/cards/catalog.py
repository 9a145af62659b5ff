"""What the Models page shows, as JSON-able records read through the registry's API.

Only public :class:`~ml.registry.model_registry.ModelRegistry` calls (``list_models``,
``list_versions``, ``show``, ``current_version``, ``history``), so the page stays a view
of the registry and never a second implementation of it.
"""

from __future__ import annotations

from typing import Any

from ml.cards.files import CACHE_DIR, CARD_HTML
from ml.cards.links import card_page
from ml.errors import CtrPipelineError

#: Versions listed per model on the page (newest first); the JSON takes ``?last=``.
PAGE_VERSIONS = 30


def _stages() -> tuple[str, str]:
    from ml.registry.layout import PRODUCTION, STAGING

    return STAGING, PRODUCTION


def model_names(registry: Any) -> list[str]:
    """Every model with a version in staging or production, sorted."""
    names: set[str] = set()
    for stage in _stages():
        names.update(registry.list_models(stage))
    return sorted(names)


def _number(version: str) -> int:
    return int(version[1:]) if version[1:].isdigit() else 0


def version_record(registry: Any, name: str, version: str, current: str | None) -> dict[str, Any]:
    """One version's row: stages, ``current``, metrics, creation, producing run, card."""
    staging, production = _stages()
    stages = [s for s in (staging, production) if version in registry.list_versions(name, s)]
    info = registry.show(name, version, stages[0] if stages else staging)
    meta = info["metadata"]
    metrics = meta.get("metrics") if isinstance(meta.get("metrics"), dict) else {}
    source = meta.get("source") if isinstance(meta.get("source"), dict) else {}
    has_card = CARD_HTML in (info.get("files") or {})
    return {
        "version": version,
        "stages": stages,
        "current": version == current,
        "created_at": meta.get("created_at"),
        "created_by": meta.get("created_by"),
        "test_auc": (metrics or {}).get("test_auc"),
        "test_logloss": (metrics or {}).get("test_logloss"),
        "test_accuracy": (metrics or {}).get("test_accuracy"),
        "model": (metrics or {}).get("model"),
        "dag_id": (source or {}).get("dag_id"),
        "run_id": (source or {}).get("run_id"),
        "run_dir": (source or {}).get("run_dir"),
        "card": "in version" if has_card else f"rendered on demand into {CACHE_DIR}/",
        "card_page": card_page(name, version),
    }


def version_records(registry: Any, name: str, *, last: int | None = None) -> list[dict[str, Any]]:
    """Rows of ``name``'s versions, newest first (``last``: only that many)."""
    staging, production = _stages()
    versions = set(registry.list_versions(name, staging)) | set(
        registry.list_versions(name, production)
    )
    if not versions:
        registry.get_latest_version(name)  # raises the registry's not-found error
    ordered = sorted(versions, key=_number, reverse=True)
    if last is not None:
        ordered = ordered[:last]
    current = registry.current_version(name)
    return [version_record(registry, name, v, current) for v in ordered]


def model_summary(registry: Any, name: str) -> dict[str, Any]:
    """``{"name", "current", "versions", "latest", "production_versions"}``."""
    staging, production = _stages()
    versions = sorted(registry.list_versions(name, staging), key=_number)
    return {
        "name": name,
        "current": registry.current_version(name),
        "versions": len(versions),
        "latest": versions[-1] if versions else None,
        "production_versions": sorted(registry.list_versions(name, production), key=_number),
    }


def history(registry: Any, name: str, *, last: int | None = None) -> list[dict[str, Any]]:
    """Registrations, promotions, rollbacks and deletes of ``name``, newest first."""
    events = list(reversed(registry.history(name)))
    return events[:last] if last is not None else events


def version_of_dag_run(registry: Any, dag_id: str, run_id: str) -> tuple[str, str] | None:
    """``(model name, version)`` a DAG run registered: from its run summary, else by
    searching the versions' recorded producers (newest first)."""
    from ml.pipeline.summary import read_summary

    try:
        summary = read_summary(dag_id, run_id) or {}
    except CtrPipelineError:
        summary = {}
    name, version = summary.get("model_name"), summary.get("model_version")
    if isinstance(name, str) and isinstance(version, str):
        staging, _ = _stages()
        if version in registry.list_versions(name, staging):
            return name, version
    for model in model_names(registry):
        for record in version_records(registry, model, last=PAGE_VERSIONS):
            if record["dag_id"] == dag_id and record["run_id"] == run_id:
                return model, str(record["version"])
    return None
