"""The bias and discovery audit against a hand-computed example, and its edge cases."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from serendip.data.dataset import Dataset
from serendip.errors import ConfigError
from serendip.evaluation.audit import (
    AUDIT_DESCRIPTIONS,
    audit_recommendations,
    long_tail_items,
    new_author_items,
    popularity_percentiles,
)
from serendip.evaluation.evaluate import TopKLists

DAY = 86_400.0


def platform() -> tuple[Dataset, Dataset]:
    """Users a, b, c, d; items x0..x4. Training popularity x0=4, x1=2, x2=1, x3=1, x4=0;
    test: a -> x3, b -> x1. a follows c, b follows d; x4 is by c (first item on day 90, a new
    author on day 100), x0..x3 by d (day 0)."""
    train_pairs = [("a", "x0"), ("a", "x1"), ("b", "x0"), ("b", "x2"), ("c", "x0")]
    train_pairs += [("d", "x0"), ("d", "x1"), ("d", "x3")]
    test_pairs = [("a", "x3"), ("b", "x1")]
    pairs = train_pairs + test_pairs
    inter = pd.DataFrame(
        {
            "user": [u for u, _ in pairs],
            "item": [i for _, i in pairs],
            "timestamp": [100 * DAY] * len(pairs),
        }
    )
    items = pd.DataFrame(
        {
            "item": [f"x{j}" for j in range(5)],
            "author": ["d", "d", "d", "d", "c"],
            "created_at": [0.0, 0.0, 0.0, 0.0, 90 * DAY],
        }
    )
    social = pd.DataFrame({"follower": ["a", "b"], "followee": ["c", "d"]})
    ds = Dataset.from_frames(inter, items, pd.DataFrame({"user": list("abcd")}), social)
    is_train = np.arange(len(pairs)) < len(train_pairs)
    return ds.filter_interactions(is_train), ds.filter_interactions(~is_train)


def lists(train: Dataset, rows: dict[str, list[str]]) -> TopKLists:
    users = train.users.indices(list(rows))
    items = np.array([train.items.indices(v) for v in rows.values()], dtype=np.int64)
    return TopKLists(users, items)


def test_item_classes() -> None:
    pop = np.array([4, 2, 1, 1, 0])
    np.testing.assert_allclose(popularity_percentiles(pop), [0.9, 0.7, 0.4, 0.4, 0.1])
    assert long_tail_items(pop, 0.8).tolist() == [False, False, False, True, True]
    assert long_tail_items(pop, 0.5).tolist() == [False, True, True, True, True]
    assert long_tail_items(np.zeros(3)).all()
    with pytest.raises(ConfigError, match="head_mass"):
        long_tail_items(pop, 0.0)
    train, _ = platform()
    new = new_author_items(train, 30.0)
    assert new is not None and new.tolist() == [False, False, False, False, True]


def test_audit_matches_the_hand_computed_example() -> None:
    train, test = platform()
    recs = lists(train, {"a": ["x4", "x3"], "b": ["x1", "x4"]})
    audit = audit_recommendations(recs, train, test, k=2, n_groups=2)
    assert audit.n_users == 2
    assert audit["rec_popularity_pct"] == pytest.approx((0.25 + 0.4) / 2)
    assert audit["history_popularity_pct"] == pytest.approx((0.8 + 0.65) / 2)
    # GAP recs (0.5 + 1) / 2 = 0.75, history (3 + 2.5) / 2 = 2.75
    assert audit["popularity_lift"] == pytest.approx((0.75 - 2.75) / 2.75)
    assert audit["tail_share"] == pytest.approx(0.75)  # x4, x3, x4 of 4 slots
    assert audit["tail_catalog_share"] == pytest.approx(0.4)
    assert audit["tail_history_share"] == 0.0
    assert audit["new_author_share"] == pytest.approx(0.5)  # x4 twice
    assert audit["new_author_catalog_share"] == pytest.approx(0.2)
    # a: x4 is by a's followee c (in network), x3 is not; b: x1 liked by followee d, x4 not
    assert audit["oon_share"] == pytest.approx(0.5)
    # hits: a's x3 (out of network), b's x1 (in network)
    assert audit["oon_hit_share"] == pytest.approx(0.5)
    ndcg_a = 1 / math.log2(3)
    q1, q2 = audit.groups
    assert (q1.n_users, q2.n_users) == (1, 1)
    assert sorted([q1.ndcg or 0.0, q2.ndcg or 0.0]) == pytest.approx([ndcg_a, 1.0])
    assert audit["ndcg_gap"] == pytest.approx(1 - ndcg_a)
    assert audit["ndcg_ratio"] == pytest.approx(ndcg_a)
    d = audit.to_dict()
    assert set(AUDIT_DESCRIPTIONS) <= set(d) and set(d["groups"]) == {"q1", "q2"}


def test_external_ids_frames_and_padding_are_accepted() -> None:
    train, test = platform()
    frame = pd.DataFrame({"user": ["a", "a", "b"], "item": ["x4", "x3", "x1"], "rank": [1, 2, 1]})
    from_frame = audit_recommendations(frame, train, test, k=2)
    padded = TopKLists(
        np.array(["a", "b"], dtype=object),
        np.array([train.items.indices(["x4", "x3"]), [train.items.get("x1"), -1]]),
    )
    from_ids = audit_recommendations(padded, train, test, k=2)
    assert from_frame.to_dict() == from_ids.to_dict()
    assert from_ids["tail_share"] == pytest.approx(2 / 3)


def test_without_test_set_or_social_graph_the_rest_is_measured() -> None:
    train, _ = platform()
    recs = lists(train, {"a": ["x4", "x3"], "b": ["x1", "x4"]})
    served = audit_recommendations(recs, train, None, k=2)
    assert served["ndcg_gap"] is None and served["oon_hit_share"] is None
    assert served["oon_share"] == pytest.approx(0.5)
    assert any("no test set" in n for n in served.notes)
    bare = Dataset.from_frames(pd.DataFrame({"user": ["a", "a", "b"], "item": ["x", "y", "x"]}))
    audit = audit_recommendations(lists(bare, {"b": ["y"]}), bare, None, k=1)
    assert audit["oon_share"] is None and audit["new_author_share"] is None
    assert audit["tail_share"] is not None
    assert any("social graph" in n for n in audit.notes)


def test_activity_groups_split_users_into_equal_quartiles(toy_platform: Dataset) -> None:
    from serendip.models.baselines import Popularity

    model = Popularity().fit(toy_platform)
    users = toy_platform.users.ids
    audit = audit_recommendations(model.recommend(users, 10), toy_platform, None, k=10)
    sizes = [g.n_users for g in audit.groups]
    assert sizes == [15, 15, 15, 15]
    assert [g.max_history for g in audit.groups] == sorted(g.max_history for g in audit.groups)
    # popularity recommends the head to everybody: more mainstream than the users
    assert audit["popularity_lift"] is not None and audit["popularity_lift"] > 0
    assert audit["rec_popularity_pct"] > audit["history_popularity_pct"]  # type: ignore[operator]


def test_bad_arguments() -> None:
    train, test = platform()
    with pytest.raises(ConfigError, match="k must"):
        audit_recommendations(lists(train, {"a": ["x4"]}), train, test, k=0)
    with pytest.raises(ConfigError, match="unknown to train"):
        audit_recommendations(
            TopKLists(np.array(["zz"], dtype=object), np.array([[0]])), train, test, k=1
        )
