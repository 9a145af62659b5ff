"""Synthetic CTR data with a known ground truth.

The generator simulates ad impressions in a fixed *world*: 100k users (segment, age,
historical CTR), 15k items (category, advertiser, price), 1k advertisers, 12 item
categories, 20 site categories, 4 device types, 5 ad positions, 24 hours and 7 days.
Users, items and sites are drawn from long-tailed (Zipf) popularity distributions.

Each impression's click is drawn from a true probability ``sigmoid(logit)`` where the
logit is a sum of

- main effects of the low/mid-cardinality fields (segment, category, site, device,
  position, hour, day);
- pairwise crosses: user_segment x item_category (rank 2), device_type x ad_position
  (rank 1: each device has its own fall-off with the slot), user_age x item_category
  (a per-category age slope) and item_price x user_segment (per-segment price
  sensitivity);
- smooth, monotone numeric effects (ad quality, historical CTR, session depth);
- small effects of the high-cardinality ids (user_id, item_id, advertiser_id), which
  no model can learn for rare levels, so they are kept tiny.

The signal is deliberately concentrated in few, large, structured effects: every
cross is over small fields and low rank, so 70k training rows pin it down. A model fit
on the true logit's own terms gets within ~0.001 test AUC of the oracle at the default
size, so the oracle is a reachable target and not a ceiling hidden behind estimation
noise. The crosses carry a large share of the signal, so a model with feature crosses
(DCNv2, DeepFM) beats logistic regression; every effect is scaled by ``SIGNAL_SCALE``
and the intercept is tuned so the base CTR is ``TARGET_CTR`` (25%) in every world.
The world's parameters come from ``world_seed`` (fixed by default and recorded in
``schema.json``); the rows come from ``seed``. :func:`true_probability`
recomputes the ground truth from the raw columns and :func:`oracle_auc` scores it.

Rows are generated and written in fixed-size chunks (one parquet row group each) whose
randomness derives from ``(seed, split, chunk index)``: memory stays bounded at any
size and the output never depends on the machine.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import os
import shutil
import time
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.parquet as pq

from ml import paths
from ml.data.schema import DEFAULT_SPEC, SCHEMA_FILE, SPLITS, read_schema, split_path
from ml.errors import GenerationError
from ml.metrics import roc_auc

DEFAULT_WORLD_SEED = 20240101
DEFAULT_ROWS = 100_000
DEFAULT_SEED = 42
DEFAULT_SPLIT = (0.7, 0.15, 0.15)
#: Rows per generated chunk and parquet row group. Fixed (not derived from free memory)
#: so that the same seed gives the same bytes on every machine.
CHUNK_ROWS = 500_000
#: Mean true click probability the world's intercept is tuned to.
TARGET_CTR = 0.25
#: Multiplies every effect (not the intercept): a stronger signal is easier to learn
#: relative to the estimation noise of 70k training rows.
SIGNAL_SCALE = 2.0
#: Bumped whenever the world changes; ``oracle_auc`` refuses data of another version,
#: whose ground truth this module no longer computes.
GENERATOR_VERSION = 2

N_USERS = 100_000
N_ITEMS = 15_000
N_ADVERTISERS = 1_000
N_ITEM_CATEGORIES = 12
N_SITE_CATEGORIES = 20
N_SEGMENTS = 8
DEVICE_TYPES = ("mobile", "desktop", "tablet", "ctv")
N_POSITIONS = 5
ITEM_CATEGORIES = tuple(f"cat_{i:02d}" for i in range(N_ITEM_CATEGORIES))
SITE_CATEGORIES = tuple(f"site_{i:02d}" for i in range(N_SITE_CATEGORIES))
USER_SEGMENTS = tuple(f"seg_{i}" for i in range(N_SEGMENTS))

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


# --- the world ------------------------------------------------------------------------


@dataclass(frozen=True)
class World:
    """Fixed population tables and effect sizes, all derived from one world seed."""

    seed: int
    user_cdf: FloatArray
    user_segment: IntArray
    user_age: IntArray
    user_hist_ctr: FloatArray
    user_effect: FloatArray
    item_cdf: FloatArray
    item_category: IntArray
    item_advertiser: IntArray
    item_base_price: FloatArray
    item_effect: FloatArray
    category_median_price: FloatArray
    site_cdf: FloatArray
    device_cdf: FloatArray
    position_cdf: FloatArray
    hour_cdf: FloatArray
    day_cdf: FloatArray
    intercept: float
    main_segment: FloatArray
    main_category: FloatArray
    main_site: FloatArray
    main_device: FloatArray
    main_position: FloatArray
    main_hour: FloatArray
    main_day: FloatArray
    advertiser_effect: FloatArray
    cross_segment_category: FloatArray  # (segments, categories)
    cross_device_position: FloatArray  # (devices, positions)
    age_slope_category: FloatArray  # per category
    price_sensitivity_segment: FloatArray  # per segment


def _zipf_cdf(rng: np.random.Generator, n: int, exponent: float) -> FloatArray:
    """CDF over ``n`` levels whose popularity follows rank^-exponent in a random order."""
    weights = 1.0 / np.arange(1, n + 1, dtype=np.float64) ** exponent
    weights = weights[rng.permutation(n)]
    cdf = np.cumsum(weights / weights.sum())
    cdf[-1] = 1.0
    return cdf


def _cdf(weights: npt.ArrayLike) -> FloatArray:
    w = np.asarray(weights, dtype=np.float64)
    cdf = np.cumsum(w / w.sum())
    cdf[-1] = 1.0
    return cdf


def _sample(cdf: FloatArray, rng: np.random.Generator, n: int) -> IntArray:
    return np.searchsorted(cdf, rng.random(n), side="right").astype(np.int64)


@functools.lru_cache(maxsize=4)
def build_world(world_seed: int = DEFAULT_WORLD_SEED) -> World:
    """Build (and cache) the world for ``world_seed``."""
    rng = np.random.default_rng(np.random.SeedSequence([world_seed, 0x57A7]))
    segment_cdf = _zipf_cdf(rng, N_SEGMENTS, 0.7)
    user_segment = _sample(segment_cdf, rng, N_USERS)
    segment_mean_age = rng.uniform(24, 56, N_SEGMENTS)
    user_age = np.clip(np.rint(rng.normal(segment_mean_age[user_segment], 9.0)), 18, 80)
    # Historical CTR: a noisy view of each user's propensity (its effect is in the logit).
    user_hist_ctr = 1.0 / (1.0 + np.exp(-(-1.6 + rng.normal(0.0, 0.55, N_USERS))))
    category_cdf = _zipf_cdf(rng, N_ITEM_CATEGORIES, 0.9)
    item_category = _sample(category_cdf, rng, N_ITEMS)
    category_median_price = np.exp(rng.uniform(np.log(5.0), np.log(200.0), N_ITEM_CATEGORIES))
    hours = np.arange(24)
    # How fast attention falls with the slot differs by device: one slope per device
    # makes device_type x ad_position a structured rank-1 cross (20 cells, 4 numbers).
    position_decay = rng.uniform(0.1, 0.6, len(DEVICE_TYPES))
    rank = 2
    seg_factors = rng.normal(0.0, 1.0, (N_SEGMENTS, rank))
    cat_factors = rng.normal(0.0, 1.0, (N_ITEM_CATEGORIES, rank))
    world = World(
        seed=world_seed,
        user_cdf=_zipf_cdf(rng, N_USERS, 1.3),
        user_segment=user_segment,
        user_age=user_age.astype(np.int64),
        user_hist_ctr=np.round(user_hist_ctr, 4),
        user_effect=rng.normal(0.0, 0.03, N_USERS),
        item_cdf=_zipf_cdf(rng, N_ITEMS, 1.3),
        item_category=item_category,
        item_advertiser=_sample(_zipf_cdf(rng, N_ADVERTISERS, 1.0), rng, N_ITEMS),
        item_base_price=np.exp(rng.normal(np.log(category_median_price[item_category]), 0.4)),
        item_effect=rng.normal(0.0, 0.03, N_ITEMS),
        category_median_price=category_median_price,
        site_cdf=_zipf_cdf(rng, N_SITE_CATEGORIES, 0.8),
        device_cdf=_cdf([0.58, 0.30, 0.09, 0.03]),
        position_cdf=_cdf([0.32, 0.25, 0.19, 0.14, 0.10]),
        hour_cdf=_cdf(1.0 + 0.6 * np.cos(2 * np.pi * (hours - 20) / 24)),
        day_cdf=_cdf([1.0, 1.0, 1.0, 1.0, 1.1, 1.2, 1.2]),
        intercept=0.0,
        main_segment=rng.normal(0.0, 0.3, N_SEGMENTS),
        main_category=rng.normal(0.0, 0.3, N_ITEM_CATEGORIES),
        main_site=rng.normal(0.0, 0.25, N_SITE_CATEGORIES),
        main_device=rng.normal(0.0, 0.2, len(DEVICE_TYPES)),
        main_position=-0.25 * np.arange(N_POSITIONS) + rng.normal(0.0, 0.05, N_POSITIONS),
        main_hour=0.2 * np.cos(2 * np.pi * (hours - 20) / 24),
        main_day=rng.normal(0.0, 0.08, 7),
        # Tiny, like the user and item effects: most advertisers are rare.
        advertiser_effect=rng.normal(0.0, 0.03, N_ADVERTISERS),
        cross_segment_category=0.9 * seg_factors @ cat_factors.T / np.sqrt(rank),
        cross_device_position=-position_decay[:, None] * (np.arange(N_POSITIONS) - 2.0)[None, :],
        age_slope_category=rng.normal(0.0, 0.25, N_ITEM_CATEGORIES),
        price_sensitivity_segment=rng.uniform(0.1, 0.3, N_SEGMENTS),
    )
    # Tune the intercept on a sample so every world has the same base CTR.
    sample = _draw_rows(world, np.random.default_rng([world_seed, 1]), 50_000)
    base = _logit(world, sample)
    lo, hi = -8.0, 8.0
    for _ in range(60):
        mid = (lo + hi) / 2
        if float(np.mean(_sigmoid(base + mid))) < TARGET_CTR:
            lo = mid
        else:
            hi = mid
    return dataclasses.replace(world, intercept=(lo + hi) / 2)


def _sigmoid(x: FloatArray) -> FloatArray:
    out: FloatArray = 1.0 / (1.0 + np.exp(-x))
    return out


# --- rows -----------------------------------------------------------------------------

# Internal row form: categorical fields as 0-based level indices, numerics as floats.
Rows = dict[str, npt.NDArray[Any]]


def _draw_rows(world: World, rng: np.random.Generator, n: int) -> Rows:
    user = _sample(world.user_cdf, rng, n)
    item = _sample(world.item_cdf, rng, n)
    category = world.item_category[item]
    # Per-impression discounts around the item's list price, rounded to cents.
    price = np.round(world.item_base_price[item] * np.exp(rng.normal(0.0, 0.1, n)), 2)
    return {
        "user_id": user,
        "item_id": item,
        "advertiser_id": world.item_advertiser[item],
        "item_category": category,
        "site_category": _sample(world.site_cdf, rng, n),
        "user_segment": world.user_segment[user],
        "device_type": _sample(world.device_cdf, rng, n),
        "ad_position": _sample(world.position_cdf, rng, n),
        "hour_of_day": _sample(world.hour_cdf, rng, n),
        "day_of_week": _sample(world.day_cdf, rng, n),
        "user_age": world.user_age[user].astype(np.float64),
        "item_price": np.maximum(price, 0.01),
        "user_hist_ctr": world.user_hist_ctr[user],
        "ad_quality": rng.beta(2.5, 2.5, n),
        "session_depth": rng.geometric(0.3, n).astype(np.float64),
    }


def _logit(world: World, r: Rows) -> FloatArray:
    seg, cat = r["user_segment"], r["item_category"]
    dev, pos = r["device_type"], r["ad_position"]
    hist = np.clip(r["user_hist_ctr"].astype(np.float64), 1e-3, 1 - 1e-3)
    price = np.maximum(r["item_price"].astype(np.float64), 0.01)
    effects = (
        world.main_segment[seg]
        + world.main_category[cat]
        + world.main_site[r["site_category"]]
        + world.main_device[dev]
        + world.main_position[pos]
        + world.main_hour[r["hour_of_day"]]
        + world.main_day[r["day_of_week"]]
        + world.advertiser_effect[r["advertiser_id"]]
        + world.user_effect[r["user_id"]]
        + world.item_effect[r["item_id"]]
        + world.cross_segment_category[seg, cat]
        + world.cross_device_position[dev, pos]
        + world.age_slope_category[cat] * (r["user_age"] - 40.0) / 12.0
        - world.price_sensitivity_segment[seg] * np.log(price / world.category_median_price[cat])
        + 1.5 * np.tanh(3.0 * (r["ad_quality"] - 0.5))
        + 0.7 * (np.log(hist / (1 - hist)) + 1.6)
        - 0.25 * np.log(r["session_depth"].astype(np.float64))
    )
    return np.asarray(world.intercept + SIGNAL_SCALE * effects, dtype=np.float64)


_STRING_LEVELS: dict[str, tuple[str, ...]] = {
    "item_category": ITEM_CATEGORIES,
    "site_category": SITE_CATEGORIES,
    "user_segment": USER_SEGMENTS,
    "device_type": DEVICE_TYPES,
}
# Integer columns store index + offset (ids start at 1, positions at 1, hours at 0).
_INT_OFFSETS: dict[str, tuple[int, int]] = {
    "user_id": (1, N_USERS),
    "item_id": (1, N_ITEMS),
    "advertiser_id": (1, N_ADVERTISERS),
    "ad_position": (1, N_POSITIONS),
    "hour_of_day": (0, 24),
    "day_of_week": (0, 7),
}
_INT_NUMERIC = ("user_age", "session_depth")


def _to_table(r: Rows, label: npt.NDArray[np.bool_]) -> pa.Table:
    columns: dict[str, pa.Array] = {"click": pa.array(label.astype(np.int64))}
    for col in DEFAULT_SPEC.categorical:
        if col in _STRING_LEVELS:
            dictionary = pa.array(_STRING_LEVELS[col], type=pa.string())
            indices = pa.array(r[col].astype(np.int32))
            columns[col] = pa.DictionaryArray.from_arrays(indices, dictionary).dictionary_decode()
        else:
            columns[col] = pa.array(r[col] + _INT_OFFSETS[col][0])
    for col in DEFAULT_SPEC.numeric:
        values = r[col]
        columns[col] = pa.array(
            values.astype(np.int64) if col in _INT_NUMERIC else values.astype(np.float64)
        )
    return pa.table(columns)


def _rows_from_frame(df: Any) -> Rows:
    """Raw columns (a pandas DataFrame or a mapping of arrays) -> internal row form."""
    import pandas as pd

    rows: Rows = {}
    for col in DEFAULT_SPEC.feature_columns:
        if col not in df:
            raise ValueError(
                f"true_probability needs column {col!r}, which is missing; it is defined "
                f"only for the generator's columns {list(DEFAULT_SPEC.feature_columns)}"
            )
        values = df[col]
        if col in _STRING_LEVELS:
            raw_obj = np.asarray(values, dtype=object)
            idx = np.asarray(
                pd.Index(_STRING_LEVELS[col]).get_indexer(pd.Index(raw_obj)), dtype=np.int64
            )
            if (idx < 0).any():
                bad = raw_obj[idx < 0][0]
                raise ValueError(
                    f"column {col!r} has value {bad!r}, which the generator's world does not "
                    f"know (expected one of {list(_STRING_LEVELS[col][:4])}...)"
                )
            rows[col] = idx
        elif col in _INT_OFFSETS:
            offset, n = _INT_OFFSETS[col]
            raw = np.asarray(values)
            if raw.dtype.kind not in "iu":
                raise ValueError(f"column {col!r} must hold integers, got dtype {raw.dtype}")
            idx = raw.astype(np.int64) - offset
            if ((idx < 0) | (idx >= n)).any():
                bad = raw[(idx < 0) | (idx >= n)][0]
                raise ValueError(
                    f"column {col!r} has value {bad}, outside the generator's range "
                    f"[{offset}, {offset + n - 1}]"
                )
            rows[col] = idx
        else:
            rows[col] = np.asarray(values, dtype=np.float64)
    return rows


def true_probability(df: Any, world_seed: int = DEFAULT_WORLD_SEED) -> FloatArray:
    """Ground-truth click probability of each row, from the raw generated columns.

    Args:
        df: a pandas DataFrame (or a mapping of column name to array) with the
            generator's feature columns, as read from its parquet files.
        world_seed: the world the data came from (``schema.json``'s ``world_seed``).

    Returns:
        float64 array of probabilities, one per row.

    Raises:
        ValueError: a column is missing or holds a value the world does not know.
    """
    world = build_world(int(world_seed))
    return _sigmoid(_logit(world, _rows_from_frame(df)))


def oracle_auc(features_dir: str | os.PathLike[str] | None = None, split: str = "test") -> float:
    """AUC of the true probabilities against the labels of one split.

    The best AUC any model can reach on that split; a trained model is judged by how
    close it gets.

    Args:
        features_dir: generated data (default: ``ml.paths.FEATURES_DIR``).
        split: ``train``, ``val`` or ``test``.

    Raises:
        ValueError: no ``schema.json`` with a world seed (not generator data), data of
            another generator version, or a missing split.
    """
    root = paths.resolve(features_dir if features_dir is not None else paths.FEATURES_DIR)
    schema = read_schema(root)
    if "world_seed" not in schema:
        raise ValueError(
            f"{root / SCHEMA_FILE} has no world_seed: oracle AUC exists only for data made "
            "by `ctr-pipeline data generate`"
        )
    version = schema.get("generator", {}).get("version", GENERATOR_VERSION)
    if version != GENERATOR_VERSION:
        raise ValueError(
            f"{root / SCHEMA_FILE}: the data was made by generator version {version}, whose "
            f"world this version ({GENERATOR_VERSION}) no longer computes; regenerate it with "
            "`ctr-pipeline data generate --overwrite`"
        )
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    path = split_path(root, split)
    if not path.is_file():
        raise ValueError(f"{path} does not exist; regenerate the data")
    probs: list[FloatArray] = []
    labels: list[npt.NDArray[Any]] = []
    pf = pq.ParquetFile(path)
    for batch in pf.iter_batches(batch_size=CHUNK_ROWS):
        frame = batch.to_pandas()
        probs.append(true_probability(frame, world_seed=int(schema["world_seed"])))
        labels.append(frame[DEFAULT_SPEC.label].to_numpy())
    return roc_auc(np.concatenate(labels), np.concatenate(probs))


# --- writing --------------------------------------------------------------------------


def split_counts(rows: int, split: tuple[float, float, float]) -> dict[str, int]:
    """Rows per split: train and val rounded, test gets the remainder."""
    n_train = round(rows * split[0])
    n_val = round(rows * split[1])
    return {"train": n_train, "val": n_val, "test": rows - n_train - n_val}


def _check_args(rows: int, seed: int, split: Any) -> tuple[float, float, float]:
    if isinstance(rows, bool) or not isinstance(rows, (int, np.integer)) or rows < 1:
        raise GenerationError(f"rows must be a positive integer, got {rows!r}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise GenerationError(f"seed must be a non-negative integer, got {seed!r}")
    try:
        fractions = tuple(float(x) for x in split)
    except (TypeError, ValueError):
        raise GenerationError(
            f"split must be three fractions like 0.7,0.15,0.15, got {split!r}"
        ) from None
    if len(fractions) != 3 or any(not 0 < f < 1 for f in fractions):
        raise GenerationError(
            f"split must be three fractions in (0, 1) for train,val,test, got {split!r}"
        )
    if abs(sum(fractions) - 1.0) > 1e-6:
        raise GenerationError(
            f"split fractions must sum to 1, got {split!r} (sum {sum(fractions):.4g})"
        )
    counts = split_counts(int(rows), (fractions[0], fractions[1], fractions[2]))
    empty = [name for name, n in counts.items() if n < 1]
    if empty:
        raise GenerationError(
            f"--rows {rows} leaves split(s) {empty} with no rows; use more rows "
            f"(at least {int(np.ceil(1 / min(fractions)))} for split {split!r})"
        )
    return fractions[0], fractions[1], fractions[2]


def _chunks(n: int) -> Iterator[tuple[int, int]]:
    for index, start in enumerate(range(0, n, CHUNK_ROWS)):
        yield index, min(CHUNK_ROWS, n - start)


def generate_split(
    world: World, seed: int, split_index: int, n: int
) -> Iterator[tuple[pa.Table, FloatArray]]:
    """Yield ``(table, true_probability)`` chunk by chunk for one split."""
    for chunk_index, size in _chunks(n):
        rng = np.random.default_rng(np.random.SeedSequence([seed, split_index, chunk_index]))
        r = _draw_rows(world, rng, size)
        p = _sigmoid(_logit(world, r))
        label = rng.random(size) < p
        yield _to_table(r, label), p


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _check_target(out_dir: Path, overwrite: bool) -> None:
    if out_dir.exists() and not out_dir.is_dir():
        raise GenerationError(f"{out_dir} exists and is not a directory; choose another --out")
    if out_dir.is_dir() and any(out_dir.iterdir()) and not overwrite:
        raise GenerationError(
            f"{out_dir} already exists and is not empty; pass --overwrite to replace it "
            "(or --out to write elsewhere)"
        )


def _remove_stale_temp_dirs(out_dir: Path) -> None:
    """Remove temp dirs left beside ``out_dir`` by generator processes that have died."""
    for stale in out_dir.parent.glob(f".{out_dir.name}.tmp-*"):
        try:
            pid = int(stale.name.rsplit(".tmp-", 1)[1].split("-", 1)[0])
        except ValueError:
            continue
        if pid == os.getpid():
            continue
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            shutil.rmtree(stale, ignore_errors=True)
        except PermissionError:
            pass


def generate_features(
    out_dir: str | os.PathLike[str] | None = None,
    rows: int = DEFAULT_ROWS,
    seed: int = DEFAULT_SEED,
    split: tuple[float, float, float] = DEFAULT_SPLIT,
    overwrite: bool = False,
    *,
    world_seed: int = DEFAULT_WORLD_SEED,
) -> dict[str, Any]:
    """Generate ``{train,val,test}/data.parquet`` and ``schema.json`` atomically.

    The data is built in a temp directory beside ``out_dir``, flushed to disk and
    renamed into place, so ``out_dir`` is either absent, the old data, or complete.

    Args:
        out_dir: target directory (default ``ml.paths.FEATURES_DIR``; relative paths
            resolve against the base directory).
        rows: total rows over the three splits.
        seed: row seed; the same seed gives byte-identical files.
        split: train/val/test fractions, each in (0, 1), summing to 1.
        overwrite: replace an existing non-empty ``out_dir``.
        world_seed: seed of the world's parameters (keep the default to compare runs).

    Returns:
        ``{"features_dir", "paths" (split -> file), "rows" (split -> count),
        "base_ctr", "positives", "oracle_auc" (val/test), "seconds", "seed",
        "world_seed"}``.

    Raises:
        GenerationError: bad arguments, or ``out_dir`` exists and is not empty
            without ``overwrite``.
    """
    start = time.perf_counter()
    fractions = _check_args(rows, seed, split)
    if isinstance(world_seed, bool) or not isinstance(world_seed, (int, np.integer)):
        raise GenerationError(f"world_seed must be an integer, got {world_seed!r}")
    target = paths.resolve(out_dir if out_dir is not None else paths.FEATURES_DIR)
    _check_target(target, overwrite)
    target.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale_temp_dirs(target)
    counts = split_counts(int(rows), fractions)
    world = build_world(int(world_seed))

    tmp = target.parent / f".{target.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    tmp.mkdir()
    try:
        positives: dict[str, int] = {}
        oracle: dict[str, float] = {}
        for split_index, name in enumerate(SPLITS):
            positives[name], auc = _write_split(
                world,
                int(seed),
                split_index,
                counts[name],
                split_path(tmp, name),
                keep_scores=name != "train",
            )
            if auc is not None:
                oracle[name] = auc
        total_pos = sum(positives.values())
        schema = {
            **DEFAULT_SPEC.to_dict(),
            "splits": list(SPLITS),
            "rows": counts,
            "positives": positives,
            "base_ctr": round(total_pos / int(rows), 6),
            "oracle_auc": {k: round(v, 6) for k, v in oracle.items()},
            "generator": {
                "name": "ml.data.generate",
                "version": GENERATOR_VERSION,
                "seed": int(seed),
                "world_seed": int(world_seed),
                "split": list(fractions),
                "chunk_rows": CHUNK_ROWS,
                "target_ctr": TARGET_CTR,
            },
            "seed": int(seed),
            "world_seed": int(world_seed),
        }
        (tmp / SCHEMA_FILE).write_text(json.dumps(schema, indent=2) + "\n")
        _fsync(tmp / SCHEMA_FILE)
        for name in SPLITS:
            _fsync(tmp / name)
        _fsync(tmp)
        _replace_dir(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return {
        "features_dir": str(target),
        "paths": {name: str(split_path(target, name)) for name in SPLITS},
        "schema": str(target / SCHEMA_FILE),
        "rows": counts,
        "positives": positives,
        "base_ctr": schema["base_ctr"],
        "oracle_auc": schema["oracle_auc"],
        "seed": int(seed),
        "world_seed": int(world_seed),
        "seconds": round(time.perf_counter() - start, 3),
    }


def _write_split(
    world: World, seed: int, split_index: int, n: int, path: Path, *, keep_scores: bool
) -> tuple[int, float | None]:
    path.parent.mkdir(parents=True)
    positives = 0
    scores: list[FloatArray] = []
    labels: list[npt.NDArray[Any]] = []
    writer: pq.ParquetWriter | None = None
    try:
        for table, p in generate_split(world, seed, split_index, n):
            if writer is None:
                writer = pq.ParquetWriter(path, table.schema, compression="zstd")
            writer.write_table(table, row_group_size=table.num_rows)
            label = table.column("click").to_numpy()
            positives += int(label.sum())
            if keep_scores:
                scores.append(p)
                labels.append(label)
    finally:
        if writer is not None:
            writer.close()
    _fsync(path)
    auc = roc_auc(np.concatenate(labels), np.concatenate(scores)) if keep_scores else None
    return positives, auc


def _replace_dir(tmp: Path, target: Path) -> None:
    """Rename ``tmp`` to ``target``, moving an existing ``target`` aside first."""
    old: Path | None = None
    if target.exists():
        old = target.parent / f".{target.name}.old-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        target.rename(old)
    try:
        tmp.rename(target)
    except BaseException:
        if old is not None:
            old.rename(target)
        raise
    _fsync(target.parent)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def describe(report: Mapping[str, Any]) -> list[str]:
    """Human-readable summary lines of a :func:`generate_features` report."""
    base = paths.base_dir()
    lines = []
    for name in SPLITS:
        path = Path(report["paths"][name])
        shown = path.relative_to(base) if path.is_relative_to(base) else path
        n = report["rows"][name]
        pos = report["positives"][name]
        lines.append(f"✅ {name}: {shown} ({n:,} rows, CTR {pos / max(n, 1):.2%})")
    oracle = report.get("oracle_auc", {})
    lines.append(
        f"   base CTR {report['base_ctr']:.2%}, oracle AUC "
        + ", ".join(f"{k} {v:.4f}" for k, v in oracle.items())
        + f", seed {report['seed']}, world seed {report['world_seed']}"
        + f" ({report['seconds']:.1f} s)"
    )
    return lines
