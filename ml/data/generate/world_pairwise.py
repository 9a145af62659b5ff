"""Pairwise world: clicks driven mainly by pairs of ids, ~8% CTR.

Made for issue 25: a data set on which a one-hot logistic regression is weak and a model
of pairwise interactions (a factorization machine) is strong, as on real click logs where
what matters is *who* sees *what* *where*, not any one of them alone.

- Users (5k, Zipf 0.6) and items (1k, Zipf 0.6): few rows per id at small sizes (a
  median of 2 rows per user at 10k rows, 13 at 100k), each with a weak own effect (std
  0.15).
- Contexts (placements, 100, Zipf 0.8), device (4), hour (24): weak single-field effects.
- The truth: ``1.3 * <u, i> / sqrt(4)`` (a rank-4 user × item taste, zero-mean vectors so
  no user or item is good on average) ``+ 0.9 * <i', c> / sqrt(3)`` (a rank-3 item ×
  context fit), plus the weak effects and a slot fall-off (numeric ``position``);
  ``user_tenure_days`` is noise.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ml.data.generate.world import (
    Column,
    FloatArray,
    Rows,
    WorldDef,
    cdf_of,
    sample,
    zipf_cdf,
)

N_USERS = 5_000
N_ITEMS = 1_000
N_CONTEXTS = 100
USER_ITEM_RANK = 4
ITEM_CONTEXT_RANK = 3
USER_ITEM_SCALE = 1.3
ITEM_CONTEXT_SCALE = 0.9
SINGLE_STD = 0.15
DEVICES = ("phone", "tablet", "desktop", "tv")
N_POSITIONS = 8

COLUMNS = (
    Column.ids("user_id", N_USERS),
    Column.ids("item_id", N_ITEMS),
    Column.ids("context_id", N_CONTEXTS),
    Column.strings("device", DEVICES),
    Column.ids("hour", 24, offset=0),
    Column.number("position", integer=True),
    Column.number("user_tenure_days", integer=True),
)


@dataclass(frozen=True)
class PairwiseWorld:
    user_cdf: FloatArray
    user_effect: FloatArray
    user_vector: FloatArray  # (users, USER_ITEM_RANK)
    item_cdf: FloatArray
    item_effect: FloatArray
    item_vector: FloatArray  # (items, USER_ITEM_RANK): taste, against users
    item_fit: FloatArray  # (items, ITEM_CONTEXT_RANK): fit, against contexts
    context_cdf: FloatArray
    context_effect: FloatArray
    context_vector: FloatArray  # (contexts, ITEM_CONTEXT_RANK)
    device_effect: FloatArray
    hour_effect: FloatArray
    user_tenure: FloatArray
    intercept: float = 0.0


def build(rng: np.random.Generator) -> PairwiseWorld:
    """Draw the population, the low-rank tastes and the weak single-field effects."""
    return PairwiseWorld(
        user_cdf=zipf_cdf(rng, N_USERS, 0.6),
        user_effect=rng.normal(0.0, SINGLE_STD, N_USERS),
        user_vector=rng.normal(0.0, 1.0, (N_USERS, USER_ITEM_RANK)),
        item_cdf=zipf_cdf(rng, N_ITEMS, 0.6),
        item_effect=rng.normal(0.0, SINGLE_STD, N_ITEMS),
        item_vector=rng.normal(0.0, 1.0, (N_ITEMS, USER_ITEM_RANK)),
        item_fit=rng.normal(0.0, 1.0, (N_ITEMS, ITEM_CONTEXT_RANK)),
        context_cdf=zipf_cdf(rng, N_CONTEXTS, 0.8),
        context_effect=rng.normal(0.0, SINGLE_STD, N_CONTEXTS),
        context_vector=rng.normal(0.0, 1.0, (N_CONTEXTS, ITEM_CONTEXT_RANK)),
        device_effect=rng.normal(0.0, 0.1, len(DEVICES)),
        hour_effect=rng.normal(0.0, 0.05, 24),
        user_tenure=np.rint(rng.exponential(300.0, N_USERS)),
    )


def draw(w: PairwiseWorld, rng: np.random.Generator, n: int) -> Rows:
    """``n`` impressions: a user, an item, a placement and the device and hour."""
    user = sample(w.user_cdf, rng, n)
    return {
        "user_id": user,
        "item_id": sample(w.item_cdf, rng, n),
        "context_id": sample(w.context_cdf, rng, n),
        "device": sample(cdf_of([0.6, 0.15, 0.2, 0.05]), rng, n),
        "hour": rng.integers(0, 24, n),
        "position": rng.integers(1, N_POSITIONS + 1, n).astype(np.float64),
        "user_tenure_days": w.user_tenure[user],
    }


def pair_terms(w: PairwiseWorld, r: Rows) -> tuple[FloatArray, FloatArray]:
    """The user × item and item × context terms of each row's logit."""
    user, item, context = r["user_id"], r["item_id"], r["context_id"]
    taste = np.einsum("ij,ij->i", w.user_vector[user], w.item_vector[item])
    fit = np.einsum("ij,ij->i", w.item_fit[item], w.context_vector[context])
    return (
        USER_ITEM_SCALE * taste / np.sqrt(USER_ITEM_RANK),
        ITEM_CONTEXT_SCALE * fit / np.sqrt(ITEM_CONTEXT_RANK),
    )


def logit(w: PairwiseWorld, r: Rows) -> FloatArray:
    """The true logit of each impression."""
    taste, fit = pair_terms(w, r)
    out = (
        w.intercept
        + taste
        + fit
        + w.user_effect[r["user_id"]]
        + w.item_effect[r["item_id"]]
        + w.context_effect[r["context_id"]]
        + w.device_effect[r["device"]]
        + w.hour_effect[r["hour"]]
        - 0.1 * np.log(r["position"])
    )
    return np.asarray(out, dtype=np.float64)


DESCRIPTION = (
    "pairs of ids: 5k users, 1k items, 100 placements, ~8% CTR, rank-4 user x item "
    "and rank-3 item x placement truth, weak single-field effects"
)
WORLD = WorldDef("pairwise", 1, DESCRIPTION, 0.08, COLUMNS, build, draw, logit, salt=0x9A1F)
