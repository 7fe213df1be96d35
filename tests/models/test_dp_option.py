"""The differential-privacy option of the aggregate models: popularity, trending and item-kNN's
co-occurrence counts. Off by default (bit-identical), noisy and calibrated when on, the noise
released once at fit (updates do not add exact counts), saved and loaded as released."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from serendip.data.dataset import Dataset
from serendip.errors import CapacityError, ConfigError
from serendip.models import Recommender
from serendip.models.baselines import CategoryPopularity, Popularity, Trending
from serendip.models.neighborhood import ItemKNN
from serendip.privacy.dp import gaussian_sigma


def test_off_by_default_and_identical(toy_platform: Dataset) -> None:
    plain = Popularity().fit(toy_platform)
    assert plain.config.dp_epsilon is None and plain.dp_release_ is None
    np.testing.assert_array_equal(plain.counts_, plain.popularity_.astype(np.float64))
    a = ItemKNN(weighting="none").fit(toy_platform)
    assert a.dp_release_ is None


def test_popularity_counts_are_released_with_laplace_noise(toy_platform: Dataset) -> None:
    exact = Popularity().fit(toy_platform).counts_
    m = Popularity(dp_epsilon=1.0, dp_max_per_user=100).fit(toy_platform)
    release = m.dp_release_
    assert release is not None
    assert (release["mechanism"], release["l1_sensitivity"], release["scale"]) == (
        "laplace",
        100.0,
        100.0,
    )
    # every user has < 100 items: nothing clipped, so the noise is all the difference
    assert release["n_dropped"] == 0
    noise = m.counts_ - exact
    assert np.abs(noise).mean() > 10  # Laplace(100): mean |noise| = 100
    assert (m.popularity_ >= 0).all()  # the displayed counts are clipped at 0
    # the ranking follows the noisy counts, not the exact ones
    recs = m.recommend(["u000"], k=5, exclude_seen=False)
    assert recs.items[0].tolist() == list(np.argsort(-m.counts_, kind="stable")[:5])


def test_gaussian_and_high_epsilon_approach_the_exact_counts(toy_platform: Dataset) -> None:
    exact = Popularity().fit(toy_platform).counts_
    m = Popularity(dp_epsilon=1000.0, dp_mechanism="gaussian", dp_max_per_user=100)
    m.fit(toy_platform)
    assert m.dp_release_ is not None
    assert m.dp_release_["scale"] == pytest.approx(gaussian_sigma(10.0, 1000.0, 1e-6))
    np.testing.assert_allclose(m.counts_, exact, atol=6 * m.dp_release_["scale"])


def test_per_user_bound_clips_heavy_users(toy_platform: Dataset) -> None:
    m = Popularity(dp_epsilon=1e6, dp_max_per_user=2).fit(toy_platform)
    assert m.dp_release_ is not None
    # 60 users x at most 2 items each
    assert m.counts_.sum() == pytest.approx(2 * toy_platform.n_users, abs=1.0)
    assert m.dp_release_["n_dropped"] > 0


def test_update_does_not_add_exact_counts(toy_platform: Dataset) -> None:
    m = Popularity(dp_epsilon=1.0).fit(toy_platform)
    before = m.counts_.copy()
    m.update(pd.DataFrame({"user": ["u000"] * 3, "item": ["i000", "i001", "i002"]}))
    np.testing.assert_array_equal(m.counts_, before)
    assert m.train_[m.users_.get("u000"), m.items_.get("i001")] == 1  # still marked seen
    t = Trending(dp_epsilon=1.0).fit(toy_platform)
    before = t.counts_.copy()
    t.update(pd.DataFrame({"user": ["u000"], "item": ["i000"], "timestamp": [2e9]}))
    np.testing.assert_array_equal(t.counts_, before)


def test_trending_and_category_popularity_take_the_option(toy_platform: Dataset) -> None:
    t = Trending(dp_epsilon=0.5, dp_max_per_user=3).fit(toy_platform)
    assert t.dp_release_ is not None and t.dp_release_["l2_sensitivity"] == 3.0  # repeats allowed
    c = CategoryPopularity(dp_epsilon=0.5).fit(toy_platform)
    assert c.dp_release_ is not None


@pytest.mark.parametrize(
    "model",
    [
        lambda: Popularity(dp_epsilon=0.5),
        lambda: Trending(dp_epsilon=0.5, dp_mechanism="gaussian"),
        lambda: ItemKNN(weighting="none", dp_epsilon=2.0, dp_max_per_user=10),
    ],
)
def test_save_load_keeps_the_released_state(
    model: object, toy_platform: Dataset, tmp_path: Path
) -> None:
    m: Recommender = model()  # type: ignore[operator]
    m.fit(toy_platform)
    users = ["u001", "u002", "nobody"]
    before = m.recommend(users, k=5)
    m.save(tmp_path / "m")
    loaded = Recommender.load(tmp_path / "m")
    np.testing.assert_array_equal(loaded.recommend(users, k=5).items, before.items)
    assert loaded.dp_release_ == m.dp_release_  # type: ignore[attr-defined]


def test_item_knn_similarities_come_from_noisy_cooccurrence(toy_platform: Dataset) -> None:
    # k above the catalog: every neighbour kept (the noise would break ties differently)
    exact = ItemKNN(weighting="none", k=500).fit(toy_platform)
    loose = ItemKNN(weighting="none", k=500, dp_epsilon=1e6, dp_max_per_user=100)
    loose.fit(toy_platform)
    assert loose.dp_release_ is not None
    assert loose.dp_release_["released"] == "item x item co-occurrence counts"
    assert loose.dp_release_["l1_sensitivity"] == 100.0**2
    # negligible noise and no clipping: the same neighbours as the exact path
    np.testing.assert_allclose(loose.sim_.toarray(), exact.sim_.toarray(), atol=1e-3)
    noisy = ItemKNN(weighting="none", k=10, dp_epsilon=1.0, dp_threshold=0.0).fit(toy_platform)
    assert np.abs(noisy.sim_.toarray() - exact.sim_.toarray()).sum() > 1.0
    assert noisy.sim_.getnnz(axis=1).max() <= 10
    # the fallback order and the popularity evidence read the noisy diagonal
    assert not np.array_equal(noisy.popularity_, exact.popularity_)


def test_item_knn_dp_refuses_weighting_and_large_catalogs(toy_platform: Dataset) -> None:
    with pytest.raises(ConfigError, match="weighting='none'"):
        ItemKNN(dp_epsilon=1.0).fit(toy_platform)  # default weighting is tfidf
    with pytest.raises(CapacityError, match="dp_max_items"):
        ItemKNN(weighting="none", dp_epsilon=1.0, dp_max_items=10).fit(toy_platform)
    with pytest.raises(ConfigError, match="dp_epsilon"):
        Popularity(dp_epsilon=-1.0)
