from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from serendip.data.dataset import EVENT_TYPES, Dataset, MatrixConfig
from serendip.errors import DataError

DAY = 86_400.0


def _ds() -> Dataset:
    inter = pd.DataFrame(
        {
            "user": ["a", "a", "b", "b", "c"],
            "item": ["x", "y", "x", "x", "z"],
            "timestamp": [0.0, DAY, DAY, 2 * DAY, 2 * DAY],
            "event": ["view", "like", "view", "share", "rating"],
            "value": [None, None, None, None, 4.0],
        }
    )
    items = pd.DataFrame(
        {
            "item": ["x", "y", "z", "w"],
            "title": ["X", "Y", "Z", "W"],
            "tags": ["t1|t2", "", None, "t3"],
            "author": ["b", "", "a", "d"],
        }
    )
    social = pd.DataFrame({"follower": ["a", "a", "d"], "followee": ["b", "d", "a"]})
    return Dataset.from_frames(inter, items, social=social, name="t")


def test_vocabularies_and_sizes() -> None:
    ds = _ds()
    # users from interactions then social (a followee without interactions is a user)
    assert ds.users.to_list() == ["a", "b", "c", "d"]
    assert ds.items.to_list() == ["x", "y", "z", "w"]  # items file order, catalog item w kept
    assert (ds.n_users, ds.n_items, ds.n_interactions, len(ds.social)) == (4, 4, 5, 3)
    assert ds.item_meta.tags[0] == ("t1", "t2") and ds.item_meta.tags[1] == ()
    assert ds.item_author_index().tolist() == [1, -1, 0, 3]
    assert ds.has_social


def test_binary_matrix_dedupes_pairs() -> None:
    m = _ds().matrix()
    assert m.shape == (4, 4)
    assert m.toarray().tolist() == [[1, 1, 0, 0], [1, 0, 0, 0], [0, 0, 1, 0], [0, 0, 0, 0]]


def test_event_weights_sum_and_max() -> None:
    ds = _ds()
    w = MatrixConfig(event_weights={"view": 1.0, "share": 6.0, "like": 4.0})
    assert ds.matrix(w)[1, 0] == pytest.approx(7.0)  # view + share
    assert ds.matrix(MatrixConfig(aggregate="max"))[1, 0] == pytest.approx(6.0)


def test_value_transform_and_time_decay() -> None:
    ds = _ds()
    m = ds.matrix(MatrixConfig(value_transform="linear"))
    assert m[2, 2] == pytest.approx(4.0)  # rating weight 1 x value 4
    m = ds.matrix(MatrixConfig(value_transform="log1p"))
    assert m[2, 2] == pytest.approx(np.log1p(4.0))
    # half-life one day, reference = newest timestamp (2 days): a's view at t=0 weighs 1/4
    m = ds.matrix(MatrixConfig(half_life_days=1.0))
    assert m[0, 0] == pytest.approx(0.25)
    assert m[0, 1] == pytest.approx(4.0 * 0.5)


def test_unknown_event_weight_key_is_rejected() -> None:
    with pytest.raises(ValueError, match="unknown event types"):
        MatrixConfig(event_weights={"purchase": 3.0})


def test_unknown_event_type_in_frame() -> None:
    with pytest.raises(DataError, match="unknown event type 'purchase'"):
        Dataset.from_frames(pd.DataFrame({"user": ["a"], "item": ["x"], "event": ["purchase"]}))


def test_users_table_is_authoritative() -> None:
    users = pd.DataFrame({"user": ["a"]})
    with pytest.raises(DataError, match="user 'b'"):
        Dataset.from_frames(pd.DataFrame({"user": ["a", "b"], "item": ["x", "y"]}), users=users)


def test_filters_keep_vocabularies() -> None:
    ds = _ds()
    early = ds.between(end=DAY)
    assert early.n_interactions == 1 and early.users == ds.users and early.items == ds.items
    sub = ds.restrict(users=["b", "c"])
    assert sorted(set(sub.interactions_frame().user)) == ["b", "c"]
    sub = ds.restrict(items=["x"])
    assert set(sub.interactions_frame().item) == {"x"}
    assert sub.matrix().shape == (4, 4)


def test_frames_round_trip() -> None:
    ds = _ds()
    f = ds.interactions_frame()
    assert list(f.columns) == ["user", "item", "timestamp", "event", "value"]
    assert set(f.event) <= set(EVENT_TYPES)
    again = Dataset.from_frames(f, ds.items_frame(), social=ds.social_frame())
    assert (again.matrix() != ds.matrix()).nnz == 0
    assert again.items_frame().tags.tolist() == ds.items_frame().tags.tolist()


def test_iso_timestamps_and_missing_ones() -> None:
    ds = Dataset.from_frames(
        pd.DataFrame(
            {"user": ["a", "b"], "item": ["x", "x"], "timestamp": ["1970-01-02T00:00:00Z", None]}
        )
    )
    assert ds.interactions.timestamp[0] == pytest.approx(DAY)
    assert np.isnan(ds.interactions.timestamp[1])


def test_pair_groups_order_pairs_then_time_and_are_kept(toy_platform) -> None:  # type: ignore[no-untyped-def]
    ds = toy_platform
    order, keys, start = ds.pair_groups()
    assert ds.pair_groups()[0] is order  # computed once per dataset
    it = ds.interactions
    pair = it.user.astype(np.int64) * ds.n_items + it.item.astype(np.int64)
    assert np.all(np.diff(pair[order]) >= 0) and np.all(np.diff(keys) > 0)
    assert np.array_equal(pair[order][start], keys)
    ends = np.append(start[1:], len(order))
    for s, e in zip(start[:50], ends[:50], strict=True):  # oldest first within a pair
        t = it.timestamp[order[s:e]]
        assert np.all(np.diff(t[~np.isnan(t)]) >= 0)
    # another dataset (other interactions) has its own
    assert ds.filter_interactions(np.arange(len(it)) % 2 == 0).pair_groups()[0] is not order


def test_an_item_interacted_with_before_its_declared_date_is_published_at_that_interaction() -> (
    None
):
    items = pd.DataFrame(
        {
            "item": ["x", "y", "z", "w"],
            # x declared after its first view (day 0): a release date later than the log;
            # y declared before its like; z unknown; w never interacted with
            "created_at": [5 * DAY, -DAY, None, 9 * DAY],
        }
    )
    log = {"user": ["a", "a", "b", "c"], "item": ["x", "y", "x", "z"]}
    log["timestamp"] = [0.0, DAY, 2 * DAY, 3 * DAY]  # type: ignore[list-item]
    ds = Dataset.from_frames(pd.DataFrame(log), items)
    published = ds.item_published_at()
    x, y, z, w = ds.items.indices(np.array(["x", "y", "z", "w"]))
    assert published[x] == 0.0  # the first interaction, not the declared day 5
    assert published[y] == -DAY and published[w] == 9 * DAY  # declared dates that fit the log
    assert np.isnan(published[z])  # unknown stays unknown
    assert ds.item_meta.created_at[x] == 5 * DAY  # the metadata itself is left as given
    assert ds.item_published_at() is published  # cached
