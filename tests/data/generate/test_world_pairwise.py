from __future__ import annotations

import numpy as np

from ml.data.generate import world_pairwise as wp
from ml.data.generate.catalog import build_world, get_world
from ml.data.generate.world import sigmoid
from ml.metrics import roc_auc


def _rows(n: int = 100_000):  # type: ignore[no-untyped-def]
    world = get_world("pairwise")
    params = build_world("pairwise", 1)
    rows = world.draw(params, np.random.default_rng(0), n)
    z = world.logit(params, rows)
    y = np.random.default_rng(1).random(n) < sigmoid(z)
    return world, params, rows, z, y


def test_pairwise_labels_come_mainly_from_the_pairs() -> None:
    _, params, rows, z, y = _rows()
    taste, fit = wp.pair_terms(params, rows)
    oracle = roc_auc(y, z)
    assert roc_auc(y, taste + fit) > oracle - 0.01  # the pairs alone nearly the truth
    assert roc_auc(y, z - taste - fit) < 0.6  # every single-field effect together: weak
    assert roc_auc(y, taste) > 0.7 and roc_auc(y, fit) > 0.6  # both pairs matter


def test_pairwise_no_user_or_item_is_good_on_average() -> None:
    _, params, rows, _, _ = _rows()
    taste, _ = wp.pair_terms(params, rows)
    per_user = np.bincount(rows["user_id"], weights=taste) / np.maximum(
        np.bincount(rows["user_id"]), 1
    )
    busy = np.bincount(rows["user_id"]) >= 50
    assert np.abs(per_user[busy]).mean() < 0.25 * np.abs(taste).mean()


def test_pairwise_few_rows_per_id_and_its_base_rate() -> None:
    _, _, rows, z, _ = _rows()
    users = np.bincount(rows["user_id"])
    seen = users[users > 0]
    assert np.median(seen) <= 20 and len(seen) > 0.9 * wp.N_USERS
    assert 0.06 < sigmoid(z).mean() < 0.1


def test_pairwise_spec_differs_from_default() -> None:
    spec = get_world("pairwise").spec
    assert "context_id" in spec.categorical and "user_tenure_days" in spec.numeric
    assert "advertiser_id" not in spec.categorical
