"""Hashed ids: a categorical value mapped to one of ``N`` buckets by a stable hash.

A field listed in ``features.hash_buckets`` keeps no vocabulary: any value, seen in train
or not, becomes id ``1 + hash(value) mod N`` (a missing value: id 0), so a field with tens
of millions of ids costs ``N`` embedding rows and no counting pass, and an id first seen
at serving time lands in its own bucket, not the out-of-vocabulary one.

The hash must give the same bucket in every process, on every machine and in every later
version of this code (a checkpoint is served long after it was trained), so it is not
Python's salted ``hash()`` nor a library's internal one, but spelled out here and named
in the checkpoint (:data:`HASH_NAME`):

- integer-valued fields: splitmix64 of the value's 64-bit two's complement (the output of
  Vigna's generator from that state; numpy ``uint64`` arithmetic, which wraps modulo 2**64);
- string-valued fields: SipHash-2-4 of the value's UTF-8 bytes under the fixed key
  :data:`SIPHASH_KEY`, then splitmix64's finaliser: exactly what
  ``pandas.util.hash_array(..., hash_key=SIPHASH_KEY, encoding="utf8", categorize=False)``
  computes (in C: 1M strings in ~0.1 s, 8x faster than ``hashlib.blake2b`` per value).
  A pandas that computed anything else is refused (:func:`_check_pandas`) rather than
  trusted: tests/data/test_hashing.py checks it against a pure-Python SipHash.

Values are first brought to the field's kind (``ml.data.columns.coerce``), so ``"42"``
in an integer-valued field hashes as ``42``. Collisions: see docs/training.md.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pandas as pd

from ml.errors import PreprocessingError

__all__ = ["HASH_NAME", "bucket_ids", "hash_values"]

#: Recorded with each hashed field in the checkpoint; a different name is refused.
HASH_NAME = "splitmix64-siphash24-v1"
#: SipHash's 16-byte key for strings (pandas' own default, spelled out).
SIPHASH_KEY = "0123456789123456"
#: The string hash of "abc" (checked against this pandas once per process).
_ABC = 0x7C3E2CC42842A818
_checked: list[bool] = []

_U64 = np.uint64


def _splitmix64(x: npt.NDArray[np.uint64]) -> npt.NDArray[np.uint64]:
    with np.errstate(over="ignore"):
        z = x + _U64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> _U64(30))) * _U64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> _U64(27))) * _U64(0x94D049BB133111EB)
        return z ^ (z >> _U64(31))


def _siphash(values: npt.NDArray[np.object_]) -> npt.NDArray[np.uint64]:
    out: npt.NDArray[np.uint64] = pd.util.hash_array(
        values, hash_key=SIPHASH_KEY, encoding="utf8", categorize=False
    )
    return out


def _check_pandas() -> None:
    """Refuse a pandas whose ``hash_array`` is not the string hash above."""
    if _checked:
        return
    got = int(_siphash(np.array(["abc"], dtype=object))[0])
    if got != _ABC:
        raise PreprocessingError(
            f"pandas {pd.__version__}'s hash_array gives {got:#x} for 'abc', not the "
            f"{_ABC:#x} of {HASH_NAME}: hashed fields cannot be encoded as they were "
            "trained; install the pandas of requirements.lock"
        )
    _checked.append(True)


def hash_values(
    values: pd.Series, kind: str
) -> tuple[npt.NDArray[np.uint64], npt.NDArray[np.bool_]]:
    """``(64-bit hashes, missing mask)`` of values already coerced to ``kind``."""
    missing = values.isna().to_numpy()
    if kind == "int":
        ints = values.to_numpy(dtype=np.int64, na_value=0)
        return _splitmix64(ints.view(np.uint64)), missing
    _check_pandas()
    text = values.to_numpy(dtype=object)
    if missing.any():
        text = np.where(missing, "", text)  # hashed, then masked
    return _siphash(text), missing


def bucket_ids(values: pd.Series, kind: str, buckets: int) -> npt.NDArray[np.int32]:
    """Ids ``1..buckets`` of values coerced to ``kind`` (missing: 0)."""
    hashes, missing = hash_values(values, kind)
    ids = (hashes % _U64(buckets)).astype(np.int64) + 1
    return np.where(missing, 0, ids).astype(np.int32)
