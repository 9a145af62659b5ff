"""ml.data.hashing, and hashed fields through the Preprocessor."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pytest
import torch

from ml.config import FeatureSpec
from ml.data.hashing import HASH_NAME, SIPHASH_KEY, bucket_ids, hash_values
from ml.data.preprocessing import OOV_ID, Preprocessor
from ml.errors import PreprocessingError

SPEC = FeatureSpec(
    label="click", categorical=("site", "user"), numeric=("price",), hash_buckets={"user": 64}
)


def _train() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "site": ["a", "a", "b", "b", "b", "c"],
            "user": [10, 10, 10, 20, 20, 30],
            "price": [1.0, 2.0, 3.0, 4.0, 5.0, 6.0],
            "click": [0, 1, 0, 1, 0, 1],
        }
    )


_M = (1 << 64) - 1


def _rotl(x: int, b: int) -> int:
    return ((x << b) | (x >> (64 - b))) & _M


def _siphash24(key: bytes, data: bytes) -> int:
    """SipHash-2-4 (Aumasson & Bernstein), the reference algorithm in plain Python."""
    k0, k1 = int.from_bytes(key[:8], "little"), int.from_bytes(key[8:], "little")
    v = [k0 ^ 0x736F6D6570736575, k1 ^ 0x646F72616E646F6D]
    v += [k0 ^ 0x6C7967656E657261, k1 ^ 0x7465646279746573]

    def rounds(n: int) -> None:
        for _ in range(n):
            v[0] = (v[0] + v[1]) & _M
            v[1] = _rotl(v[1], 13) ^ v[0]
            v[0] = _rotl(v[0], 32)
            v[2] = (v[2] + v[3]) & _M
            v[3] = _rotl(v[3], 16) ^ v[2]
            v[0] = (v[0] + v[3]) & _M
            v[3] = _rotl(v[3], 21) ^ v[0]
            v[2] = (v[2] + v[1]) & _M
            v[1] = _rotl(v[1], 17) ^ v[2]
            v[2] = _rotl(v[2], 32)

    end = len(data) - len(data) % 8
    blocks = [int.from_bytes(data[i : i + 8], "little") for i in range(0, end, 8)]
    blocks.append(((len(data) & 0xFF) << 56) | int.from_bytes(data[end:], "little"))
    for m in blocks:
        v[3] ^= m
        rounds(2)
        v[0] ^= m
    v[2] ^= 0xFF
    rounds(4)
    return v[0] ^ v[1] ^ v[2] ^ v[3]


def _finalise(z: int) -> int:  # splitmix64's output function
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _M
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _M
    return z ^ (z >> 31)


def test_hash_values_are_the_published_algorithms() -> None:
    # splitmix64's first output from state 0 (Vigna's reference implementation)
    ints, _ = hash_values(pd.Series([0], dtype="int64"), "int")
    assert int(ints[0]) == 0xE220A8397B1DCDAF
    assert _siphash24(bytes(range(16)), b"") == 0x726FDB47DD0E0E31  # the paper's vector
    texts = ["abc", "", "héllo wörld", "x" * 37, "68fd1e64"]
    strs, missing = hash_values(pd.Series([*texts, None], dtype=object), "str")
    key = SIPHASH_KEY.encode()
    assert [int(h) for h in strs[:-1]] == [_finalise(_siphash24(key, t.encode())) for t in texts]
    assert int(strs[0]) == 0x7C3E2CC42842A818  # fixed forever: served buckets never move
    assert missing.tolist() == [False] * 5 + [True]


def test_bucket_ids_cover_the_buckets_and_keep_zero_for_missing() -> None:
    ids = bucket_ids(pd.Series(np.arange(10_000), dtype="int64"), "int", 16)
    assert ids.dtype == np.int32 and ids.min() == 1 and ids.max() == 16
    counts = np.bincount(ids)[1:]
    assert counts.min() > 10_000 / 16 * 0.8  # spread evenly, not into a few buckets
    missing = bucket_ids(pd.Series([5, None], dtype="Int64"), "int", 16)
    assert missing[1] == 0 and missing[0] == ids[5]


def test_negative_and_large_ids_hash_without_overflow_errors() -> None:
    vals = pd.Series([-1, -(2**63), 2**63 - 1], dtype="int64")
    ids = bucket_ids(vals, "int", 1000)
    assert ((ids >= 1) & (ids <= 1000)).all()


def test_hashed_field_keeps_no_vocabulary_and_sizes_by_buckets() -> None:
    pre = Preprocessor.fit(_train(), SPEC, min_frequency=2)
    assert pre.vocab_sizes[:2] == [3, 65]  # {a, b} + OOV; 64 buckets + missing
    assert pre.fields[1].vocab == () and pre.fields[1].buckets == 64


def test_unseen_and_rare_ids_map_to_their_bucket_not_oov() -> None:
    pre = Preprocessor.fit(_train(), SPEC, min_frequency=2)
    rows = pd.DataFrame({"site": ["a"] * 4, "user": [30, 123_456, 10, None], "price": [1.0] * 4})
    cat, _ = pre.transform(rows)
    user = cat[:, 1]
    expected = bucket_ids(pd.Series([30, 123_456, 10], dtype="int64"), "int", 64)
    assert user[:3].tolist() == expected.tolist()
    assert (user[:3] != OOV_ID).all() and user[3] == OOV_ID


def test_hashed_ids_are_the_same_whatever_the_dtype_they_arrive_in() -> None:
    pre = Preprocessor.fit(_train(), SPEC, min_frequency=2)
    as_int = pd.DataFrame({"site": ["a"] * 3, "user": [10, 20, 99], "price": [1.0] * 3})
    as_text = as_int.assign(user=["10", "20", "99"])  # ids arriving as JSON text
    as_cat = as_int.assign(user=pd.Categorical([10, 20, 99]))
    base = pre.transform(as_int)[0]
    assert (pre.transform(as_text)[0] == base).all()
    assert (pre.transform(as_cat)[0] == base).all()


def test_string_fields_hash_too() -> None:
    spec = FeatureSpec("click", ("site", "user"), ("price",), hash_buckets={"site": 8})
    pre = Preprocessor.fit(_train(), spec, min_frequency=2)
    cat, _ = pre.transform(_train())
    assert cat[:, 0].tolist() == bucket_ids(_train()["site"].astype(object), "str", 8).tolist()
    assert cat[5, 0] != OOV_ID  # the rare "c" keeps its own bucket


def test_hashed_state_round_trips_and_names_the_hash() -> None:
    pre = Preprocessor.fit(_train(), SPEC, min_frequency=2)
    state = pre.state_dict()
    assert state["format_version"] == 3
    assert state["categorical"][1] == {
        "name": "user",
        "kind": "int",
        "vocab": [],
        "hash_buckets": 64,
        "hash": HASH_NAME,
    }
    buf = io.BytesIO()
    torch.save(state, buf)
    buf.seek(0)
    back = Preprocessor.from_state(torch.load(buf, weights_only=True))
    assert back.spec.hash_buckets == {"user": 64}
    rows = _train().assign(user=[1, 2, 3, 4, 5, 6])
    assert (back.transform(rows)[0] == pre.transform(rows)[0]).all()
    unhashed = Preprocessor.fit(_train(), FeatureSpec("click", ("site",), ()), min_frequency=1)
    assert unhashed.state_dict()["format_version"] == 2  # older code still reads it


def test_unknown_hash_in_a_state_is_refused() -> None:
    state = Preprocessor.fit(_train(), SPEC, min_frequency=2).state_dict()
    state["categorical"][1]["hash"] = "murmur3-v9"
    with pytest.raises(PreprocessingError, match=r"hashed with 'murmur3-v9'.*retrain"):
        Preprocessor.from_state(state)
