"""The shipped config/model_config.yaml on small versions of every synthetic world, with
only the features and the paths changed (what a user does with their own data): it
trains, reports its vocabulary, and learns something on each. The full comparison with a
sweep and logistic regression per world and size is `make bench-full`
(benchmarks/bench_defaults.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from ml.config import load_config
from ml.data.generate.catalog import world_names, world_spec
from ml.data.generate.writer import generate_features
from ml.training.job import train

CHECKOUT = Path(__file__).resolve().parents[1]


#: The pairwise world's labels come from pairs of ids, which 6,000 rows (2 per user)
#: cannot reveal: no model learns it at this size (benchmarks/perf_families.py).
LEARNABLE_AT_6K = [w for w in world_names() if w != "pairwise"]


@pytest.mark.parametrize("world", LEARNABLE_AT_6K)
def test_shipped_defaults_learn_on_every_world(world: str, tmp_path: Path) -> None:
    data = tmp_path / "features"
    generate_features(data, rows=6000, seed=1, world=world)
    cfg = load_config(CHECKOUT / "config" / "model_config.yaml").replace(
        features=world_spec(world).to_dict(),
        data={"features_dir": str(data)},
        output={"runs_dir": str(tmp_path / "runs")},
        training={"epochs": 8, "num_threads": 1},  # a cap to keep the test short
    )
    lines: list[str] = []
    metrics = train(cfg, log=lines.append, progress=False).metrics
    assert metrics["test_auc"] > 0.55, (world, metrics["test_auc"])
    assert metrics["monitor"] == "val_logloss"
    assert set(metrics["vocabulary"]) == set(world_spec(world).categorical)
    assert any(line.startswith("Vocabulary (size, OOV share") for line in lines)
