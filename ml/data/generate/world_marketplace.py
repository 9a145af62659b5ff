"""Marketplace world: sponsored products in an online shop, 400k users, 500k items, ~3.5% CTR.

Shaped like public e-commerce ad logs: long-tailed ids whose large effects only frequent
levels reveal, a few low-cardinality context fields, side information that generalises to
the tail, and crosses a model has to find.

- Users (Zipf 0.85 over 400k) have a propensity (``user_effect``, std 0.4), a segment
  (gender x age band, 10) and a 4-d taste vector, part their segment's and part their own;
  ``user_orders`` is a noisy count that reveals part of the propensity.
- Items (Zipf 0.95 over 500k) have a quality (std 0.45), a category (300, Zipf), a brand
  (40k, Zipf) and a taste vector near their category's; ``item_rating`` (null for items
  without reviews) is a noisy view of the quality, ``item_price`` a log-normal price around
  the category's median.
- Context: device (3), page type (4), slot position (1-10), hour (24), region (12).

Logit = intercept + user, item, brand and category effects + the user x item taste
affinity (learnable as user_segment x category; the rest only for frequent users and
items) + a slot fall-off whose steepness depends on the device (device x position) +
per-region price sensitivity to the price relative to the category median (region x
price) + a region x category affinity + page and hour effects.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ml.data.generate.world import (
    Column,
    FloatArray,
    IntArray,
    Rows,
    WorldDef,
    cdf_of,
    sample,
    zipf_cdf,
)

N_USERS = 400_000
N_ITEMS = 500_000
N_CATEGORIES = 300
N_BRANDS = 40_000
RANK = 4
DEVICES = ("app", "mobile_web", "desktop")
PAGES = ("search", "category", "product", "home")
N_POSITIONS = 10
REGIONS = tuple(f"region_{i:02d}" for i in range(12))
SEGMENTS = tuple(
    f"{g}_{a}" for g in ("f", "m") for a in ("18-24", "25-34", "35-44", "45-59", "60+")
)

COLUMNS = (
    Column.ids("user_id", N_USERS),
    Column.ids("item_id", N_ITEMS),
    Column.ids("brand_id", N_BRANDS),
    Column.ids("category_id", N_CATEGORIES),
    Column.strings("user_segment", SEGMENTS),
    Column.strings("region", REGIONS),
    Column.strings("device", DEVICES),
    Column.strings("page_type", PAGES),
    Column.ids("position", N_POSITIONS),
    Column.ids("hour", 24, offset=0),
    Column.number("item_price"),
    Column.number("item_rating", nullable=True),
    Column.number("user_orders", integer=True),
)


@dataclass(frozen=True)
class MarketplaceWorld:
    user_cdf: FloatArray
    user_effect: FloatArray
    user_taste: FloatArray  # (users, RANK)
    user_segment: IntArray
    user_region: IntArray
    user_orders: IntArray
    item_cdf: FloatArray
    item_effect: FloatArray
    item_taste: FloatArray  # (items, RANK)
    item_category: IntArray
    item_brand: IntArray
    item_price: FloatArray
    item_rating: FloatArray  # NaN: no reviews yet
    category_effect: FloatArray
    category_median_price: FloatArray
    brand_effect: FloatArray
    device_cdf: FloatArray
    page_cdf: FloatArray
    position_cdf: FloatArray
    hour_cdf: FloatArray
    main_page: FloatArray
    main_hour: FloatArray
    position_decay: FloatArray  # per device
    price_sensitivity: FloatArray  # per region
    region_category: FloatArray  # (regions, categories), rank 1
    intercept: float = 0.0


def build(rng: np.random.Generator) -> MarketplaceWorld:
    """Draw the marketplace's population and effects."""
    user_effect = rng.normal(0.0, 0.4, N_USERS)
    user_segment = sample(
        cdf_of([0.1, 0.14, 0.12, 0.08, 0.05, 0.1, 0.15, 0.12, 0.09, 0.05]), rng, N_USERS
    )
    segment_taste = rng.normal(0.0, 1.0, (len(SEGMENTS), RANK))
    category_taste = rng.normal(0.0, 1.0, (N_CATEGORIES, RANK))
    item_category = sample(zipf_cdf(rng, N_CATEGORIES, 0.9), rng, N_ITEMS)
    item_effect = rng.normal(0.0, 0.45, N_ITEMS)
    median_price = np.exp(rng.uniform(np.log(3.0), np.log(400.0), N_CATEGORIES))
    rating = np.clip(4.0 + 1.3 * item_effect + rng.normal(0.0, 0.45, N_ITEMS), 1.0, 5.0)
    rating[rng.random(N_ITEMS) < 0.25] = np.nan
    hours = np.arange(24)
    return MarketplaceWorld(
        user_cdf=zipf_cdf(rng, N_USERS, 0.85),
        user_effect=user_effect,
        # A user's taste: their segment's, plus their own.
        user_taste=0.75 * segment_taste[user_segment] + rng.normal(0.0, 0.66, (N_USERS, RANK)),
        user_segment=user_segment,
        user_region=sample(zipf_cdf(rng, len(REGIONS), 0.8), rng, N_USERS),
        user_orders=rng.poisson(np.exp(1.2 + 1.5 * user_effect + rng.normal(0, 0.6, N_USERS))),
        item_cdf=zipf_cdf(rng, N_ITEMS, 0.95),
        item_effect=item_effect,
        item_taste=0.8 * category_taste[item_category] + rng.normal(0.0, 0.6, (N_ITEMS, RANK)),
        item_category=item_category,
        item_brand=sample(zipf_cdf(rng, N_BRANDS, 1.0), rng, N_ITEMS),
        item_price=np.round(np.exp(rng.normal(np.log(median_price[item_category]), 0.6)), 2).astype(
            np.float64
        ),
        item_rating=np.round(rating, 1),
        category_effect=rng.normal(0.0, 0.3, N_CATEGORIES),
        category_median_price=median_price,
        brand_effect=rng.normal(0.0, 0.3, N_BRANDS),
        device_cdf=cdf_of([0.55, 0.30, 0.15]),
        page_cdf=cdf_of([0.45, 0.20, 0.20, 0.15]),
        position_cdf=cdf_of(0.8 ** np.arange(N_POSITIONS)),
        hour_cdf=cdf_of(1.0 + 0.7 * np.cos(2 * np.pi * (hours - 21) / 24)),
        main_page=np.array([0.35, 0.0, 0.15, -0.4]) + rng.normal(0.0, 0.05, len(PAGES)),
        main_hour=0.15 * np.cos(2 * np.pi * (hours - 21) / 24),
        position_decay=np.array([0.45, 0.6, 0.3]) * rng.uniform(0.8, 1.2, len(DEVICES)),
        price_sensitivity=rng.uniform(0.2, 0.8, len(REGIONS)),
        region_category=np.outer(rng.normal(0, 1, len(REGIONS)), rng.normal(0, 0.3, N_CATEGORIES)),
    )


def draw(w: MarketplaceWorld, rng: np.random.Generator, n: int) -> Rows:
    """``n`` sponsored-product impressions."""
    user = sample(w.user_cdf, rng, n)
    item = sample(w.item_cdf, rng, n)
    return {
        "user_id": user,
        "item_id": item,
        "brand_id": w.item_brand[item],
        "category_id": w.item_category[item],
        "user_segment": w.user_segment[user],
        "region": w.user_region[user],
        "device": sample(w.device_cdf, rng, n),
        "page_type": sample(w.page_cdf, rng, n),
        "position": sample(w.position_cdf, rng, n),
        "hour": sample(w.hour_cdf, rng, n),
        "item_price": w.item_price[item],
        "item_rating": w.item_rating[item],
        "user_orders": w.user_orders[user].astype(np.float64),
    }


def logit(w: MarketplaceWorld, r: Rows) -> FloatArray:
    """The true logit of each impression."""
    user, item, cat = r["user_id"], r["item_id"], r["category_id"]
    region = r["region"]
    affinity = np.einsum("ij,ij->i", w.user_taste[user], w.item_taste[item]) / np.sqrt(RANK)
    relative_price = np.log(np.maximum(r["item_price"], 0.01) / w.category_median_price[cat])
    out = (
        w.intercept
        + w.user_effect[user]
        + w.item_effect[item]
        + w.brand_effect[r["brand_id"]]
        + w.category_effect[cat]
        + 0.7 * affinity
        - w.position_decay[r["device"]] * np.log1p(r["position"].astype(np.float64))
        - w.price_sensitivity[region] * relative_price
        + w.region_category[region, cat]
        + w.main_page[r["page_type"]]
        + w.main_hour[r["hour"]]
    )
    return np.asarray(out, dtype=np.float64)


DESCRIPTION = (
    "sponsored products, 400k users, 500k items (Zipf), ~3.5% CTR, "
    "large id effects, user x item taste, device x position, region x price"
)
WORLD = WorldDef("marketplace", 1, DESCRIPTION, 0.035, COLUMNS, build, draw, logit, salt=0x3A2C)
