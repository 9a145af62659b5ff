"""The feature pipeline's steps: (re)generate the synthetic features, then publish them.

``generate`` writes the default synthetic directory, or the location it is given (a path
or a bucket URL such as ``s3://bucket/features/v1``); the generator itself refuses a
directory or prefix holding data it did not write, so a user's own files there are never
replaced. ``publish`` validates what was written (in place, also in a bucket) and returns
the Asset event's extra.
"""

from __future__ import annotations

import logging
from typing import Any

from ml.config import load_config
from ml.data.layout import features_location
from ml.fsutil import display_path

log = logging.getLogger("ml.pipeline")


def generate(rows: int, seed: int, out: str | None = None) -> dict[str, Any]:
    """(Re)generate a features directory atomically.

    Args:
        out: where: a path (relative: against the base directory) or a URL
            (``s3://bucket/features/v1``: the splits are uploaded, ``schema.json`` last);
            None: the default ``data/features/v1``.

    Returns:
        ``{"features_path", "rows"}``.

    Raises:
        GenerationError: bad arguments, or the directory holds data the generator did
            not write.
    """
    from ml.data.generate.writer import describe, generate_features

    target = features_location(out)
    log.info("🏭 Generating %d rows (seed %d) into %s", rows, seed, display_path(target))
    report = generate_features(target, rows=rows, seed=seed, overwrite=True)
    for line in describe(report):
        log.info(line)
    return {"features_path": display_path(target), "rows": int(sum(report["rows"].values()))}


def publish(features_path: str | None, config_path: str) -> dict[str, Any]:
    """Validate the features; return the Asset event's extra (path, rows, digest).

    Raises:
        FeatureValidationError: the features do not match the config.
    """
    from ml.data.lineage import fingerprint
    from ml.data.validate import validate_features

    cfg = load_config(config_path)
    target = features_location(features_path)
    shown = display_path(target)
    report = validate_features(target, cfg.features, numeric_nan=cfg.data.numeric_nan)
    for line in report.lines():
        log.info(line)
    digest = str(fingerprint(target, cfg.features)["digest"])
    rows = sum(s.rows for s in report.splits.values())
    log.info("📦 Features saved: %s (digest %s)", shown, digest[:12])
    uri = target if isinstance(target, str) else target.as_uri()  # a URL is its own URI
    return {"features_path": shown, "uri": uri, "rows": rows, "digest": digest}
