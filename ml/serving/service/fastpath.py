"""Scoring validated JSON columns without building a DataFrame.

``Predictor.predict_proba`` takes a DataFrame and encodes it with pandas, column by
column: about 1 ms of fixed cost per request, whatever its size, which dominates a small
request. :class:`FastScorer` encodes the request's Python values directly with the same
fitted state (a dict per vocabulary: value → id, unseen or null → the OOV id 0; numerics
through the preprocessor's own ``encode_numerics``: clipped, scaled, binned, null → the
mean and the missing bin; a hashed field through the same bucket function) and runs the same
model, so the probabilities are the predictor's. Values the predictor would coerce (a
string in an integer-valued field) take the predictor's own path instead.
tests/serving/test_fastpath.py checks the two agree.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
import torch

from ml.data.columns import Field, coerce
from ml.data.hashing import bucket_ids
from ml.serving.predictor import Predictor
from ml.serving.service.validation import ParsedRequest

_INT_OK = frozenset({int, type(None)})
_STR_OK = frozenset({str, int, type(None)})


class FastScorer:
    """``predict_proba`` for a :class:`ParsedRequest`, equal to the predictor's."""

    def __init__(self, predictor: Predictor) -> None:
        self.predictor = predictor
        pre = predictor.preprocessor
        self._categorical = [
            (f.name, f.kind == "int", {v: i + 1 for i, v in enumerate(f.vocab)}) for f in pre.fields
        ]
        self._hashed: dict[str, Field] = {f.name: f for f in pre.fields if f.buckets}
        self._numeric = [s.name for s in pre.numerics]
        self._n_fields = len(pre.field_names)

    def _encode(self, parsed: ParsedRequest) -> npt.NDArray[np.int32] | None:
        n = parsed.rows
        cat = np.zeros((self._n_fields, n), dtype=np.int32)
        for j, (name, is_int, ids) in enumerate(self._categorical):
            values = parsed.columns[name]
            types = set(map(type, values))
            hashed = self._hashed.get(name)
            if hashed is not None:
                if not types <= _STR_OK:
                    return None
                raw = pd.Series(values, dtype=object)
                cat[j] = bucket_ids(coerce(raw, hashed.kind), hashed.kind, hashed.buckets)
            elif is_int:
                if not types <= _INT_OK:
                    return None  # strings in an integer field: the predictor coerces them
                cat[j] = [ids.get(v, 0) for v in values]
            elif types <= _STR_OK:
                if int in types:
                    values = [str(v) if type(v) is int else v for v in values]
                cat[j] = [ids.get(v, 0) for v in values]
            else:
                return None
        return cat.T

    def _scale(self, parsed: ParsedRequest, cat: npt.NDArray[np.int32]) -> npt.NDArray[np.float32]:
        """The preprocessor's own numeric encoding (scaling, bin fields into ``cat``)."""
        raw = [np.asarray(parsed.columns[name], dtype=np.float64) for name in self._numeric]
        bins = np.zeros((parsed.rows, self._n_fields - len(self._categorical)), dtype=np.int32)
        num = self.predictor.preprocessor.encode_numerics(raw, bins)
        cat[:, len(self._categorical) :] = bins
        return num

    @torch.no_grad()
    def predict_proba(self, parsed: ParsedRequest) -> npt.NDArray[np.float64]:
        cat = self._encode(parsed)
        if cat is None:
            return self.predictor.predict_proba(parsed.frame)
        device = self.predictor.device
        cat = np.ascontiguousarray(cat)
        num = self._scale(parsed, cat)
        logits: Any = self.predictor.model(
            torch.from_numpy(np.ascontiguousarray(cat)).to(device), torch.from_numpy(num).to(device)
        )
        return self.predictor.probabilities(logits)
