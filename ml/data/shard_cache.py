"""The encoded rows of every split, written once as ``.npy`` shards and reused.

Streaming training (``data.streaming``) encodes each split once, row group by row group
(:func:`ml.data.row_groups.iter_split`), into packed int32 rows (the categorical ids,
the numerics' float32 bit patterns, the label's: the layout of
:class:`ml.training.tensors.EncodedSplit`) and writes them as shards of at most
:data:`SHARD_ROWS` rows::

    <base>/experiments/cache/shards/<key>/
    ├── manifest.json          written last: the cache is complete when it is there
    ├── train/00000.npy ...    (rows, width) int32; np.load(path, mmap_mode="r") opens one
    ├── val/00000.npy
    └── test/00000.npy

``<key>`` is the SHA-256 of the data fingerprint's digest, the preprocessing config
(:func:`preprocessing_config`: the features and the ``data`` keys that change the
encoding) and :data:`FORMAT`, so a retried task or another run of the same data and
preprocessing finds the cache, and any other data or config gets its own: a cache is
reused only when its manifest records the same digest, config and preprocessor state.
The manifest also holds the fitted preprocessor (a reused cache skips the fitting
pass), each split's row and click counts and each field's out-of-vocabulary count.

The cache is built in a temporary directory beside it and renamed into place, so a
crash leaves no half-written cache (a leftover ``.tmp-*`` directory is never read;
deleting ``experiments/cache/shards`` is always safe). The space it needs is checked
first; too little, or the disk filling up while writing, is a
:class:`~ml.errors.StorageError` (retryable) saying how much it needs. A shard found
shorter than its manifest says (truncated) is reported, naming the file, and the cache
is built again.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import shutil
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from ml import paths
from ml.data.preprocessing import Preprocessor
from ml.data.row_groups import iter_split, split_kinds, split_rows
from ml.errors import DataLoadError, StorageError, storage_error
from ml.storage.files import show

__all__ = [
    "CACHE_DIR",
    "FORMAT",
    "SHARD_ROWS",
    "ShardCache",
    "ShardFile",
    "cache_key",
    "open_or_build",
    "pack",
    "preprocessing_config",
]

FORMAT = 1
CACHE_DIR = "experiments/cache/shards"
MANIFEST = "manifest.json"
#: Rows per shard file (about 100-200 MB at 25-50 int32 columns).
SHARD_ROWS = 1 << 20

LogFn = Callable[[str], None]


def preprocessing_config(cfg: Any) -> dict[str, Any]:
    """What decides the encoding besides the data: the features and the ``data`` keys."""
    d = cfg.data
    return {
        "features": cfg.features.to_dict(),
        "min_frequency": d.min_frequency,
        "numeric_nan": d.numeric_nan,
        "numeric_bins": d.numeric_bins,
        "seed": cfg.seed,  # seeds the numeric sample of the streaming fit
    }


def cache_key(data_digest: str, pre_config: dict[str, Any]) -> str:
    blob = json.dumps(
        {"data": data_digest, "preprocessing": pre_config, "format": FORMAT}, sort_keys=True
    )
    return hashlib.sha256(blob.encode()).hexdigest()[:32]


def _state_digest(pre: Preprocessor) -> str:
    blob = json.dumps(pre.state_dict(), sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()


def pack(
    cat: npt.NDArray[np.int32], num: npt.NDArray[np.float32], y: npt.NDArray[Any]
) -> npt.NDArray[np.int32]:
    """``(rows, fields + numerics + 1)`` int32: ids, numerics' bits, the label's bits."""
    n, n_cat = cat.shape
    n_num = num.shape[1]
    packed = np.empty((n, n_cat + n_num + 1), dtype=np.int32)
    packed[:, :n_cat] = cat
    packed[:, n_cat : n_cat + n_num] = np.ascontiguousarray(num, dtype=np.float32).view(np.int32)
    packed[:, -1] = np.asarray(y, dtype=np.float32).view(np.int32)
    return packed


@dataclass(frozen=True)
class ShardFile:
    """One ``.npy`` shard: its path, rows and where the rows start in the file."""

    path: Path
    rows: int
    offset: int
    width: int

    def read(self, lo: int, hi: int) -> npt.NDArray[np.int32]:
        """Rows ``[lo, hi)`` by one positioned read (the pages stay the kernel's cache,
        not this process's memory, unlike a mapping).

        Raises:
            DataLoadError: the file is shorter than its manifest says (truncated).
        """
        out = np.empty((hi - lo, self.width), dtype=np.int32)
        with open(self.path, "rb") as f:
            f.seek(self.offset + lo * self.width * 4)
            got = f.readinto(out.data.cast("B"))
        if got != out.nbytes:
            raise DataLoadError(
                f"shard {self.path} is truncated: rows {lo}-{hi} need {out.nbytes} bytes, "
                f"{got} read; delete {self.path.parent.parent} and train again"
            )
        return out


@dataclass(frozen=True)
class ShardCache:
    """A complete cache: its directory and manifest."""

    root: Path
    manifest: dict[str, Any]

    @property
    def preprocessor(self) -> Preprocessor:
        return Preprocessor.from_state(self.manifest["preprocessor"])

    def split(self, name: str) -> dict[str, Any]:
        info: dict[str, Any] = self.manifest["splits"][name]
        return info

    def shards(self, name: str) -> list[ShardFile]:
        w = int(self.manifest["width"])
        return [
            ShardFile(self.root / s["file"], int(s["rows"]), int(s["offset"]), w)
            for s in self.split(name)["shards"]
        ]


def cache_root() -> Path:
    return paths.resolve(CACHE_DIR)


def open_or_build(
    features_dir: str | os.PathLike[str],
    data_digest: str,
    pre_config: dict[str, Any],
    splits: tuple[str, ...],
    fit: Callable[[], Preprocessor],
    log: LogFn,
    *,
    pre: Preprocessor | None = None,
    root: Path | None = None,
    shard_rows: int = SHARD_ROWS,
) -> ShardCache:
    """The cache of these data and preprocessing: reused when complete and matching,
    else built (``fit`` called for the preprocessor unless ``pre`` is given: a resumed
    run's own).

    Raises:
        StorageError: too little disk space for the cache, or an I/O error writing it.
        DataLoadError: a split is truncated, corrupt or changes schema mid-stream.
    """
    base = root or cache_root()
    key = cache_key(data_digest, pre_config)
    # a resumed run keeps its own preprocessor: a cache holding another (fitted by older
    # code) is not its cache, and its own goes beside it
    keys = [key] if pre is None else [key, f"{key}-{_state_digest(pre)[:12]}"]
    for k in keys:
        found = _open(base / k, data_digest, pre_config, splits, pre, log)
        if found is not None:
            log(f"Shard cache reused: {show(found.root)} (same data and preprocessing)")
            return found
    if pre is not None and (base / key / MANIFEST).is_file():
        key = keys[1]
    pre = pre or fit()
    return _build(base, key, features_dir, data_digest, pre_config, splits, pre, log, shard_rows)


def _open(
    root: Path,
    data_digest: str,
    pre_config: dict[str, Any],
    splits: tuple[str, ...],
    pre: Preprocessor | None,
    log: LogFn,
) -> ShardCache | None:
    manifest_path = root / MANIFEST
    if not manifest_path.is_file():
        return None
    try:
        manifest = json.loads(manifest_path.read_text())
    except (OSError, ValueError) as exc:
        log(f"⚠️  Shard cache {root}: unreadable manifest ({exc}); building it again")
        _discard(root)
        return None
    same = (
        manifest.get("format") == FORMAT
        and manifest.get("data_digest") == data_digest
        and manifest.get("preprocessing") == json.loads(json.dumps(pre_config))
        and all(s in manifest.get("splits", {}) for s in splits)
    )
    if not same:
        return None
    cache = ShardCache(root, manifest)
    if pre is not None and _state_digest(cache.preprocessor) != _state_digest(pre):
        return None
    for name in splits:
        for shard in cache.shards(name):
            want = shard.offset + shard.rows * shard.width * 4
            size = shard.path.stat().st_size if shard.path.is_file() else -1
            if size != want:
                log(
                    f"⚠️  Shard cache: {shard.path} is truncated or missing ({max(size, 0):,} of "
                    f"{want:,} bytes); building the cache again"
                )
                _discard(root)
                return None
    return cache


def _discard(root: Path) -> None:
    """Move a broken cache out of the way (a reader holding it open keeps its files)."""
    gone = root.with_name(f".tmp-{root.name}-broken-{uuid.uuid4().hex[:8]}")
    try:
        root.rename(gone)
    except OSError:
        return
    shutil.rmtree(gone, ignore_errors=True)


def _needed_bytes(rows: dict[str, int], width: int, shard_rows: int) -> int:
    shards = sum(-(-n // shard_rows) or 1 for n in rows.values())
    return sum(rows.values()) * width * 4 + 256 * shards + (1 << 20)


def _build(
    base: Path,
    key: str,
    features_dir: str | os.PathLike[str],
    data_digest: str,
    pre_config: dict[str, Any],
    splits: tuple[str, ...],
    pre: Preprocessor,
    log: LogFn,
    shard_rows: int,
) -> ShardCache:
    width = len(pre.field_names) + pre.num_numeric + 1
    rows = {s: split_rows(features_dir, s) for s in splits}
    need = _needed_bytes(rows, width, shard_rows)
    base.mkdir(parents=True, exist_ok=True)
    free = shutil.disk_usage(base).free
    if need > free:
        raise StorageError(
            errno.ENOSPC,
            f"the shard cache for streaming training needs {_gb(need)} at {base} but "
            f"{_gb(free)} is free; free space (old caches under {base} can be deleted) and "
            "retry, or set data.streaming: false when the data fits in memory",
        )
    tmp = base / f".tmp-{key}-{uuid.uuid4().hex[:8]}"
    log(
        f"Shard cache: encoding {sum(rows.values()):,} rows ({_gb(need)}, {width} int32 "
        f"columns a row) into {base / key}"
    )
    try:
        kinds = split_kinds(features_dir, "train", pre.spec)
        info = {s: _write_split(tmp, s, features_dir, pre, kinds, shard_rows) for s in splits}
        manifest = {
            "format": FORMAT,
            "data_digest": data_digest,
            "preprocessing": pre_config,
            "preprocessor": pre.state_dict(),
            "n_cat": len(pre.field_names),
            "n_num": pre.num_numeric,
            "width": width,
            "splits": info,
        }
        (tmp / MANIFEST).write_text(json.dumps(manifest, default=str))
        other = _publish(tmp, base / key, data_digest, pre_config, splits, pre, log)
        if other is not None:  # another process finished the same cache first
            return other
    except OSError as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            err = storage_error(exc, f"writing the shard cache (it needs {_gb(need)})", tmp)
            raise err from exc
        raise storage_error(exc, "writing the shard cache", tmp) from exc
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return ShardCache(base / key, json.loads(json.dumps(manifest, default=str)))


def _publish(
    tmp: Path,
    root: Path,
    data_digest: str,
    pre_config: dict[str, Any],
    splits: tuple[str, ...],
    pre: Preprocessor,
    log: LogFn,
) -> ShardCache | None:
    """Rename the finished ``tmp`` to ``root``; ``None`` when it took that place, else the
    cache another process published there first when it holds what this one needs (``tmp``
    dropped). A cache found there that lacks a split asked for (built for a run that did
    not score test) is moved aside and replaced."""
    for _ in range(2):
        try:
            tmp.rename(root)
            return None
        except OSError:
            if not (root / MANIFEST).is_file():
                raise
        found = _open(root, data_digest, pre_config, splits, pre, log)
        if found is not None:
            shutil.rmtree(tmp, ignore_errors=True)
            return found
        _discard(root)
    tmp.rename(root)  # raises if a third process published in between
    return None


def _write_split(
    tmp: Path,
    split: str,
    features_dir: str | os.PathLike[str],
    pre: Preprocessor,
    kinds: dict[str, str],
    shard_rows: int,
) -> dict[str, Any]:
    (tmp / split).mkdir(parents=True)
    n_fields = len(pre.fields)
    oov = np.zeros(n_fields, dtype=np.int64)
    shards: list[dict[str, Any]] = []
    total = split_rows(features_dir, split)
    writer = _ShardWriter(tmp, split, shard_rows, total, shards)
    rows = positives = 0
    try:
        for chunk in iter_split(features_dir, split, pre.spec, expect=kinds):
            cat, num = pre.transform(chunk.frame, source=chunk.where)
            y = chunk.frame[pre.spec.label].to_numpy(dtype=np.float32)
            oov += (cat[:, :n_fields] == 0).sum(axis=0)
            rows += len(y)
            positives += int(y.sum())
            writer.write(pack(cat, num, y))
    finally:
        writer.close()
    if rows == 0 or writer.left or writer.room:
        raise DataLoadError(
            f"{features_dir}/{split}: {rows:,} rows read, its parquet footer says {total:,}"
            + (" (an empty split cannot be trained on)" if rows == 0 else "; the file changed")
        )
    return {"rows": rows, "positives": positives, "oov": oov.tolist(), "shards": shards}


class _ShardWriter:
    """Appends packed rows to ``<split>/NNNNN.npy`` files of at most ``shard_rows`` rows;
    ``total`` (the footer's row count) fixes each file's shape before it is written."""

    def __init__(self, tmp: Path, split: str, shard_rows: int, total: int, out: list[Any]):
        self.tmp, self.split, self.shard_rows, self.out = tmp, split, shard_rows, out
        self.left = total  # rows not yet written
        self.file: Any = None
        self.room = 0  # rows the open file still takes

    def write(self, packed: npt.NDArray[np.int32]) -> None:
        while len(packed):
            if self.room == 0:
                self._next(packed.shape[1])
            take = min(len(packed), self.room)
            self.file.write(np.ascontiguousarray(packed[:take], dtype="<i4").tobytes())
            self.room -= take
            self.left -= take
            packed = packed[take:]

    def _next(self, width: int) -> None:
        self.close()
        rows = min(self.shard_rows, self.left)
        if rows <= 0:
            raise DataLoadError(
                f"{self.split}: more rows than its parquet footer says; the file changed "
                "while it was read"
            )
        rel = f"{self.split}/{len(self.out):05d}.npy"
        self.file = open(self.tmp / rel, "wb")  # noqa: SIM115 (closed in close())
        header = {"descr": "<i4", "fortran_order": False, "shape": (rows, width)}
        np.lib.format.write_array_header_1_0(self.file, header)
        self.out.append({"file": rel, "rows": rows, "offset": self.file.tell()})
        self.room = rows

    def close(self) -> None:
        if self.file is not None:
            self.file.close()
            self.file = None


def _gb(n: int) -> str:
    return f"{n / 1e9:.2f} GB" if n >= 1e8 else f"{n / 1e6:.1f} MB"
