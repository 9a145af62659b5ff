"""ml.training.prepare: encoding, the vocabulary report, the model for the vocabularies."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from ml.config import Config
from ml.training.prepare import build, encode_splits, vocabulary_report


def test_encode_splits_fits_on_train_and_encodes_each_split(
    cfg: Config, features_dir: Path
) -> None:
    pre, splits = encode_splits(cfg, features_dir, torch.device("cpu"), None, ("train", "val"))
    assert set(splits) == {"train", "val"}
    # Every categorical column, then one bin field per numeric column (data.numeric_bins).
    assert splits["train"].n_cat == len(cfg.features.categorical) + len(cfg.features.numeric)
    assert pre.field_names[-1] == f"{cfg.features.numeric[-1]}#bin"
    assert splits["val"].n_num == len(cfg.features.numeric)
    lines: list[str] = []
    report = vocabulary_report(pre, splits, 0.0, lines.append)
    assert report["device_type"]["vocab_size"] == 4 and report["device_type"]["oov_val"] == 0.0
    assert lines[0].startswith("Vocabulary (size, OOV share train/val): user_id ")
    # max_oov_share 0: every field with any OOV row is warned about, naming the fix.
    assert any(ln.startswith("⚠️  user_id:") and "data.min_frequency" in ln for ln in lines)
    model, args = build(cfg, pre, torch.device("cpu"), base_rate=0.25)
    assert args["vocab_sizes"] == pre.vocab_sizes and args["cross_layers"] == 1
    assert float(model.output_bias.detach()) == pytest.approx(-1.0986, abs=1e-4)  # logit(0.25)
    assert model(*splits["val"].unpack(splits["val"].data[:5])[:2]).shape == (5,)
