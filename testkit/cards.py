"""A base directory with two pipeline-registered versions, for the model-card and plugin
tests (built once per test session, shared read-only; copy it to change it).

Run A (1 epoch) is registered as ``ctr_model v1`` and promoted; run B (3 epochs, with
the baseline gate measured) as ``v2``, with v1 as production at registration time. Both
go through ``ml.pipeline.steps``, so both carry the card the pipeline adds.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from testkit.airflow import small_config

CHECKOUT = Path(__file__).resolve().parent.parent
LOOSE = {"min_auc": 0.0, "min_accuracy": 0.0, "max_auc_drop": 1.0}


@dataclass(frozen=True)
class CardHome:
    home: Path
    run_a: Path
    run_b: Path

    @property
    def registry_dir(self) -> Path:
        return self.home / "models"

    def copy_to(self, dest: Path) -> CardHome:
        """A copy a test may change (run paths stay the originals')."""
        shutil.copytree(self.home, dest, symlinks=True)
        return CardHome(dest, self.run_a, self.run_b)


_BUILT: dict[str, CardHome] = {}


def _pipeline(run_id: str, day: int, **params: object) -> str:
    from ml.pipeline import steps
    from ml.pipeline.params import Params, PipelineRun

    p = Params.from_mapping({"config_path": "config/small.yaml", **LOOSE, **params})
    when = datetime(2024, 11, day, tzinfo=timezone.utc)
    run = PipelineRun("training_pipeline", run_id, when, when)
    features = steps.validate(p, run)["features_path"]
    run_dir = steps.train(p, run, features)["run_dir"]
    metrics = steps.evaluate(p, run, run_dir)["metrics"]
    steps.register(p, run, run_dir, metrics)
    return str(run_dir)


def card_home(base: Path, features: Path) -> CardHome:
    """The shared home under ``base`` (built on the first call of the session)."""
    if "home" in _BUILT:
        return _BUILT["home"]
    home = base / "home"
    shutil.copytree(CHECKOUT / "config", home / "config")
    shutil.copytree(features, home / "data" / "features" / "v1")
    (home / "config" / "small.yaml").write_text(small_config(epochs=1))
    saved = {k: os.environ.get(k) for k in ("CTR_PIPELINE_HOME", "AIRFLOW__API__BASE_URL")}
    os.environ["CTR_PIPELINE_HOME"] = str(home)
    os.environ.pop("AIRFLOW__API__BASE_URL", None)
    try:
        a = _pipeline("manual__a", 1, auto_promote=True, baseline_tolerance=None)
        b = _pipeline("manual__b", 2, epochs=3, baseline_tolerance=1.0)
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    _BUILT["home"] = CardHome(home, home / a, home / b)
    return _BUILT["home"]
