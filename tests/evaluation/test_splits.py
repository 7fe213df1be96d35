"""Splitters: partition properties (Hypothesis), per-method guarantees, real data."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from serendip.data.dataset import Dataset, Interactions, ItemTable, UserTable
from serendip.data.vocabulary import Vocabulary
from serendip.errors import ConfigError, DataError
from serendip.evaluation.splits import (
    Split,
    cold_item_split,
    cold_user_split,
    leave_last_split,
    random_split,
    split_dataset,
    temporal_split,
    validation_split,
    with_validation,
)
from tests.conftest import shared_data


def make_dataset(
    users: list[int], items: list[int], ts: list[float], created: list[float] | None = None
) -> Dataset:
    """Interactions whose `value` is the row number, so rows can be traced through a split."""
    n_users = max(users, default=-1) + 1
    n_items = max(max(items, default=-1) + 1, len(created or []))
    meta = ItemTable.empty(n_items)
    if created is not None:
        meta.created_at[: len(created)] = created
    return Dataset(
        users=Vocabulary([f"u{u}" for u in range(n_users)]),
        items=Vocabulary([f"i{i}" for i in range(n_items)]),
        interactions=Interactions.build(users, items, ts, value=np.arange(len(users))),
        item_meta=meta,
        user_meta=UserTable.empty(n_users),
        name="hyp",
    )


@st.composite
def datasets(draw: st.DrawFn, timed: bool = True) -> Dataset:
    n_users = draw(st.integers(1, 10))
    n_items = draw(st.integers(2, 12))
    n = draw(st.integers(1, 90))
    users = draw(st.lists(st.integers(0, n_users - 1), min_size=n, max_size=n))
    items = draw(st.lists(st.integers(0, n_items - 1), min_size=n, max_size=n))
    time_values = st.integers(0, 15).map(float)
    if timed:
        time_values = st.one_of(time_values, time_values, time_values, st.just(float("nan")))
    ts = draw(st.lists(time_values, min_size=n, max_size=n))
    created = draw(
        st.lists(
            st.one_of(st.integers(0, 8).map(float), st.just(float("nan"))),
            min_size=n_items,
            max_size=n_items,
        )
    )
    return make_dataset(users, items, ts, created)


def rows(ds: Dataset | None) -> set[int]:
    return set() if ds is None else {int(v) for v in ds.interactions.value}


def pairs(ds: Dataset) -> set[tuple[int, int]]:
    it = ds.interactions
    return set(zip(it.user.tolist(), it.item.tolist(), strict=True))


def check_partition(ds: Dataset, split: Split, *, pair_disjoint: bool = True) -> None:
    """Rows in at most one part; parts + documented exclusions = the source; shared vocabularies."""
    train, test, fold = rows(split.train), rows(split.test), rows(split.fold_in)
    assert not train & test and not train & fold and not test & fold
    n_parts = split.train.n_interactions + split.test.n_interactions
    n_parts += split.fold_in.n_interactions if split.fold_in is not None else 0
    assert len(train | test | fold) == n_parts  # no row twice within a part either
    assert n_parts + split.params["n_excluded"] == ds.n_interactions
    assert (train | test | fold) <= rows(ds)
    if pair_disjoint:
        assert not pairs(split.train) & pairs(split.test)
        if split.fold_in is not None:
            assert not pairs(split.fold_in) & pairs(split.test)
    for part in (split.train, split.test, split.fold_in):
        if part is not None:
            assert part.users is ds.users and part.items is ds.items
            assert part.item_meta is ds.item_meta


def same_split(a: Split, b: Split) -> bool:
    return (
        rows(a.train) == rows(b.train)
        and rows(a.test) == rows(b.test)
        and rows(a.fold_in) == rows(b.fold_in)
        and dict(a.params) == dict(b.params)
    )


HYP = settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])


# --------------------------------------------------------------------------- random
@HYP
@given(datasets(timed=False), st.floats(0.05, 0.95), st.integers(0, 3), st.integers(0, 2**16))
def test_random_split_properties(ds: Dataset, fraction: float, min_inter: int, seed: int) -> None:
    split = random_split(ds, test_fraction=fraction, seed=seed, min_interactions=min_inter)
    check_partition(ds, split)
    assert split.params["n_excluded"] == 0
    assert same_split(
        split, random_split(ds, test_fraction=fraction, seed=seed, min_interactions=min_inter)
    )
    # Per user: round(fraction * distinct items) test pairs, clipped to [1, n - 1], for eligible users.
    all_pairs = pairs(ds)
    test_pairs = pairs(split.test)
    for u in range(ds.n_users):
        n_u = sum(1 for p in all_pairs if p[0] == u)
        got = sum(1 for p in test_pairs if p[0] == u)
        if n_u >= max(min_inter, 2):
            assert got == min(max(int(np.floor(fraction * n_u + 0.5)), 1), n_u - 1)
        else:
            assert got == 0


def test_random_split_moves_every_occurrence_of_a_held_out_pair() -> None:
    # User 0 interacts with item 0 three times and items 1..5 once.
    ds = make_dataset([0] * 8, [0, 0, 0, 1, 2, 3, 4, 5], [float(t) for t in range(8)])
    for seed in range(20):
        split = random_split(ds, test_fraction=0.5, seed=seed)
        n_item0_test = int((split.test.interactions.item == 0).sum())
        assert n_item0_test in (0, 3)
        assert len(pairs(split.test)) == 3


def test_random_split_seed_matters_and_fraction_is_close_on_a_larger_set() -> None:
    rng = np.random.default_rng(0)
    users = rng.integers(0, 200, 6000).tolist()
    items = rng.integers(0, 500, 6000).tolist()
    ds = make_dataset(users, items, [0.0] * 6000)
    a = random_split(ds, test_fraction=0.3, seed=1)
    b = random_split(ds, test_fraction=0.3, seed=2)
    assert rows(a.test) != rows(b.test)
    n_pairs = len(pairs(ds))
    assert len(pairs(a.test)) / n_pairs == pytest.approx(0.3, abs=0.01)


def test_fractions_outside_zero_one_are_rejected() -> None:
    ds = make_dataset([0, 0], [0, 1], [0.0, 1.0])
    with pytest.raises(ConfigError, match="test_fraction"):
        random_split(ds, test_fraction=1.0)
    with pytest.raises(ConfigError, match="valid: random, temporal"):
        split_dataset(ds, "nope")
    with pytest.raises(ConfigError, match="does not take n"):
        split_dataset(ds, "random", n=3)


# --------------------------------------------------------------------------- temporal
@HYP
@given(datasets(), st.floats(0.05, 0.95), st.booleans(), st.sampled_from(["drop", "keep"]))
def test_temporal_split_properties(
    ds: Dataset, fraction: float, drop_unseen: bool, repeated: str
) -> None:
    if not ds.interactions.has_timestamps:
        with pytest.raises(DataError, match="timestamps"):
            temporal_split(ds, test_fraction=fraction)
        return
    split = temporal_split(
        ds, test_fraction=fraction, drop_unseen_items=drop_unseen, repeated_pairs=repeated
    )  # type: ignore[arg-type]
    check_partition(ds, split, pair_disjoint=repeated == "drop")
    p = split.params
    assert (
        p["n_excluded"]
        == p["n_excluded_new_users"] + p["n_excluded_repeated_pairs"] + p["n_excluded_unseen_items"]
    )
    cut = p["cut"]
    train_ts = split.train.interactions.timestamp
    assert (train_ts[~np.isnan(train_ts)] < cut).all()
    assert (split.test.interactions.timestamp >= cut).all()
    assert set(split.test.interactions.user.tolist()) <= set(split.train.interactions.user.tolist())
    if drop_unseen:
        assert set(split.test.interactions.item.tolist()) <= set(
            split.train.interactions.item.tolist()
        )
    # Everything after the cut is either in test or counted as excluded.
    n_after = int((ds.interactions.timestamp >= cut).sum())
    assert split.test.n_interactions + p["n_excluded"] == n_after


def test_temporal_split_by_explicit_cut_and_iso_time() -> None:
    ds = make_dataset([0, 0, 0, 1, 1], [0, 1, 2, 0, 3], [100.0, 200.0, 300.0, 150.0, 400.0])
    split = temporal_split(ds, cut=250.0)
    assert rows(split.train) == {0, 1, 3} and rows(split.test) == {2, 4}
    iso = temporal_split(ds, cut="1970-01-01T00:04:10Z")  # 250 s after the epoch
    assert same_split(split, iso)
    with pytest.raises(ConfigError, match="ISO 8601"):
        temporal_split(ds, cut="next tuesday")


def test_temporal_quantile_puts_the_last_share_of_interactions_in_test() -> None:
    ds = make_dataset([0] * 10, list(range(10)), [float(t) for t in range(10)])
    split = temporal_split(ds, test_fraction=0.3)
    assert split.params["cut"] == 7.0
    assert rows(split.test) == {7, 8, 9}


# --------------------------------------------------------------------------- leave-last
@HYP
@given(datasets(), st.integers(1, 3), st.integers(0, 2**16))
def test_leave_last_split_properties(ds: Dataset, n: int, seed: int) -> None:
    if not ds.interactions.has_timestamps:
        with pytest.raises(DataError):
            leave_last_split(ds, n=n)
        return
    split = leave_last_split(ds, n=n, seed=seed, min_interactions=0)
    check_partition(ds, split)
    assert same_split(split, leave_last_split(ds, n=n, seed=seed, min_interactions=0))
    it = ds.interactions
    first: dict[tuple[int, int], float] = {}
    for u, i, t in zip(it.user.tolist(), it.item.tolist(), it.timestamp.tolist(), strict=True):
        # A pair's time is its earliest known time; a pair never timed counts as oldest.
        first[(u, i)] = min(first.get((u, i), np.inf), np.inf if np.isnan(t) else t)
    first = {p: -np.inf if t == np.inf else t for p, t in first.items()}
    test_pairs = pairs(split.test)
    for u in range(ds.n_users):
        mine = [p for p in first if p[0] == u]
        held = [p for p in mine if p in test_pairs]
        assert len(held) == (n if len(mine) >= n + 1 else 0)
        kept = [p for p in mine if p not in test_pairs]
        if held:
            # Held-out pairs are the newest by first interaction (ties may go either way).
            assert min(first[p] for p in held) >= max(first[p] for p in kept)


def test_leave_last_ties_are_broken_by_the_seed_deterministically() -> None:
    ds = make_dataset([0] * 6, list(range(6)), [1.0, 2.0, 3.0, 9.0, 9.0, 9.0])
    held = {seed: rows(leave_last_split(ds, n=1, seed=seed).test) for seed in range(30)}
    assert all(h <= {3, 4, 5} and len(h) == 1 for h in held.values())
    assert len({frozenset(h) for h in held.values()}) > 1  # the seed decides among the ties
    assert held[7] == rows(leave_last_split(ds, n=1, seed=7).test)


# --------------------------------------------------------------------------- cold users
@HYP
@given(
    datasets(),
    st.floats(0.05, 0.9),
    st.floats(0.1, 0.9),
    st.sampled_from(["random", "time"]),
    st.integers(0, 99),
)
def test_cold_user_split_properties(
    ds: Dataset, uf: float, ff: float, order: str, seed: int
) -> None:
    kw = {
        "user_fraction": uf,
        "fold_in_fraction": ff,
        "fold_in_order": order,
        "seed": seed,
        "min_interactions": 2,
    }
    n_distinct = np.bincount(np.array([p[0] for p in pairs(ds)]), minlength=ds.n_users)
    if (n_distinct < 2).all():
        with pytest.raises(DataError):
            cold_user_split(ds, **kw)  # type: ignore[arg-type]
        return
    if order == "time" and not ds.interactions.has_timestamps:
        return
    split = cold_user_split(ds, **kw)  # type: ignore[arg-type]
    check_partition(ds, split)
    assert same_split(split, cold_user_split(ds, **kw))  # type: ignore[arg-type]
    assert split.fold_in is not None
    cold = set(split.test.interactions.user.tolist())
    assert cold == set(split.fold_in.interactions.user.tolist())
    assert len(cold) == split.params["n_cold_users"]
    assert not cold & set(split.train.interactions.user.tolist())
    for u in cold:
        assert n_distinct[u] >= 2


def test_cold_user_time_order_gives_the_earliest_items_to_fold_in() -> None:
    ds = make_dataset(
        [0] * 6 + [1] * 2, [0, 1, 2, 3, 4, 5, 0, 1], [5.0, 1.0, 3.0, 2.0, 6.0, 4.0, 0.0, 0.0]
    )
    split = cold_user_split(
        ds, user_fraction=0.4, fold_in_fraction=0.5, fold_in_order="time", min_interactions=5
    )
    assert rows(split.fold_in) == {1, 3, 2}  # times 1, 2, 3
    assert rows(split.test) == {5, 0, 4}
    assert rows(split.train) == {6, 7}


# --------------------------------------------------------------------------- cold items
@HYP
@given(
    datasets(),
    st.floats(0.05, 0.9),
    st.sampled_from(["created_at", "first_interaction"]),
    st.booleans(),
)
def test_cold_item_split_properties(ds: Dataset, fraction: float, by: str, drop_new: bool) -> None:
    active = np.flatnonzero(ds.item_counts() > 0)
    try:
        split = cold_item_split(ds, item_fraction=fraction, by=by, drop_new_users=drop_new)  # type: ignore[arg-type]
    except DataError:
        # Fewer than 2 items, or no time of the kind asked for.
        when = ds.item_meta.created_at[active] if by == "created_at" else ds.interactions.timestamp
        assert len(active) < 2 or np.isnan(when).all()
        return
    check_partition(ds, split)
    n_cold = split.params["n_cold_items"]
    assert 1 <= n_cold < len(active)
    train_items = set(split.train.interactions.item.tolist())
    cold = set(active.tolist()) - train_items
    assert len(cold) == n_cold
    assert set(split.test.interactions.item.tolist()) <= cold
    if not drop_new:
        assert split.params["n_excluded"] == 0
    else:
        assert set(split.test.interactions.user.tolist()) <= set(
            split.train.interactions.user.tolist()
        )
    if by == "created_at":
        when = np.nan_to_num(ds.item_meta.created_at, nan=-np.inf)
        assert min(when[list(cold)]) >= max(when[list(train_items)])


def test_cold_items_stay_in_vocabulary_and_metadata() -> None:
    ds = make_dataset([0, 0, 1, 1], [0, 1, 0, 2], [0.0] * 4, created=[1.0, 2.0, 9.0])
    split = cold_item_split(ds, item_fraction=0.3)
    assert split.test.interactions.item.tolist() == [2]
    assert 2 not in split.train.interactions.item.tolist()
    assert split.train.n_items == 3 and split.train.item_meta.created_at[2] == 9.0


# --------------------------------------------------------------------------- validation
def test_with_validation_splits_train_again_by_the_same_scheme() -> None:
    rng = np.random.default_rng(3)
    ds = make_dataset(
        rng.integers(0, 30, 900).tolist(),
        rng.integers(0, 80, 900).tolist(),
        rng.uniform(0, 100, 900).tolist(),
    )
    for split in (
        random_split(ds, seed=4),
        leave_last_split(ds, n=2),
        temporal_split(ds, cut=80.0),
        cold_user_split(ds, seed=1),
    ):
        val = with_validation(split).validation
        assert val is not None and val.kind == split.kind
        check_partition(split.train, val, pair_disjoint=True)
        assert rows(val.train) | rows(val.test) | rows(val.fold_in) <= rows(split.train)
        assert not rows(val.test) & rows(split.test)
    v = validation_split(ds, "random", test_fraction=0.1, seed=0)
    assert v.test.name.endswith(":validation")


# --------------------------------------------------------------------------- real data
@pytest.fixture(scope="module")
def movielens() -> Dataset:
    path = shared_data("ml-100k")
    frame = pd.read_csv(path / "u.data", sep="\t", names=["user", "item", "rating", "timestamp"])
    frame["value"] = np.arange(len(frame))  # row numbers, to trace rows through a split
    return Dataset.from_frames(frame, name="ml-100k")


@pytest.mark.realdata
def test_movielens_random_split(movielens: Dataset) -> None:
    split = random_split(movielens, test_fraction=0.2, seed=42)
    check_partition(movielens, split)
    assert split.test.n_interactions / movielens.n_interactions == pytest.approx(0.2, abs=0.005)
    assert (
        np.unique(split.test.interactions.user).size == 943
    )  # every ML100K user has >= 20 ratings


@pytest.mark.realdata
def test_movielens_leave_last_and_temporal(movielens: Dataset) -> None:
    ll = leave_last_split(movielens, n=1, seed=0)
    check_partition(movielens, ll)
    assert ll.test.n_interactions == 943
    tmp = temporal_split(movielens, test_fraction=0.2)
    check_partition(movielens, tmp)
    # The last 20% of ML100K's ratings come largely from users who joined late: excluded, counted.
    assert tmp.params["n_excluded_new_users"] > 0
    assert tmp.test.n_interactions + tmp.params["n_excluded"] == pytest.approx(20_000, abs=50)


@pytest.mark.realdata
def test_movielens_cold_splits(movielens: Dataset) -> None:
    cu = cold_user_split(movielens, user_fraction=0.1, seed=0)
    check_partition(movielens, cu)
    assert cu.params["n_cold_users"] == 94
    ci = cold_item_split(movielens, item_fraction=0.1, by="first_interaction")
    check_partition(movielens, ci)
    assert ci.params["n_cold_items"] == 168
