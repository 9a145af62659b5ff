"""A logistic-regression baseline that notices a useless model.

scikit-learn's ``LogisticRegression`` (L2, lbfgs) on its own robust preprocessing:
one-hot of every category seen in the training rows (unseen ones ignored), and numerics
with missing values imputed by the train median, winsorised at the train 1st/99th
percentiles and standardised, plus their quantile bins one-hot (so a monotone but
non-linear effect is not lost). Fitted on at most ``max_rows`` training rows; the
inverse regularisation ``C`` is picked on the validation split from a small grid.
It shares nothing with the trained model's preprocessing (``data.min_frequency`` in
particular), so a config that cripples the model cannot cripple the baseline too.

The gate (``ml.evaluation.gates.check_baseline``) fails a model whose test AUC does not
reach the baseline's minus ``baseline_tolerance``.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ml.config import FeatureSpec
from ml.data.loading import load_split
from ml.data.row_groups import iter_split, sample_split
from ml.metrics import log_loss, roc_auc

MAX_ROWS = 500_000
C_GRID = (0.03, 0.3, 3.0)
NUMERIC_BINS = 10


@dataclass(frozen=True)
class BaselineResult:
    """The baseline's test AUC, the C it chose, how many rows it fit on, and its time."""

    test_auc: float
    val_auc: float
    c: float
    train_rows: int
    seconds: float
    test_logloss: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class _Encoder:
    """One-hot of the train categories and scaled + binned numerics, as a sparse matrix.

    Written with pandas indexers and scipy.sparse rather than sklearn's OneHotEncoder,
    whose object-dtype path takes ~50 s where this takes ~0.1 s at 70k rows.
    """

    def __init__(self, train: pd.DataFrame, spec: FeatureSpec) -> None:
        self.spec = spec
        self.vocab = {c: pd.Index(pd.unique(_values(train[c]).dropna())) for c in spec.categorical}
        self.numeric: dict[str, tuple[float, float, float, float, np.ndarray]] = {}
        for c in spec.numeric:
            x = _numeric(train[c])
            finite = x[np.isfinite(x)]
            if finite.size == 0:
                continue
            lo, hi = np.percentile(finite, [1, 99])
            clipped = np.clip(finite, lo, hi)
            std = float(clipped.std()) or 1.0
            edges = np.unique(np.quantile(finite, np.linspace(0, 1, NUMERIC_BINS + 1)[1:-1]))
            self.numeric[c] = (float(np.median(finite)), lo, hi, std, edges)

    def transform(self, df: pd.DataFrame) -> Any:
        import scipy.sparse as sp

        n = len(df)
        blocks = []
        for c, vocab in self.vocab.items():
            idx = vocab.get_indexer(pd.Index(_values(df[c])))
            rows = np.nonzero(idx >= 0)[0]
            blocks.append(
                sp.csr_matrix(
                    (np.ones(rows.size, np.float32), (rows, idx[rows])), shape=(n, len(vocab))
                )
            )
        for c, (median, lo, hi, std, edges) in self.numeric.items():
            x = _numeric(df[c])
            x = np.where(np.isfinite(x), x, median)
            scaled = (np.clip(x, lo, hi) - np.clip(median, lo, hi)) / std
            bins = np.searchsorted(edges, x, side="right")
            blocks.append(sp.csr_matrix(scaled.reshape(-1, 1).astype(np.float32)))
            blocks.append(
                sp.csr_matrix(
                    (np.ones(n, np.float32), (np.arange(n), bins)), shape=(n, len(edges) + 1)
                )
            )
        return sp.hstack(blocks, format="csr")


def _values(series: pd.Series) -> pd.Series:
    if isinstance(series.dtype, pd.CategoricalDtype):
        return series.astype(object)
    return series


def _numeric(series: pd.Series) -> np.ndarray:
    return pd.to_numeric(series, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)


def fit_baseline(
    features_dir: str | Path, spec: FeatureSpec, *, max_rows: int = MAX_ROWS, seed: int = 0
) -> BaselineResult:
    """Fit the baseline on train (at most ``max_rows``), pick C on val, score test.

    Raises:
        DataLoadError: a split or column is missing.
    """
    import warnings

    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression
    from threadpoolctl import threadpool_limits

    start = time.perf_counter()
    # a seeded sample of at most max_rows, read a row group at a time
    train = sample_split(features_dir, "train", spec, max_rows, seed)
    val = load_split(features_dir, "val", spec)
    encoder = _Encoder(train, spec)
    x_train, y_train = encoder.transform(train), train[spec.label].to_numpy()
    x_val, y_val = encoder.transform(val), val[spec.label].to_numpy()
    best: tuple[float, float, Any] | None = None
    # One BLAS/OpenMP thread: with two on a busy 2-core machine lbfgs runs ~20x slower.
    with warnings.catch_warnings(), threadpool_limits(1):
        warnings.simplefilter("ignore", ConvergenceWarning)
        for c in C_GRID:
            model = LogisticRegression(C=c, max_iter=500, tol=1e-4).fit(x_train, y_train)
            auc = roc_auc(y_val, model.predict_proba(x_val)[:, 1])
            if best is None or auc > best[0]:
                best = (auc, c, model)
        assert best is not None
        val_auc, c, model = best
        labels, probs = [], []
        for chunk in iter_split(features_dir, "test", spec):  # memory: one slice
            labels.append(chunk.frame[spec.label].to_numpy())
            probs.append(model.predict_proba(encoder.transform(chunk.frame))[:, 1])
        y_test, test_prob = np.concatenate(labels), np.concatenate(probs)
        test_auc = roc_auc(y_test, test_prob)
        test_logloss = log_loss(y_test, test_prob)
    return BaselineResult(
        test_auc=float(test_auc),
        val_auc=float(val_auc),
        c=c,
        train_rows=len(train),
        seconds=round(time.perf_counter() - start, 3),
        test_logloss=float(test_logloss),
    )
