"""`profile_lists`: how personal a fitted model's lists are (what `serendip fit` reports)."""

from __future__ import annotations

import numpy as np
import pytest

from serendip.data.dataset import Dataset
from serendip.errors import ConfigError
from serendip.evaluation.metrics import novelty
from serendip.evaluation.personal import profile_lists
from serendip.models.registry import create_model


def test_popularity_lists_are_one_list_and_a_neighbourhood_model_is_personal(
    toy_platform: Dataset,
) -> None:
    pop = profile_lists(create_model("popularity").fit(toy_platform))
    assert pop.n_users == toy_platform.n_users and not pop.sampled and pop.k == 10
    # everyone's top 10 holds the most popular item, unless they have seen it
    top = toy_platform.items.index(str(pop.top_item))
    seen = np.asarray(toy_platform.seen()[:, top].todense()).ravel() > 0
    assert pop.top_item_share == pytest.approx(1.0 - seen.mean())
    knn = profile_lists(create_model("item-knn", {"k": 20}).fit(toy_platform))
    assert knn.top_item_share < pop.top_item_share
    assert knn.coverage > pop.coverage > 0
    assert knn.novelty > pop.novelty > 0
    d = knn.to_dict()
    assert d["top_item_share@10"] == pytest.approx(knn.top_item_share, abs=1e-6)
    assert d["coverage@10"] == pytest.approx(knn.coverage, abs=1e-6) and d["users"] == 60


def test_a_sample_bounds_the_cost_and_the_numbers_are_the_metrics(
    toy_platform: Dataset,
) -> None:
    model = create_model("item-knn", {"k": 20}).fit(toy_platform)
    prof = profile_lists(model, k=5, max_users=25, seed=3)
    assert prof.sampled and prof.n_users == 25 and prof.k == 5
    users = np.sort(np.random.default_rng(3).choice(toy_platform.n_users, 25, replace=False))
    recs = model.recommend(model.users_.lookup(users), 5).items
    assert prof.coverage == pytest.approx(len(np.unique(recs[recs >= 0])) / toy_platform.n_items)
    popularity = np.bincount(model.train_.indices, minlength=toy_platform.n_items)
    expected = novelty(recs, popularity, toy_platform.n_users).mean()
    assert prof.novelty == pytest.approx(expected)
    with pytest.raises(ConfigError):
        profile_lists(model, k=0)
