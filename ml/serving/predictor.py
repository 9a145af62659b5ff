"""Score raw feature rows with a trained checkpoint.

``Predictor.load(path)`` needs nothing but the checkpoint (``ml.training.checkpoint``): it
rebuilds the model from ``model_name`` + ``model_args``, loads the weights and the fitted
preprocessing, all with ``torch.load(..., weights_only=True)`` (no pickled code runs).
``predict_proba(df)`` takes a DataFrame of raw feature columns as they appear in the parquet data:

- a category never seen in training (or seen too rarely) maps to the OOV bucket;
- a missing numeric value (NaN, None, inf) becomes the train mean;
- a missing feature column is an error naming it; extra columns are ignored.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
import torch
from torch import nn

from ml.config import FeatureSpec
from ml.data.preprocessing import Preprocessor
from ml.errors import CheckpointError
from ml.models import build_model
from ml.training.calibration import apply_calibration
from ml.training.checkpoint import checkpoint_path, load_checkpoint

#: Rows per forward pass: cache-sized, as ml.training.trainer.EVAL_BATCH_SIZE (2.2x the
#: rows/s of 65,536-row batches on a 2-core CPU).
PREDICT_BATCH_SIZE = 4096


class Predictor:
    """A model plus its fitted preprocessing, ready to score raw rows.

    Attributes:
        model: the ``nn.Module`` in eval mode.
        preprocessor: vocabularies and scaling fitted on the training split.
        metadata: the checkpoint's other fields (``model_name``, ``epoch``, ``val_auc``,
            ``config``...), without the weights.
        path: where it was loaded from (None when built in memory).
    """

    def __init__(
        self,
        model: nn.Module,
        preprocessor: Preprocessor,
        *,
        metadata: dict[str, Any] | None = None,
        device: str | torch.device = "cpu",
        path: Path | None = None,
    ) -> None:
        self.device = torch.device(device)
        self.model = model.to(self.device).eval()
        self.preprocessor = preprocessor
        self.metadata = metadata or {}
        self.path = path
        # The checkpoint's calibration map (ml.training.calibration); None: sigmoid.
        self.calibration: dict[str, Any] | None = self.metadata.get("calibration")

    @classmethod
    def load(cls, path: str | os.PathLike[str], device: str | torch.device = "cpu") -> Predictor:
        """Load a checkpoint file, run directory or registry version directory.

        Args:
            path: ``model_best.pt`` / ``model.pt``, or a directory holding one.
            device: where to run the model (CPU by default).

        Raises:
            CheckpointError: the checkpoint is missing, unreadable or inconsistent.
        """
        file = checkpoint_path(path)
        ckpt = load_checkpoint(file)
        try:
            model = build_model(ckpt["model_name"], **ckpt["model_args"])
            model.load_state_dict(ckpt["state_dict"])
            pre = Preprocessor.from_state(ckpt["preprocessor"])
        except (ValueError, RuntimeError, TypeError) as exc:
            raise CheckpointError(f"{file} cannot be rebuilt into a model: {exc}") from exc
        meta = {k: v for k, v in ckpt.items() if k != "state_dict"}
        return cls(model, pre, metadata=meta, device=device, path=file)

    @property
    def features(self) -> FeatureSpec:
        """The label and feature columns the model was trained on."""
        return self.preprocessor.spec

    @property
    def model_name(self) -> str:
        return str(self.metadata.get("model_name", type(self.model).__name__))

    @torch.no_grad()
    def predict_proba(
        self, df: pd.DataFrame, batch_size: int = PREDICT_BATCH_SIZE, *, calibrated: bool = True
    ) -> npt.NDArray[np.float64]:
        """Click probabilities for the rows of ``df``.

        Args:
            df: raw feature columns (extra columns, including the label, are ignored).
            batch_size: rows per forward pass (bounds memory, not the result).
            calibrated: through the checkpoint's calibration map (``False``: the model's
                own sigmoid, e.g. for the model card's before/after reliability curve).

        Returns:
            float64 array of shape ``(len(df),)``.

        Raises:
            PreprocessingError: a feature column is missing or a numeric column holds text.
        """
        cat, num = self.preprocessor.transform(df, source="input rows", numeric_nan="impute")
        cat_t = torch.from_numpy(cat).to(self.device)
        num_t = torch.from_numpy(num).to(self.device)
        out = [
            self.model(cat_t[lo : lo + batch_size], num_t[lo : lo + batch_size])
            for lo in range(0, len(df), batch_size)
        ]
        if not out:
            return np.zeros(0, dtype=np.float64)
        if not calibrated:
            probs: npt.NDArray[np.float64] = torch.sigmoid(torch.cat(out)).double().cpu().numpy()
            return probs
        return self.probabilities(torch.cat(out))

    def probabilities(self, logits: torch.Tensor) -> npt.NDArray[np.float64]:
        """The model's ``logits`` as probabilities through the checkpoint's calibration
        (a plain sigmoid without one); the service's fast path uses it too."""
        if self.calibration is not None:
            return apply_calibration(self.calibration, logits.double().cpu().numpy())
        probs: npt.NDArray[np.float64] = torch.sigmoid(logits).double().cpu().numpy()
        return probs
