"""Hashed ids: a categorical value mapped to one of ``N`` buckets by a stable hash.

A field listed in ``features.hash_buckets`` keeps no vocabulary: any value, seen in train
or not, becomes id ``1 + hash(value) mod N`` (a missing value: id 0), so a field with tens
of millions of ids costs ``N`` embedding rows and no counting pass, and an id first seen
at serving time lands in its own bucket, not the out-of-vocabulary one.

The hash must give the same bucket in every process, on every machine and in every later
version of this code (a checkpoint is served long after it was trained), so it is not
Python's salted ``hash()`` nor a library's internal one, but spelled out here and named
in the checkpoint (:data:`HASH_NAME`):

- integer-valued fields: the splitmix64 finaliser of the value's 64-bit two's complement
  (vectorised over numpy ``uint64``, whose arithmetic wraps modulo 2**64);
- string-valued fields: the first 8 bytes (little-endian) of the BLAKE2b digest of the
  value's UTF-8 bytes (``hashlib``), computed once per distinct value.

Values are first brought to the field's kind (``ml.data.columns.coerce``), so ``"42"``
in an integer-valued field hashes as ``42``. Collisions: see docs/training.md.
"""

from __future__ import annotations

import hashlib

import numpy as np
import numpy.typing as npt
import pandas as pd

__all__ = ["HASH_NAME", "bucket_ids", "hash_values"]

#: Recorded with each hashed field in the checkpoint; a different name is refused.
HASH_NAME = "splitmix64-blake2b64-v1"

_U64 = np.uint64


def _splitmix64(x: npt.NDArray[np.uint64]) -> npt.NDArray[np.uint64]:
    with np.errstate(over="ignore"):
        z = x + _U64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> _U64(30))) * _U64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> _U64(27))) * _U64(0x94D049BB133111EB)
        return z ^ (z >> _U64(31))


def _blake2b64(text: str) -> int:
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "little")


def hash_values(
    values: pd.Series, kind: str
) -> tuple[npt.NDArray[np.uint64], npt.NDArray[np.bool_]]:
    """``(64-bit hashes, missing mask)`` of values already coerced to ``kind``."""
    missing = values.isna().to_numpy()
    if kind == "int":
        ints = values.to_numpy(dtype=np.int64, na_value=0)
        return _splitmix64(ints.view(np.uint64)), missing
    codes, uniques = pd.factorize(values, use_na_sentinel=True)
    table = np.fromiter((_blake2b64(str(v)) for v in uniques), dtype=np.uint64, count=len(uniques))
    hashes = table[np.where(codes < 0, 0, codes)] if len(table) else np.zeros(len(codes), _U64)
    return hashes, missing


def bucket_ids(values: pd.Series, kind: str, buckets: int) -> npt.NDArray[np.int32]:
    """Ids ``1..buckets`` of values coerced to ``kind`` (missing: 0)."""
    hashes, missing = hash_values(values, kind)
    ids = (hashes % _U64(buckets)).astype(np.int64) + 1
    return np.where(missing, 0, ids).astype(np.int32)
