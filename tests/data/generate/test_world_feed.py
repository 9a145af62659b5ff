from __future__ import annotations

import numpy as np

from ml.data.generate import world_feed as wf
from ml.data.generate.catalog import build_world, get_world
from ml.data.generate.world import sigmoid


def _rows(n: int = 200_000):  # type: ignore[no-untyped-def]
    world = get_world("feed")
    params = build_world("feed", 1)
    return world, params, world.draw(params, np.random.default_rng(0), n)


def test_feed_ids_are_long_tailed_and_many() -> None:
    _, _, rows = _rows()
    users = np.bincount(rows["user_id"])
    assert wf.N_USERS >= 300_000 and wf.N_ITEMS >= 100_000
    assert (users > 0).sum() > 30_000
    assert (users == 1).sum() > 0.5 * (users > 0).sum()
    assert users.max() < 0.05 * len(rows["user_id"])  # no single user dominates


def test_feed_fresh_items_are_clicked_more() -> None:
    world, params, rows = _rows(100_000)
    p = sigmoid(world.logit(params, rows))
    age = rows["item_age_hours"]
    assert p[age < 2].mean() > 1.3 * p[age > 48].mean()
    assert 0.09 < p.mean() < 0.15


def test_feed_long_videos_hurt_more_on_slow_networks() -> None:
    world, params, rows = _rows(100_000)
    base = world.logit(params, rows)
    longer = dict(rows, duration_s=rows["duration_s"] * 4)
    drop = base - world.logit(params, longer)
    wifi = rows["network"] == wf.NETWORKS.index("wifi")
    slow = rows["network"] == wf.NETWORKS.index("3g")
    assert drop[slow].mean() > drop[wifi].mean() + 0.2


def test_feed_spec_differs_from_default() -> None:
    spec = get_world("feed").spec
    assert "creator_id" in spec.categorical and "item_age_hours" in spec.numeric
    assert "advertiser_id" not in spec.categorical
