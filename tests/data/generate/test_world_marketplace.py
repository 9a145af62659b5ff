from __future__ import annotations

import numpy as np
import pyarrow as pa

from ml.data.generate import world_marketplace as wm
from ml.data.generate.catalog import build_world, get_world
from ml.data.generate.world import sigmoid, to_table


def _rows(n: int = 200_000):  # type: ignore[no-untyped-def]
    world = get_world("marketplace")
    params = build_world("marketplace", 1)
    return world, params, world.draw(params, np.random.default_rng(0), n)


def test_marketplace_ids_are_long_tailed_and_many() -> None:
    _, _, rows = _rows()
    users = np.bincount(rows["user_id"])
    items = np.bincount(rows["item_id"])
    # Hundreds of thousands of levels; 200k rows see tens of thousands, most of them once.
    assert wm.N_USERS >= 300_000 and wm.N_ITEMS >= 300_000
    assert (users > 0).sum() > 30_000 and (items > 0).sum() > 30_000
    assert (users == 1).sum() > 0.5 * (users > 0).sum()
    # ... while the head is seen often enough to learn.
    assert np.sort(items)[-100] > 50


def test_marketplace_context_fields_are_few_levels() -> None:
    columns = {c.name: c for c in wm.COLUMNS}
    context = ("region", "device", "page_type", "position", "hour")
    assert set(context) <= set(get_world("marketplace").spec.categorical)
    assert all(len(columns[c].levels) or columns[c].size for c in context)
    assert all(max(len(columns[c].levels), columns[c].size) <= 24 for c in context)


def test_marketplace_rating_has_nulls_and_tracks_quality() -> None:
    world, params, rows = _rows(50_000)
    table = to_table(world, rows, np.zeros(50_000, dtype=bool))
    assert table["item_rating"].null_count > 0
    assert table.schema.field("user_orders").type == pa.int64()
    rated = ~np.isnan(params.item_rating)
    corr = np.corrcoef(params.item_rating[rated], params.item_effect[rated])[0, 1]
    assert corr > 0.5


def test_marketplace_position_effect_falls_on_every_device() -> None:
    world, params, rows = _rows(100_000)
    p = sigmoid(world.logit(params, rows))
    top = p[rows["position"] == 0].mean()
    bottom = p[rows["position"] == wm.N_POSITIONS - 1].mean()
    assert top > 1.5 * bottom
    assert 0.02 < p.mean() < 0.05
