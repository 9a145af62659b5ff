"""Feed world: a news and short-video feed, 500k users, 200k items, ~12% CTR.

Shaped like public feed-recommendation logs: personal interest is the main signal, seen
through ids and a topic, fresh items win, and the context changes what works.

- Users (Zipf 0.85 over 500k) have a propensity (std 0.4) and a 6-d interest vector;
  country (25), age bucket (6) and OS (4) are observed; ``user_follows`` is a noisy count
  that reveals part of the propensity.
- Items (Zipf 0.95 over 200k) have a quality (std 0.4), a topic (40, Zipf), a creator (25k,
  Zipf; ``creator_followers`` grows with the creator's appeal), a duration (log-normal by
  topic) and an age in hours when shown.
- Context: network (4), hour (24), feed slot (1-20).

Logit = intercept + user, item and creator effects + the user x item interest match
(mostly user x topic) + country x topic and age bucket x topic affinities (rank 2) +
freshness decay + a duration penalty that depends on the network (duration x network)
+ a morning/evening profile per topic (hour x topic, rank 1) + an OS effect + slot
fall-off.
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

N_USERS = 500_000
N_ITEMS = 200_000
N_CREATORS = 25_000
N_TOPICS = 40
RANK = 6
COUNTRIES = tuple(f"country_{i:02d}" for i in range(25))
AGE_BUCKETS = ("13-17", "18-24", "25-34", "35-44", "45-54", "55+")
OSES = ("android", "ios", "web", "other")
NETWORKS = ("wifi", "5g", "4g", "3g")
N_SLOTS = 20

COLUMNS = (
    Column.ids("user_id", N_USERS),
    Column.ids("item_id", N_ITEMS),
    Column.ids("creator_id", N_CREATORS),
    Column.ids("topic", N_TOPICS),
    Column.strings("country", COUNTRIES),
    Column.strings("age_bucket", AGE_BUCKETS),
    Column.strings("os", OSES),
    Column.strings("network", NETWORKS),
    Column.ids("hour", 24, offset=0),
    Column.ids("slot", N_SLOTS),
    Column.number("item_age_hours"),
    Column.number("duration_s", integer=True),
    Column.number("creator_followers", integer=True),
    Column.number("user_follows", integer=True),
)


@dataclass(frozen=True)
class FeedWorld:
    user_cdf: FloatArray
    user_effect: FloatArray
    user_interest: FloatArray  # (users, RANK)
    user_country: IntArray
    user_age: IntArray
    user_os: IntArray
    user_follows: IntArray
    item_cdf: FloatArray
    item_effect: FloatArray
    item_vector: FloatArray  # (items, RANK)
    item_topic: IntArray
    item_creator: IntArray
    item_duration: IntArray
    creator_effect: FloatArray
    creator_followers: IntArray
    network_cdf: FloatArray
    hour_cdf: FloatArray
    slot_cdf: FloatArray
    country_topic: FloatArray  # (countries, topics), rank 2
    age_topic: FloatArray  # (age buckets, topics), rank 2
    hour_topic: FloatArray  # (hours, topics), rank 1
    network_slowness: FloatArray  # per network
    main_os: FloatArray
    intercept: float = 0.0


def _low_rank(
    rng: np.random.Generator, rows: int, cols: int, rank: int, scale: float
) -> FloatArray:
    """A ``rows x cols`` table of rank ``rank`` with entries of std ``scale``."""
    out = rng.normal(0, 1, (rows, rank)) @ rng.normal(0, 1, (rank, cols))
    return np.asarray(scale * out / np.sqrt(rank), dtype=np.float64)


def build(rng: np.random.Generator) -> FeedWorld:
    """Draw the feed's population and effects."""
    user_effect = rng.normal(0.0, 0.4, N_USERS)
    topic_vector = rng.normal(0.0, 1.0, (N_TOPICS, RANK))
    item_topic = sample(zipf_cdf(rng, N_TOPICS, 0.8), rng, N_ITEMS)
    creator_effect = rng.normal(0.0, 0.35, N_CREATORS)
    topic_duration = np.exp(rng.uniform(np.log(20.0), np.log(600.0), N_TOPICS))
    followers = np.exp(7.0 + 2.5 * creator_effect / 0.35 + rng.normal(0, 1.5, N_CREATORS))
    hours = np.arange(24)
    return FeedWorld(
        user_cdf=zipf_cdf(rng, N_USERS, 0.85),
        user_effect=user_effect,
        user_interest=rng.normal(0.0, 1.0, (N_USERS, RANK)),
        user_country=sample(zipf_cdf(rng, len(COUNTRIES), 1.0), rng, N_USERS),
        user_age=sample(cdf_of([0.08, 0.27, 0.3, 0.18, 0.1, 0.07]), rng, N_USERS),
        user_os=sample(cdf_of([0.55, 0.35, 0.08, 0.02]), rng, N_USERS),
        user_follows=rng.poisson(np.exp(2.0 + 1.5 * user_effect + rng.normal(0, 0.7, N_USERS))),
        item_cdf=zipf_cdf(rng, N_ITEMS, 0.95),
        item_effect=rng.normal(0.0, 0.4, N_ITEMS),
        item_vector=topic_vector[item_topic] + rng.normal(0.0, 0.5, (N_ITEMS, RANK)),
        item_topic=item_topic,
        item_creator=sample(zipf_cdf(rng, N_CREATORS, 1.1), rng, N_ITEMS),
        item_duration=np.maximum(
            3, np.rint(np.exp(rng.normal(np.log(topic_duration[item_topic]), 0.7)))
        ).astype(np.int64),
        creator_effect=creator_effect,
        creator_followers=np.rint(followers).astype(np.int64),
        network_cdf=cdf_of([0.55, 0.15, 0.25, 0.05]),
        hour_cdf=cdf_of(1.0 + 0.8 * np.cos(2 * np.pi * (hours - 20) / 24)),
        slot_cdf=cdf_of(0.9 ** np.arange(N_SLOTS)),
        country_topic=_low_rank(rng, len(COUNTRIES), N_TOPICS, 2, 0.35),
        age_topic=_low_rank(rng, len(AGE_BUCKETS), N_TOPICS, 2, 0.45),
        hour_topic=np.outer(np.cos(2 * np.pi * (hours - 8) / 24), rng.normal(0, 0.3, N_TOPICS)),
        network_slowness=np.array([0.0, 0.05, 0.2, 0.5]),
        main_os=rng.normal(0.0, 0.15, len(OSES)),
    )


def draw(w: FeedWorld, rng: np.random.Generator, n: int) -> Rows:
    """``n`` feed impressions."""
    user = sample(w.user_cdf, rng, n)
    item = sample(w.item_cdf, rng, n)
    creator = w.item_creator[item]
    return {
        "user_id": user,
        "item_id": item,
        "creator_id": creator,
        "topic": w.item_topic[item],
        "country": w.user_country[user],
        "age_bucket": w.user_age[user],
        "os": w.user_os[user],
        "network": sample(w.network_cdf, rng, n),
        "hour": sample(w.hour_cdf, rng, n),
        "slot": sample(w.slot_cdf, rng, n),
        "item_age_hours": np.round(rng.exponential(20.0, n), 1),
        "duration_s": w.item_duration[item].astype(np.float64),
        "creator_followers": w.creator_followers[creator].astype(np.float64),
        "user_follows": w.user_follows[user].astype(np.float64),
    }


def logit(w: FeedWorld, r: Rows) -> FloatArray:
    """The true logit of each impression."""
    user, item, topic = r["user_id"], r["item_id"], r["topic"]
    match = np.einsum("ij,ij->i", w.user_interest[user], w.item_vector[item]) / np.sqrt(RANK)
    long_video = np.log(np.maximum(r["duration_s"], 1.0) / 60.0)
    out = (
        w.intercept
        + w.user_effect[user]
        + w.item_effect[item]
        + w.creator_effect[r["creator_id"]]
        + 0.6 * match
        + w.country_topic[r["country"], topic]
        + w.age_topic[r["age_bucket"], topic]
        + w.hour_topic[r["hour"], topic]
        - 0.35 * np.log1p(np.maximum(r["item_age_hours"], 0.0) / 3.0)
        - w.network_slowness[r["network"]] * np.maximum(long_video, 0.0)
        + w.main_os[r["os"]]
        - 0.3 * np.log1p(r["slot"].astype(np.float64))
    )
    return np.asarray(out, dtype=np.float64)


DESCRIPTION = (
    "news and video feed, 500k users, 200k items (Zipf), ~12% CTR, "
    "user x topic interest, freshness, duration x network, hour x topic"
)
WORLD = WorldDef("feed", 1, DESCRIPTION, 0.12, COLUMNS, build, draw, logit, salt=0xFEED)
