from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from ml.config import FeatureSpec, load_config
from ml.data.importer.config_out import MARKER, base_config_path, features_block, write_config
from ml.errors import DataImportError

SPEC = FeatureSpec(label="label", categorical=("C1", "C2"), numeric=("I1",))


def test_features_block_is_pasteable_yaml() -> None:
    text = features_block(SPEC, "data/features/criteo")
    parsed = yaml.safe_load(text)
    assert parsed == {
        "features": {"label": "label", "categorical": ["C1", "C2"], "numeric": ["I1"]},
        "data": {"features_dir": "data/features/criteo"},
    }
    assert "categorical: [C1, C2]" in text


def test_write_config_changes_only_features_and_features_dir(project_home: Path) -> None:
    path = write_config("config/criteo.yaml", SPEC, "data/features/criteo", "day_0.txt")
    assert path == project_home / "config/criteo.yaml"
    text = path.read_text()
    assert text.startswith(MARKER + " from day_0.txt")
    cfg = load_config("config/criteo.yaml")
    base = load_config("config/model_config.yaml")
    assert cfg.features == SPEC and cfg.data.features_dir == "data/features/criteo"
    assert (
        cfg.replace(features=base.features.to_dict(), data={"features_dir": base.data.features_dir})
        == base
    )
    # Every comment of the shipped config survives.
    shipped = base_config_path().read_text()
    comments = [line.split("#", 1)[1] for line in shipped.splitlines() if "#" in line]
    kept = [c for c in comments if c in text]
    assert len(kept) >= len(comments) - 3  # the old features lines may carry comments


def test_write_config_replaces_only_its_own_files(project_home: Path) -> None:
    write_config("config/a.yaml", SPEC, "data/a", "x.csv")
    write_config("config/a.yaml", SPEC, "data/b", "x.csv")
    assert load_config("config/a.yaml").data.features_dir == "data/b"
    mine = project_home / "config/mine.yaml"
    mine.write_text("seed: 1\n")
    with pytest.raises(DataImportError, match="exists and was not written by"):
        write_config("config/mine.yaml", SPEC, "data/b", "x.csv")
    assert mine.read_text() == "seed: 1\n"


def test_write_config_unusual_layout_falls_back_to_a_plain_dump(project_home: Path) -> None:
    (project_home / "config/model_config.yaml").write_text(
        "features: {label: click, categorical: [a], numeric: []}\ndata: {min_frequency: 3}\n"
    )
    path = write_config("config/c.yaml", SPEC, "data/c", "x.csv")
    cfg = load_config(path)
    assert cfg.features == SPEC and cfg.data.features_dir == "data/c"
    assert cfg.data.min_frequency == 3
