"""What a registered version carries besides the run's files: the training data's profile
(the drift check's reference) and the model card, both added through the registry's
``extra_files`` before the version is published; and the card's path and UI link.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from ml.fsutil import display_path

log = logging.getLogger("ml.pipeline")


def extra_files(profile: dict[str, bytes], card: Any) -> Any:
    """The files added to the version before it is published: the training data's profile
    (the drift check's reference) and the model card, which names the version."""
    if card is None:
        return profile
    return lambda version: {**profile, **card.files(version)}


def prepare_card(model_name: str, run_dir: Path, registry: Any, metrics: dict[str, Any]) -> Any:
    """The model card, computed before the version is published (None: logged why)."""
    from ml.cards.build import try_prepare_run_card

    return try_prepare_run_card(run_dir, model_name, registry=registry, evaluation=metrics)


def card_path(version_dir: str | Path) -> str | None:
    """Where the version's model card is (a path shown relative to the base directory, or
    a URL for a registry in a bucket); None when it has none."""
    from ml import paths
    from ml.cards.files import CARD_HTML
    from ml.storage import transfer
    from ml.storage.url import is_url

    if is_url(version_dir):
        card: str | Path = transfer.join(str(version_dir), CARD_HTML)
    else:
        card = paths.resolve(version_dir) / CARD_HTML
    if not transfer.exists(card):
        return None
    log.info("🪪 Model card: %s", display_path(card))
    return display_path(card)


def card_link(model_name: str, version: str | None) -> str:
    """``\n   Model card: <url>`` when the Airflow UI's base URL is configured."""
    from ml.cards.links import card_url

    url = card_url(model_name, version) if version else None
    return f"\n   Model card: {url}" if url else ""


def save_test_predictions(model_name: str, run_dir: Path, features: Any, location: str) -> None:
    """The model card's test predictions (this model's and production's scores), uploaded
    beside the run when it lives in a bucket (``location`` its URL)."""
    from ml.cards.predictions import save_run_predictions
    from ml.registry.model_registry import ModelRegistry
    from ml.training.remote_run import RemoteRun, is_remote

    saved = save_run_predictions(run_dir, features, registry=ModelRegistry(), model_name=model_name)
    if saved is not None and is_remote(location):
        RemoteRun(location).push(saved.name)
