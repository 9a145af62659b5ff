"""ml.training.tensors: one packed tensor per split, views per batch."""

from __future__ import annotations

import numpy as np
import torch

from ml.training.tensors import EncodedSplit


def test_encoded_split_packs_and_unpacks_exactly() -> None:
    cat = np.array([[1, 2**30], [0, 7]], dtype=np.int32)
    num = np.array([[1.5, -np.pi], [np.float32(1e-30), 0.0]], dtype=np.float32)
    split = EncodedSplit.from_arrays(cat, num, np.array([1, 0]), "cpu")
    assert split.data.dtype == torch.int32 and split.data.shape == (2, 5)
    c, x, y = split.batch(torch.tensor([1, 0]))  # one indexed read, then views
    assert c.tolist() == [[0, 7], [1, 2**30]]
    np.testing.assert_array_equal(x.numpy(), num[[1, 0]])
    assert x.dtype == torch.float32 and y.tolist() == [0.0, 1.0]
    assert split.y.tolist() == [1.0, 0.0] and len(split) == 2


def test_oov_share_counts_id_zero_per_field() -> None:
    cat = np.array([[0, 1], [0, 2], [3, 0], [4, 5]], dtype=np.int32)
    split = EncodedSplit.from_arrays(cat, np.zeros((4, 0), np.float32), np.zeros(4), "cpu")
    assert split.oov_share() == [0.5, 0.25]
