"""ml.training.checkpoint: the one loader, safe on untrusted files."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest
import torch

from ml.errors import CheckpointError
from ml.training import checkpoint as ck


def _good() -> dict[str, object]:
    return ck.best_checkpoint(
        {"model_name": "logreg", "model_args": {}, "preprocessor": {}},
        {"w": torch.zeros(1)},
        epoch=3,
        monitor="val_auc",
        value=0.7,
    )


def test_save_and_load_round_trip(tmp_path: Path) -> None:
    ck.save_checkpoint(tmp_path / "model_best.pt", _good())
    loaded = ck.load_checkpoint(tmp_path)  # a directory finds its model_best.pt
    assert loaded["epoch"] == 3 and loaded["monitor"] == "val_auc"
    assert loaded["format_version"] == ck.FORMAT_VERSION


def test_checkpoint_path_in_a_registered_version_dir(tmp_path: Path) -> None:
    ck.save_checkpoint(tmp_path / "model.pt", _good())
    assert ck.checkpoint_path(tmp_path) == tmp_path / "model.pt"
    (tmp_path / "other.pt").write_bytes(b"x")
    with pytest.raises(CheckpointError, match="more than one"):
        ck.checkpoint_path(tmp_path)


def test_load_refuses_a_pickle_with_code(tmp_path: Path) -> None:
    class Evil:
        def __reduce__(self) -> tuple[object, tuple[str]]:
            return (print, ("pwned",))

    path = tmp_path / "model_best.pt"
    path.write_bytes(pickle.dumps({"x": Evil()}, protocol=2))
    with pytest.raises(CheckpointError, match="not a readable checkpoint"):
        ck.load_checkpoint(path)


def test_load_names_missing_keys_and_unknown_versions(tmp_path: Path) -> None:
    path = tmp_path / "model_best.pt"
    torch.save({"format_version": 1}, path)
    with pytest.raises(CheckpointError, match="missing checkpoint key"):
        ck.load_checkpoint(path)
    torch.save({**_good(), "format_version": 99}, path)
    with pytest.raises(CheckpointError, match="format_version 99"):
        ck.load_checkpoint(path)
    with pytest.raises(CheckpointError, match="does not exist"):
        ck.load_checkpoint(tmp_path / "nope.pt")
