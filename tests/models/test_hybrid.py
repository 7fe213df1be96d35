"""Hybrids: weighted blend, switching by user/item state, mixed lists with quotas."""

from __future__ import annotations

from functools import cache
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from serendip.data.dataset import Dataset
from serendip.errors import ConfigError, SerendipError
from serendip.evaluation.splits import random_split
from serendip.models import Recommender, create_model
from serendip.models.hybrid import (
    TUNED_BLEND,
    MixedHybrid,
    SwitchingHybrid,
    WeightedHybrid,
    interleave,
    normalise,
)
from tests.conftest import make_toy_platform

K = 10
CAT, POP = "category-popularity", "popularity"


@cache
def _train() -> Dataset:
    return random_split(make_toy_platform(seed=5), test_fraction=0.2, seed=1).train


@cache
def _member(name: str) -> Recommender:
    return create_model(name).fit(_train())


def _users(n: int = 30) -> list[str]:
    return [str(u) for u in _train().users.ids[:n]]


# ----------------------------------------------------------------------------- normalisation
def test_normalise_takes_statistics_from_unexcluded_items_only() -> None:
    scores = np.array([[10.0, 1.0, 2.0, 3.0], [5.0, 5.0, 5.0, -np.inf]])
    exclude = sp.csr_matrix(np.array([[1, 0, 0, 0], [0, 0, 0, 0]], dtype=np.float32))
    mm = normalise(scores, exclude, "minmax")
    # row 0: the excluded 10 does not set the scale: min 1, max 3
    np.testing.assert_allclose(mm[0], [4.5, 0.0, 0.5, 1.0])
    # row 1: constant finite scores -> 0; the -inf becomes the row minimum
    np.testing.assert_allclose(mm[1], [0.0, 0.0, 0.0, 0.0])
    z = normalise(scores, exclude, "zscore")
    vals = np.array([1.0, 2.0, 3.0])
    np.testing.assert_allclose(z[0, 1:], (vals - vals.mean()) / vals.std())


def test_rank_normalisations_keep_only_the_order_among_unseen_items() -> None:
    scores = np.array([[10.0, 1.0, 2.0, 3.0, 3.0], [0.5, -np.inf, 100.0, 2.0, 1.0]])
    exclude = sp.csr_matrix(np.array([[1, 0, 0, 0, 0], [0, 0, 0, 0, 0]], dtype=np.float32))
    rrf = normalise(scores, exclude, "rank", rank_constant=10.0)
    # row 0: unseen ranks 3 (1.0), 2 (2.0), tied 1.5 (the two 3.0s); the excluded item below all
    np.testing.assert_allclose(rrf[0, 1:], 1.0 / (10.0 + np.array([4.0, 3.0, 1.5, 1.5])))
    assert rrf[0, 0] < rrf[0, 1:].min()
    # row 1: a huge score counts as much as rank 1 does anywhere; -inf ranks last
    np.testing.assert_allclose(rrf[1], 1.0 / (10.0 + np.array([4.0, 5.0, 1.0, 2.0, 3.0])))
    borda = normalise(scores, exclude, "borda")
    np.testing.assert_allclose(borda[1], [1 - 3 / 4, 0.0, 1.0, 1 - 1 / 4, 1 - 2 / 4])
    assert borda[0, 0] == 0.0 and borda[0, 3] == borda[0, 4] == 1 - 0.5 / 4
    with pytest.raises(ConfigError, match="valid: minmax, zscore, rank, borda"):
        normalise(scores, None, "softmax")  # type: ignore[arg-type]


# ----------------------------------------------------------------------------- weighted
@pytest.mark.parametrize("norm", ["zscore", "minmax", "rank", "borda"])
def test_weight_one_and_zero_equals_the_members_ranking(norm: str) -> None:
    hybrid = WeightedHybrid(
        members={CAT: {}, POP: {}}, weights={CAT: 1.0, POP: 0.0}, normalization=norm
    ).fit(_train())
    users = _users()
    np.testing.assert_array_equal(
        hybrid.recommend(users, K).items, _member(CAT).recommend(users, K).items
    )
    flipped = WeightedHybrid(members={CAT: {}, POP: {}}, weights={CAT: 0.0, POP: 2.0}).fit(_train())
    np.testing.assert_array_equal(
        flipped.recommend(users, K).items, _member(POP).recommend(users, K).items
    )


def test_blend_is_the_weighted_sum_of_per_user_zscores_over_unseen_items() -> None:
    hybrid = WeightedHybrid(
        members={CAT: {}, POP: {}}, weights={CAT: 0.6, POP: 0.4}, normalization="zscore"
    ).fit(_train())
    train = _train()
    u = _users()[3]
    uidx = train.users.index(u)
    unseen = np.ones(train.n_items, bool)
    unseen[train.seen()[uidx].indices] = False

    def z(model: Recommender) -> np.ndarray:
        s = model.score(u, train.items.ids).astype(np.float64)
        return (s - s[unseen].mean()) / s[unseen].std()

    expected = 0.6 * z(_member(CAT)) + 0.4 * z(_member(POP))
    got = hybrid.score(u, train.items.ids)
    np.testing.assert_allclose(got[unseen], expected[unseen], rtol=1e-5, atol=1e-5)


def test_activity_weights_give_each_history_length_bucket_its_own_blend(tmp_path: Path) -> None:
    train = _train()
    lengths = np.diff(train.seen().indptr)
    bound = int(np.median(lengths))
    # light users (< bound interactions) get the category member, heavy users popularity
    hybrid = WeightedHybrid(
        members={CAT: {}, POP: {}},
        weights={CAT: 0.5, POP: 0.5},
        activity_bounds=[bound],
        activity_weights=[{CAT: 1.0, POP: 0.0}, {CAT: 0.0}],  # POP: its `weights` weight
    ).fit(train)
    users = [str(u) for u in train.users.ids]
    light = lengths < bound
    assert 0 < light.sum() < len(users)
    got = hybrid.recommend(users, K).items
    np.testing.assert_array_equal(got[light], _member(CAT).recommend(users, K).items[light])
    np.testing.assert_array_equal(got[~light], _member(POP).recommend(users, K).items[~light])
    u_light = users[int(np.flatnonzero(light)[0])]
    exp = hybrid.explain(u_light, hybrid.recommend([u_light], 1).item_ids(0)[0])
    assert exp.evidence[0].id == CAT and "weight 1" in exp.evidence[0].label
    # unknown users: bucket by context length
    ctx = [str(i) for i in train.items.ids[:2]]
    cold = hybrid.recommend(["new"], K, context={"new": ctx})
    np.testing.assert_array_equal(
        cold.items, _member(CAT).recommend(["new"], K, context={"new": ctx}).items
    )
    hybrid.save(tmp_path / "a")
    loaded = Recommender.load(tmp_path / "a")
    np.testing.assert_array_equal(loaded.recommend(users, K).items, got)


def test_activity_weight_errors_name_the_problem() -> None:
    with pytest.raises(ConfigError, match="one weights mapping per bucket"):
        WeightedHybrid(members={POP: {}}, activity_bounds=[5], activity_weights=[{POP: 1.0}])
    with pytest.raises(ConfigError, match="strictly increasing"):
        WeightedHybrid(members={POP: {}}, activity_bounds=[5, 5], activity_weights=[{}] * 3)
    with pytest.raises(ConfigError, match=r"activity_weights\[1\] name keys that are not"):
        WeightedHybrid(members={POP: {}}, activity_bounds=[5], activity_weights=[{}, {CAT: 1}])
    with pytest.raises(ConfigError, match="positive weight in activity bucket 0"):
        WeightedHybrid(members={POP: {}}, activity_bounds=[5], activity_weights=[{POP: 0}, {}])


def test_explanation_comes_from_the_member_that_contributed_most() -> None:
    hybrid = WeightedHybrid(members={CAT: {}, POP: {}}, weights={CAT: 1.0, POP: 0.0}).fit(_train())
    u = _users()[0]
    item = hybrid.recommend([u], 1).item_ids(0)[0]
    exp = hybrid.explain(u, item)
    assert exp.model == "weighted-hybrid"
    assert exp.evidence[0].kind == "source" and exp.evidence[0].id == CAT
    assert any(e.kind == "feature" for e in exp.evidence[1:]), "member evidence is kept"
    assert CAT in exp.text


def test_tune_weights_moves_weight_to_the_member_that_ranks_better() -> None:
    # on the toy platform tastes are topical: category popularity beats global popularity
    inner = random_split(_train(), test_fraction=0.2, seed=2)
    hybrid = WeightedHybrid(members={CAT: {}, POP: {}}, weights={CAT: 0.0, POP: 1.0})
    result = hybrid.tune_weights(inner.train, inner.test, k=5, grid_steps=4)
    assert result.weights[CAT] > result.weights[POP]
    assert result.ndcg > result.baseline_ndcg
    assert sum(result.weights.values()) == pytest.approx(1.0)
    assert result.n_evaluated > 10
    # the tuned weights are usable as they are
    WeightedHybrid(hybrid.config, weights=dict(result.weights)).fit(inner.train)
    tuned = hybrid.tune_weights(inner.train, inner.test, k=5, method="optuna", n_trials=8)
    assert tuned.ndcg > tuned.baseline_ndcg and tuned.weights[CAT] > tuned.weights[POP]


def test_tune_weights_per_activity_bucket_gives_usable_bucket_weights() -> None:
    inner = random_split(_train(), test_fraction=0.2, seed=2)
    lengths = np.diff(inner.train.seen().indptr)
    bound = int(np.median(lengths))
    hybrid = WeightedHybrid(members={CAT: {}, POP: {}}, weights={CAT: 0.0, POP: 1.0})
    result = hybrid.tune_weights(
        inner.train, inner.test, k=5, grid_steps=2, activity_bounds=[bound]
    )
    assert result.activity_bounds == (bound,) and len(result.activity_weights) == 2
    flat = hybrid.tune_weights(inner.train, inner.test, k=5, grid_steps=2)
    assert result.weights == flat.weights, "the flat weights are searched as before"
    assert result.ndcg >= flat.ndcg - 1e-12, "each bucket does at least as well as flat weights"
    assert result.n_evaluated > flat.n_evaluated
    tuned = WeightedHybrid(hybrid.config, **result.params()).fit(inner.train)
    assert tuned.config.activity_bounds == [bound]
    with pytest.raises(ConfigError, match="strictly increasing"):
        hybrid.tune_weights(inner.train, inner.test, activity_bounds=[3, 2])


def test_config_errors_name_the_problem() -> None:
    with pytest.raises(ConfigError, match="unknown model 'nope'"):
        WeightedHybrid(members={"nope": {}})
    with pytest.raises(ConfigError, match="not members"):
        WeightedHybrid(members={POP: {}}, weights={CAT: 1.0})
    with pytest.raises(ConfigError, match=r"member 'trending'.*half_life_days"):
        WeightedHybrid(members={"trending": {"half_life_days": -1}})
    with pytest.raises(ConfigError, match="exactly one member"):
        SwitchingHybrid(warm={CAT: {}, POP: {}})
    with pytest.raises(ConfigError, match="positive quota"):
        MixedHybrid(members={POP: {}}, quotas={POP: 0.0})


def test_same_model_twice_under_labels_and_saved_in_subdirectories(tmp_path: Path) -> None:
    hybrid = WeightedHybrid(
        members={"trending@fast": {"half_life_days": 1.0}, "trending@slow": {}, CAT: {}},
    ).fit(_train())
    assert hybrid.members_["trending@fast"].config.half_life_days == 1.0
    hybrid.save(tmp_path / "h")
    for j in range(3):
        assert (tmp_path / "h" / f"member-{j}" / "manifest.json").is_file()
    loaded = Recommender.load(tmp_path / "h")
    users = _users()
    np.testing.assert_array_equal(
        loaded.recommend(users, K).items, hybrid.recommend(users, K).items
    )


def test_nested_hybrid_round_trips(tmp_path: Path) -> None:
    mixed = {"members": {CAT: {}, POP: {}}, "quotas": {CAT: 0.5, POP: 0.5}, "depth": 40}
    hybrid = WeightedHybrid(members={"mixed-hybrid": mixed, "trending": {}}).fit(_train())
    hybrid.save(tmp_path / "n")
    loaded = Recommender.load(tmp_path / "n")
    assert isinstance(loaded, WeightedHybrid)
    assert isinstance(loaded.members_["mixed-hybrid"], MixedHybrid)
    users = _users()
    np.testing.assert_array_equal(
        loaded.recommend(users, K).items, hybrid.recommend(users, K).items
    )


def test_update_needs_every_member_to_support_it() -> None:
    hybrid = WeightedHybrid(members={POP: {}, "random": {}}).fit(_train())
    before = hybrid.train_.copy()
    u, i = _users()[0], str(_train().items.ids[0])
    with pytest.raises(SerendipError, match="random"):
        hybrid.update(pd.DataFrame({"user": [u], "item": [i]}))
    assert (hybrid.train_ - before).count_nonzero() == 0, "nothing changes when refused"


# ----------------------------------------------------------------------------- switching
def test_switching_routes_cold_users_to_the_cold_member() -> None:
    train = _train()
    counts = np.diff(train.seen().indptr)
    threshold = int(np.median(counts))
    hybrid = SwitchingHybrid(warm={CAT: {}}, cold={POP: {}}, min_interactions=threshold).fit(train)
    users = [str(u) for u in train.users.ids]
    got = hybrid.recommend(users, K).items
    warm = _member(CAT).recommend(users, K).items
    cold = _member(POP).recommend(users, K).items
    is_cold = counts < threshold
    assert 0 < is_cold.sum() < len(users)
    np.testing.assert_array_equal(got[is_cold], cold[is_cold])
    np.testing.assert_array_equal(got[~is_cold], warm[~is_cold])
    # the explanation says which route was taken
    u_cold = users[int(np.flatnonzero(is_cold)[0])]
    exp = hybrid.explain(u_cold, hybrid.recommend([u_cold], 1).item_ids(0)[0])
    assert exp.evidence[0].kind == "source" and exp.evidence[0].id == POP
    assert "cold user" in exp.evidence[0].label


def test_switching_unknown_users_by_context_length() -> None:
    train = _train()
    hybrid = SwitchingHybrid(warm={CAT: {}}, cold={POP: {}}, min_interactions=3).fit(train)
    cat = np.asarray(train.item_meta.category)
    topic = [str(i) for i in train.items.ids[cat == "cat2"][:4]]
    short = hybrid.recommend(["new"], K, context={"new": topic[:2]})
    long = hybrid.recommend(["new"], K, context={"new": topic})
    pop = _member(POP).recommend(["new"], K, context={"new": topic[:2]})
    np.testing.assert_array_equal(short.items, pop.items)
    long_cats = cat[long.items[0]]
    assert (long_cats == "cat2").all(), "a long context takes the warm member's cold path"


def test_switching_cold_items_are_scored_by_the_cold_member() -> None:
    train = _train()
    item_counts = np.diff(train.seen().tocsc().indptr)
    threshold = int(np.quantile(item_counts, 0.3)) + 1
    hybrid = SwitchingHybrid(
        warm={CAT: {}},
        cold={"random": {}},
        min_interactions=0,
        min_item_interactions=threshold,
        cold_item_weight=1.0,
    ).fit(train)
    cold_items = item_counts < threshold
    u = _users()[0]
    recs = hybrid.recommend([u], K).items[0]
    assert cold_items[recs].any(), "cold items reach a warm user's list"
    s = hybrid.score(u, train.items.ids)
    assert s.min() >= 0.0 and s.max() <= 1.0  # both sides min-max normalised


# ----------------------------------------------------------------------------- mixed
def test_interleave_follows_quotas_dedupes_and_fills() -> None:
    items, sources = interleave([np.array([1, 2, 3]), np.array([2, 4, -1])], np.array([1, 1]), 5)
    np.testing.assert_array_equal(items, [1, 2, 3, 4])
    np.testing.assert_array_equal(sources, [0, 1, 0, 1])
    a, b = np.arange(0, 100), np.arange(100, 200)
    items, sources = interleave([a, b], np.array([0.7, 0.3]), 10)
    assert (sources == 0).sum() == 7 and (sources == 1).sum() == 3
    np.testing.assert_array_equal(items[sources == 0], a[:7])  # each source in its own order


def test_mixed_lists_respect_quotas_and_have_no_duplicates() -> None:
    hybrid = MixedHybrid(members={CAT: {}, "random": {}}, quotas={CAT: 0.7, "random": 0.3}).fit(
        _train()
    )
    users = _users(8)
    recs = hybrid.recommend(users, K)
    for r, u in enumerate(users):
        items = recs.item_ids(r)
        assert len(set(items)) == len(items) == K
        sources = [hybrid.explain(u, i).evidence[0].id for i in items]
        assert sources.count(CAT) == 7 and sources.count("random") == 3
        # the category member's items keep its order and are its top picks not already listed
        own = _member(CAT).recommend([u], 2 * K).item_ids(0)
        picked = [i for i, s in zip(items, sources, strict=True) if s == CAT]
        assert picked == [i for i in own if i in set(picked)]


def test_mixed_quota_counts_only_allowed_items() -> None:
    train = _train()
    hybrid = MixedHybrid(members={CAT: {}, POP: {}}, quotas={CAT: 0.5, POP: 0.5}).fit(train)
    cands = [str(i) for i in train.items.ids[::2]]
    recs = hybrid.recommend(_users(5), K, candidates=cands)
    assert (recs.items >= 0).all(), "lists stay full when candidates remove items"
    assert set(recs.to_frame()["item"]) <= set(cands)


def test_default_weights_belong_to_the_default_members_only() -> None:
    tuned = WeightedHybrid().config.resolved_weights()
    assert sum(tuned.values()) == pytest.approx(1.0) and len(set(tuned.values())) > 1
    own = WeightedHybrid(members={CAT: {}, POP: {}}).config.resolved_weights()
    assert own == {CAT: 1.0, POP: 1.0}
    # the default members come with their tuned normalisation; other members with min-max
    default = create_model("weighted-hybrid", {}).config  # what `serendip fit` builds
    assert default.normalization == TUNED_BLEND["normalization"]
    assert default.members == TUNED_BLEND["members"]
    assert WeightedHybrid(members={CAT: {}}).config.normalization == "minmax"
    assert WeightedHybrid(normalization="zscore").config.normalization == "zscore"
