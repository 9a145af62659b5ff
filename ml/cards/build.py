"""Build model cards: for a run being registered, or later for an existing version.

At registration the card is prepared from the run directory (plots and numbers, the
slow part) *before* the registry publishes anything, then rendered for the version
number inside ``register(..., extra_files=card.files)`` (string formatting only), so
the card files are covered by the version's manifest and published with it, atomically.

A version registered before cards existed gets one rendered on demand into a cache
outside the immutable version: ``<registry>/.cards/<name>/<version>/`` (for a registry in
a bucket, under ``$CTR_PIPELINE_HOME/.cache``: ``registry.cache_dir``).
"""

from __future__ import annotations

import logging
import os
import shutil
import uuid
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from ml import paths
from ml.cards import files as cf
from ml.cards import plots
from ml.cards.content import CardInputs, card_content
from ml.cards.files import CACHE_DIR, CARD_HTML, CARD_MD
from ml.cards.predictions import Predictions, predictions_for_card, score_model_on
from ml.cards.render import html_page, markdown
from ml.errors import CardError, CtrPipelineError
from ml.fsutil import atomic_write_bytes, read_json_object, utc_now
from ml.metrics import calibration_table
from ml.registry.layout import METADATA, MODEL_FILE
from ml.training import run_dir as rd

log = logging.getLogger(__name__)

_CACHE_STAMP = "source.json"


@dataclass
class PreparedCard:
    """A card with its numbers and plots computed, waiting for its version number."""

    inputs: CardInputs
    content: dict[str, Any]
    images: dict[str, bytes] = field(default_factory=dict)

    def files(self, version: str) -> dict[str, bytes]:
        """The card's files for ``version`` (quick: the registry calls it under its lock).

        A rendering problem leaves the version without a card (logged), never
        unregistered.
        """
        content = {**self.content, "version": version}
        try:
            return {
                CARD_MD: markdown(content, list(self.images)).encode(),
                CARD_HTML: html_page(content, self.images).encode(),
                **self.images,
            }
        except (KeyError, TypeError, ValueError) as exc:
            log.warning(
                "⚠️  Model card of %s not rendered: %r (registering without one)", version, exc
            )
            return {}


def make_plots(preds: Predictions | None, metrics: dict[str, Any]) -> dict[str, bytes]:
    """The PNG plots (ROC, PR, calibration, scores from ``preds``; training from history)."""
    images: dict[str, bytes] = {}
    if preds is not None and 0 < preds.labels.sum() < preds.rows:
        label = f"production {preds.production_version}"
        prod = preds.production_scores
        images[cf.PLOT_ROC] = plots.roc_png(preds.labels, preds.scores, prod, label)
        images[cf.PLOT_PR] = plots.pr_png(preds.labels, preds.scores, prod, label)
        images[cf.PLOT_CALIBRATION] = plots.calibration_png(
            calibration_table(preds.labels, preds.scores),
            calibration_table(preds.labels, prod) if prod is not None else None,
            calibration_table(preds.labels, preds.raw_scores)
            if preds.raw_scores is not None
            else None,
        )
        images[cf.PLOT_SCORES] = plots.scores_png(preds.labels, preds.scores)
    history = metrics.get("history")
    if isinstance(history, list) and history:
        images[cf.PLOT_TRAINING] = plots.training_png(history, metrics.get("best_epoch"))
    return images


def prepare(inputs: CardInputs) -> PreparedCard:
    """Compute a card's content and plots (the slow part, done once)."""
    from threadpoolctl import threadpool_limits

    # One BLAS/OpenMP thread: small vectors, and a busy machine makes extra threads slower.
    with threadpool_limits(1):
        return _prepare(inputs)


def _prepare(inputs: CardInputs) -> PreparedCard:
    if inputs.predictions is not None and inputs.predictions.labels.sum() in (
        0,
        inputs.predictions.rows,
    ):
        inputs = replace(
            inputs,
            predictions=None,
            predictions_note="the test split holds only one class, so AUC is undefined",
        )
    return PreparedCard(
        inputs, card_content(inputs, "?"), make_plots(inputs.predictions, inputs.metrics)
    )


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise CardError(f"{path} cannot be read ({exc})") from exc


def _size(path: Path) -> int | None:
    try:
        return path.stat().st_size
    except OSError:
        return None


def prepare_run_card(
    run_dir: str | os.PathLike[str],
    model_name: str,
    *,
    registry: Any = None,
    evaluation: dict[str, Any] | None = None,
    evaluation_note: str | None = None,
) -> PreparedCard:
    """A card for a complete training run about to be registered as ``model_name``.

    Uses the run's ``test_predictions.npz`` (written by the pipeline's evaluate step), or
    scores its recorded test split again (and production's current version, when
    ``registry`` has one); without either the card says why.

    Raises:
        CardError / TrainingError: the run's metrics or config cannot be read.
    """
    root = paths.resolve(run_dir)
    metrics = rd.read_metrics(root)
    lineage = rd.read_run_info(root) if (root / rd.RUN_JSON).is_file() else {}
    predictions = predictions_for_card(root, registry=registry, model_name=model_name)
    inputs = _inputs(
        root / rd.MODEL_BEST,
        predictions,
        name=model_name,
        metrics=metrics,
        lineage=lineage,
        run_dir=str(root),
        evaluation=evaluation,
        evaluation_note=evaluation_note,
    )
    return prepare(inputs)


def _inputs(
    model_file: Path, predictions: tuple[Predictions | None, str | None], **fields: Any
) -> CardInputs:
    """The inputs of a card for the model in ``model_file``, beside which lies its
    ``config.yaml`` (a run's or a registered version's files)."""
    return CardInputs(
        config_text=_read_text(model_file.parent / rd.CONFIG_YAML),
        built_at=utc_now(),
        predictions=predictions[0],
        predictions_note=predictions[1],
        model_bytes=_size(model_file),
        **fields,
    )


def try_prepare_run_card(
    run_dir: str | os.PathLike[str], model_name: str, **kwargs: Any
) -> PreparedCard | None:
    """:func:`prepare_run_card`, or None (logged) when it fails: a card problem never
    stops a registration; ``registry card`` can render the card later."""
    try:
        return prepare_run_card(run_dir, model_name, **kwargs)
    except (CtrPipelineError, OSError, ValueError, RuntimeError) as exc:
        log.warning("⚠️  No model card for %s: %s (registering without one)", run_dir, exc)
        return None


# --- cards of existing versions --------------------------------------------------------


def version_card_dir(registry: Any, name: str, version: str) -> Path:
    """Where a version's card lives: in the version when it has one, else the cache.

    Renders the card into the cache first when neither exists.

    Raises:
        NotFoundError: no such version (from the registry).
        CardError: the version's files cannot be read.
    """
    stage, vdir = _version_dir(registry, name, version)
    if (vdir / CARD_HTML).is_file():
        return vdir
    cache = Path(registry.cache_dir(CACHE_DIR)) / name / version
    stamp = _manifest_stamp(vdir)
    if (cache / CARD_HTML).is_file() and _cached_stamp(cache) == stamp:
        return cache
    card = prepare_version_card(registry, name, version, stage, vdir)
    _write_cache(cache, card.files(version), stamp)
    return cache


def _version_dir(registry: Any, name: str, version: str) -> tuple[str, Path]:
    from ml.registry.layout import PRODUCTION, STAGING

    for stage in (STAGING, PRODUCTION):
        if version in registry.list_versions(name, stage):
            return stage, Path(registry.path_of(name, version, stage))
    return STAGING, Path(registry.path_of(name, version, STAGING))  # raises not found


def _manifest_stamp(vdir: Path) -> str:
    from ml.fsutil import sha256_file

    return sha256_file(vdir / "MANIFEST.json")[0]


def _cached_stamp(cache: Path) -> str | None:
    try:
        return str(read_json_object(cache / _CACHE_STAMP).get("manifest_sha256"))
    except CtrPipelineError:
        return None


def _write_cache(cache: Path, files: dict[str, bytes], stamp: str) -> None:
    """Publish the cache directory in one rename (concurrent renderers: last one wins)."""
    import json

    cache.parent.mkdir(parents=True, exist_ok=True)
    tmp = cache.parent / f".tmp-{cache.name}-{uuid.uuid4().hex[:8]}"
    tmp.mkdir()
    try:
        for fname, data in files.items():
            atomic_write_bytes(tmp / fname, data)
        atomic_write_bytes(tmp / _CACHE_STAMP, json.dumps({"manifest_sha256": stamp}).encode())
        if cache.exists():
            shutil.rmtree(cache, ignore_errors=True)
        os.replace(tmp, cache)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def prepare_version_card(
    registry: Any, name: str, version: str, stage: str, vdir: Path
) -> PreparedCard:
    """A card for a registered version from its own files (metrics, config, metadata),
    scoring its model on the test split it recorded when that split still exists."""
    meta = read_json_object(vdir / METADATA, what="version metadata", error=CardError)
    metrics = read_json_object(vdir / rd.METRICS_JSON, what="version metrics", error=CardError)
    training = meta.get("training") if isinstance(meta.get("training"), dict) else {}
    source = meta.get("source") if isinstance(meta.get("source"), dict) else {}
    lineage = {
        **(training or {}),
        "features_dir": meta.get("features_dir"),
        "data_fingerprint": meta.get("data_fingerprint"),
        "code_version": meta.get("code_version"),
        "dag_id": (source or {}).get("dag_id"),
        "run_id": (source or {}).get("run_id"),
    }
    predictions = _score_version(registry, name, version, stage, meta.get("features_dir"))
    libraries = meta.get("libraries") if isinstance(meta.get("libraries"), dict) else {}
    inputs = _inputs(
        vdir / MODEL_FILE,
        predictions,
        name=name,
        metrics=metrics,
        lineage=lineage,
        run_dir=(source or {}).get("run_dir"),
        evaluation_note="this version was registered before model cards; its gate results "
        "were not recorded",
        origin=f"rendered later from {version}'s registered files",
        libraries={str(k): v for k, v in (libraries or {}).items()},
    )
    card = prepare(inputs)
    if inputs.predictions is not None:
        card.content["production"] = {
            "note": "the production model at registration time was not recorded"
        }
    return card


def _score_version(
    registry: Any, name: str, version: str, stage: str, features_dir: Any
) -> tuple[Predictions | None, str | None]:
    from ml.data.layout import split_file

    if not features_dir:
        return None, "the version records no features directory"
    features = paths.location(str(features_dir))
    if not split_file(features, "test").is_file():
        return None, f"its test split ({split_file(features, 'test')}) is gone"
    try:
        predictor = registry.load(name, version, stage)
        return score_model_on(predictor, features), None
    except (CtrPipelineError, OSError, ValueError, RuntimeError) as exc:
        return None, f"scoring its test split failed: {exc}"
