from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from serendip.data.dataset import Dataset
from serendip.errors import ConfigError, NotFittedError
from serendip.models.artifacts import read_artifact, write_artifact
from serendip.pipeline.candidates import UserContext
from serendip.pipeline.context import contexts_from_dataset
from serendip.pipeline.sources import SOURCES, ContentSource, SourceBase, make_source
from tests.pipeline._tiny import DAY, NOW, tiny_platform

QUICK: dict[str, dict[str, Any]] = {
    "collaborative": {"model": "ials", "params": {"factors": 8, "iterations": 3}},
    "collaborative-2": {"model": "item-knn", "params": {"k": 10}},
}


def fitted(name: str, ds: Dataset, **params: Any) -> SourceBase[Any]:
    src = make_source(name, **{**QUICK.get(name, {}), **params})
    assert isinstance(src, SourceBase)
    assert src.fit(ds) is src  # fit returns the source, as a model's fit returns the model
    return src


def saved_state(src: SourceBase[Any], ds: Dataset, directory: Path) -> Any:
    """`src`'s state written as an artifact in `directory` and read back (`read_artifact`)."""
    arrays, meta = src._state()
    write_artifact(
        directory, model="source", config={}, users=ds.users, items=ds.items,
        arrays=arrays, meta=meta,
    )  # fmt: skip
    return read_artifact(directory)


def ctx_of(ds: Dataset, user: str, **kw: Any) -> UserContext:
    return contexts_from_dataset(ds, [user], **kw)[0]


def names(ds: Dataset, items: np.ndarray) -> list[str]:
    return [str(x) for x in ds.items.lookup(items)]


def cold_context(
    ds: Dataset,
    *,
    history: list[str] | None = None,
    interests: tuple[str, ...] = (),
    followees: list[str] | None = None,
    now: float = NOW,
) -> UserContext:
    """A user the fitted data never saw (most recent history first)."""
    h = ds.items.indices(history) if history else np.zeros(0, np.int64)
    f = ds.users.indices(followees) if followees else np.zeros(0, np.int64)
    return UserContext(
        "newcomer", -1, h, np.full(len(h), now), np.full(len(h), 2, np.int8), f, interests, now
    )


# ----------------------------------------------------------------------------- registry
def test_registry_names_and_bad_params() -> None:
    assert set(SOURCES) == {
        "in-network",
        "collaborative",
        "collaborative-2",
        "collaborative-oon",
        "recent-item-knn",
        "content",
        "trending",
        "fresh-followed",
        "explore",
    }
    with pytest.raises(ConfigError, match="valid: in-network"):
        make_source("nope")
    with pytest.raises(ConfigError, match="half_lif"):
        make_source("trending", half_lif=3)
    with pytest.raises(NotFittedError):
        make_source("trending").propose(cold_context(tiny_platform()), 5)


# ----------------------------------------------------------------------------- in-network
def test_in_network_proposes_exactly_the_public_followees_items() -> None:
    ds = tiny_platform()
    src = fitted("in-network", ds)
    a = ctx_of(ds, "a")
    got = names(ds, src.propose(a, 50).items)
    # b authored p1, b_new (b_future is not published yet) and acted on p2, p3; c is private
    assert sorted(got) == ["b_new", "p1", "p2", "p3"]
    for item in src.propose(a, 50).items:
        ev = src.evidence(a, int(item))
        followees = [e.id for e in ev if e.kind == "followee"]
        assert followees == ["b"]  # only the followee who acted, never the private c
    authors = {e.id for e in src.evidence(a, ds.items.index("p1")) if e.kind == "author"}
    assert authors == {"b"}
    assert not [e for e in src.evidence(a, ds.items.index("p2")) if e.kind == "author"]


def test_in_network_uses_a_followee_once_public() -> None:
    ds = tiny_platform(private_c=False)
    src = fitted("in-network", ds)
    a = ctx_of(ds, "a")
    got = names(ds, src.propose(a, 50).items)
    assert "c1" in got
    assert [e.id for e in src.evidence(a, ds.items.index("c1"))] == ["c"]


def test_in_network_prefers_stronger_and_recent_actions() -> None:
    ds = tiny_platform()
    src = fitted("in-network", ds)
    p = src.propose(ctx_of(ds, "a"), 50)
    order = names(ds, p.items)
    # a like (p2) beats a view (p3); a newer post (b_new) beats an older one (p1)
    assert order.index("p2") < order.index("p3")
    assert order.index("b_new") < order.index("p1")
    assert np.all(np.diff(p.scores) <= 0)


def test_in_network_for_a_cold_user_with_followees() -> None:
    ds = tiny_platform()
    src = fitted("in-network", ds)
    ctx = cold_context(ds, followees=["b", "c"])
    assert sorted(names(ds, src.propose(ctx, 50).items)) == ["b_new", "p1", "p2", "p3"]


# ----------------------------------------------------------------------------- fresh-followed
def test_fresh_followed_respects_window_and_now() -> None:
    ds = tiny_platform()
    src = fitted("fresh-followed", ds, window_days=7)
    a = ctx_of(ds, "a")
    assert names(ds, src.propose(a, 10).items) == ["b_new"]  # p1 is 30 days old, b_future unborn
    later = ctx_of(ds, "a", now=NOW + 3 * DAY)
    assert names(ds, src.propose(later, 10).items) == ["b_future", "b_new"]  # newest first
    wide = fitted("fresh-followed", ds, window_days=40)
    assert names(ds, wide.propose(a, 10).items) == ["b_new", "p1"]
    assert [(e.kind, e.id) for e in src.evidence(a, ds.items.index("b_new"))] == [("author", "b")]


# ----------------------------------------------------------------------------- content
def test_content_proposes_a_brand_new_item() -> None:
    ds = tiny_platform()
    assert ds.item_counts()[ds.items.index("g_new")] == 0
    src = fitted("content", ds)
    a = ctx_of(ds, "a")
    got = names(ds, src.propose(a, 3).items)
    assert got[0] == "g_new"
    ev = src.evidence(a, ds.items.index("g_new"))
    assert {e.id for e in ev if e.kind == "item"} <= {"h1", "h2"}
    assert ("interest", "garden") in {(e.kind, e.id) for e in ev}


def test_content_serves_a_new_user_by_interests() -> None:
    ds = tiny_platform()
    src = fitted("content", ds)
    got = names(ds, src.propose(cold_context(ds, interests=("Sport",)), 5).items)
    assert set(got) == {"p1", "b_new"}  # b_future is not published at NOW
    assert src.propose(cold_context(ds), 5).items.size == 0  # nothing to go on


def test_content_proposes_for_a_batch_as_for_each_user(
    toy_platform: Dataset, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The batch's one sparse x dense product gives each user's proposal, scores bitwise, with
    users who have nothing to go on or only interests among them."""
    import serendip.pipeline.sources.content as content

    ds = toy_platform
    src = fitted("content", ds)
    contexts = contexts_from_dataset(ds, list(ds.users.ids[:60]))
    contexts += [cold_context(ds), cold_context(ds, interests=(str(ds.item_meta.category[0]),))]
    monkeypatch.setattr(content, "_DENSE_BLOCK", 7 * ds.n_items)  # blocks of 7 users
    batch = src.propose_batch(contexts, 15)
    assert sum(len(p.items) > 0 for p in batch) > 50
    for ctx, got in zip(contexts, batch, strict=True):
        one = src.propose(ctx, 15)
        np.testing.assert_array_equal(got.items, one.items)
        np.testing.assert_array_equal(got.scores, one.scores)


def test_content_screened_in_float32_proposes_as_the_exact_dense_pass(
    toy_platform: Dataset,
) -> None:
    """A request's catalog pass screened in float32 and re-scored exactly gives the dense
    float64 pass's proposal (items and scores), whatever the quota; and it does screen."""
    ds = toy_platform
    src = fitted("content", ds)
    assert isinstance(src, ContentSource)
    contexts = contexts_from_dataset(ds, list(ds.users.ids[:80]))
    screened = 0
    for ctx in contexts:
        for n in (1, 5, 20, ds.n_items - 1, ds.n_items + 5):
            dense = src._finish_scores(ctx, src.scores(ctx), n)
            got = src.propose(ctx, n)
            np.testing.assert_array_equal(got.items, dense.items)
            np.testing.assert_array_equal(got.scores, dense.scores)
            p = src._profile(ctx)
            if p is not None and src._propose_screened(ctx, src.vectors_, p, n) is not None:
                screened += 1
    assert screened > 100


def test_content_screening_leaves_a_tie_at_the_cut_to_the_dense_pass(
    toy_platform: Dataset,
) -> None:
    import scipy.sparse as sp

    ds = toy_platform
    src = fitted("content", ds)
    assert isinstance(src, ContentSource)
    ctx = next(
        replace(c, interests=())
        for c in contexts_from_dataset(ds, list(ds.users.ids[:40]))
        if src._profile(c) is not None
    )
    dense = src._finish_scores(ctx, src.scores(ctx), 30)
    a, b = int(dense.items[3]), int(dense.items[12])
    v = src.vectors_.tolil()
    v[b] = v[a]  # item b now scores exactly as item a: a tie right after a
    src.vectors_ = sp.csr_matrix(v, dtype=np.float32)
    full = src._finish_scores(ctx, src.scores(ctx), ds.n_items)
    n = int(np.flatnonzero(np.isin(full.items, [a, b]))[0]) + 1  # the cut between the two
    p = src._profile(ctx)
    assert p is not None and src._propose_screened(ctx, src.vectors_, p, n) is None
    got, want = src.propose(ctx, n), src._finish_scores(ctx, src.scores(ctx), n)
    np.testing.assert_array_equal(got.items, want.items)
    np.testing.assert_array_equal(got.scores, want.scores)


# ----------------------------------------------------------------------------- trending
def test_trending_ranks_by_decayed_counts() -> None:
    ds = tiny_platform()
    z = cold_context(ds)
    short = fitted("trending", ds, half_life_days=1.0)
    p = short.propose(z, 20)
    it = ds.interactions
    age = (NOW - it.timestamp) / DAY
    expected = np.bincount(it.item, weights=0.5**age, minlength=ds.n_items)
    assert np.allclose(p.scores, expected[p.items], rtol=1e-5)
    order = np.lexsort((np.arange(ds.n_items), -expected))
    assert p.items.tolist() == order[expected[order] > 0].tolist()[: len(p.items)]
    # a long half-life turns it into plain popularity: the four items with two users each first,
    # while a short one puts the items touched today first
    long = fitted("trending", ds, half_life_days=1e4)
    assert set(names(ds, long.propose(z, 4).items)) == {"d1", "h1", "h2", "p3"}
    assert names(ds, p.items[:2]) == ["p3", "d1"]
    # later requests decay all counts alike (same order); earlier ones forget the future
    later = replace(z, now=NOW + 10 * DAY)
    assert short.propose(later, 20).items.tolist() == p.items.tolist()
    earlier = replace(z, now=NOW - 4 * DAY)
    assert "p3" not in names(ds, short.propose(earlier, 20).items)  # its likes came later
    ev = short.evidence(z, int(p.items[0]))
    assert ev[0].kind == "popularity" and ev[0].id == str(ds.item_meta.category[p.items[0]])


def test_trending_within_the_users_categories() -> None:
    ds = tiny_platform()
    src = fitted("trending", ds, top_categories=1)
    got = names(ds, src.propose(ctx_of(ds, "a"), 10).items)
    assert got == ["e1"]  # garden only, h1/h2 already seen


def test_half_life_decay_of_unknown_negative_and_endless_ages() -> None:
    from serendip.pipeline.sources._base import half_life_decay

    ages = np.array([0.0, 3 * DAY, 6 * DAY, np.nan, -DAY, np.inf])
    np.testing.assert_array_equal(half_life_decay(ages, 3.0), [1.0, 0.5, 0.25, 1.0, 1.0, 0.0])
    np.testing.assert_array_equal(half_life_decay(ages, None), np.ones(6))


# ----------------------------------------------------------------------------- explore
def test_explore_finds_friends_of_friends_and_similar_users() -> None:
    ds = tiny_platform()
    src = fitted("explore", ds)
    a = ctx_of(ds, "a")
    got = names(ds, src.propose(a, 10).items)
    assert sorted(got) == ["d1", "e1"]  # d: b's followee; e: same history as a
    assert [e.id for e in src.evidence(a, ds.items.index("d1"))] == ["d"]
    assert [e.kind for e in src.evidence(a, ds.items.index("e1"))] == ["user"]


def test_explore_on_a_log_of_views_only() -> None:
    ds = tiny_platform()
    it = ds.interactions
    views = ds.with_interactions(replace(it, event=np.zeros(len(it), np.int8)))
    src = fitted("explore", views)
    assert sorted(names(ds, src.propose(ctx_of(views, "a"), 10).items)) == ["d1", "e1"]


def test_explore_never_proposes_what_a_followee_touched(toy_platform: Dataset) -> None:
    ds = toy_platform
    src = fitted("explore", ds)
    seen = ds.seen()
    for ctx in contexts_from_dataset(ds, list(ds.users.ids[:30])):
        p = src.propose(ctx, 50)
        touched = set(seen[ctx.followees].indices.tolist())
        authored = set(np.flatnonzero(np.isin(ds.item_author_index(), ctx.followees)).tolist())
        assert not set(p.items.tolist()) & (touched | authored)
        for item in p.items[:3]:
            for e in src.evidence(ctx, int(item)):
                assert e.kind == "user" and ds.users.index(e.id) not in set(ctx.followees)


def test_explore_evidence_credits_each_explorer_with_their_contribution(
    toy_platform: Dataset,
) -> None:
    """An item's evidence is read for that item alone; it names the explorers who liked it,
    strongest first, with the contribution the proposal summed (`_contributions`)."""
    ds = toy_platform
    src = fitted("explore", ds)
    checked = 0
    for ctx in contexts_from_dataset(ds, list(ds.users.ids[:40])):
        who, items, w = src._contributions(ctx)
        for item in [*np.unique(items).tolist(), 0, ds.n_items - 1]:
            sel = (items == item) & (w > 0)
            order = np.lexsort((who[sel], -w[sel]))
            expected = [
                (ds.users.id(int(v)), float(x))
                for v, x in zip(who[sel][order], w[sel][order], strict=True)
            ]
            got = [(e.id, e.weight) for e in src.evidence(ctx, int(item))]
            assert got == expected
            checked += bool(expected)
    assert checked > 50


# ----------------------------------------------------------------------------- knn, collaborative
def test_recent_item_knn_seeds_from_recent_history(toy_platform: Dataset) -> None:
    ds = toy_platform
    src = fitted("recent-item-knn", ds, n_recent=3)
    ctx = ctx_of(ds, ds.users.id(0))
    p = src.propose(ctx, 20)
    assert len(p.items) > 0
    recent = set(ds.items.lookup(ctx.history[:3]))
    for item in p.items:
        ev = src.evidence(ctx, int(item))
        assert ev and {e.id for e in ev} <= recent and all(e.kind == "item" for e in ev)
    # a user the data never saw, with a live history, gets the same neighbours
    cold = cold_context(ds, history=list(ds.items.lookup(ctx.history)), now=ctx.now)
    assert src.propose(cold, 20).items.tolist() == p.items.tolist()


def test_collaborative_wraps_a_zoo_model(toy_platform: Dataset) -> None:
    ds = toy_platform
    src = fitted("collaborative", ds)
    ctxs = contexts_from_dataset(ds, list(ds.users.ids[:5]))
    batch = src.propose_batch(ctxs, 10)
    assert [p.items.tolist() for p in batch] == [src.propose(c, 10).items.tolist() for c in ctxs]
    cold = cold_context(ds, history=list(ds.items.lookup(ctxs[0].history[:5])), now=ctxs[0].now)
    assert len(src.propose(cold, 10).items) == 10
    ev = src.evidence(ctxs[0], int(batch[0].items[0]))
    assert ev and all(e.id for e in ev)


# ----------------------------------------------------------------------------- every source
@pytest.mark.parametrize("name", sorted(SOURCES))
def test_every_source_obeys_the_rules(name: str, toy_platform: Dataset) -> None:
    ds = toy_platform
    src = fitted(name, ds)
    users = list(ds.users.ids[:12])
    # a live event beyond the training log must be masked too
    counts = ds.item_counts().astype(float)
    counts[ds.seen()[0].indices] = -1  # the most popular item user 0 has not seen
    live = {users[0]: [(ds.items.id(int(np.argmax(counts))), toy_now(ds), "like")]}
    ctxs = contexts_from_dataset(ds, users, now=toy_now(ds), extra_history=live)
    excluded = np.array([0, 1, 2, 3], np.int64)
    ctxs = [replace(c, exclude=excluded) for c in ctxs]
    created = ds.item_meta.created_at
    for ctx, p in zip(ctxs, src.propose_batch(ctxs, 15), strict=True):
        assert len(p.items) == len(p.scores) <= 15
        assert len(set(p.items.tolist())) == len(p.items)
        assert np.all(np.diff(p.scores) <= 1e-6)
        assert not set(p.items.tolist()) & set(ctx.history.tolist())
        assert not set(p.items.tolist()) & set(excluded.tolist())
        assert not np.any(created[p.items] > ctx.now)
        for item in p.items[:2]:
            for e in src.evidence(ctx, int(item)):
                if e.kind == "item":
                    assert ds.items.index(e.id) in set(ctx.history.tolist())
                if e.kind == "followee":
                    assert ds.users.index(e.id) in set(ctx.followees.tolist())
    # unknown users do not break anything
    cold = cold_context(ds, interests=("cat1",), now=ctxs[0].now)
    assert len(src.propose(cold, 5).items) <= 5


def toy_now(ds: Dataset) -> float:
    """A request time inside the toy catalogue's life, so some items are not yet published."""
    return float(np.nanmedian(ds.item_meta.created_at)) + 5 * DAY


@pytest.mark.parametrize("name", sorted(SOURCES))
def test_save_load_round_trip(name: str, toy_platform: Dataset, tmp_path: Path) -> None:
    ds = toy_platform
    src = fitted(name, ds)
    art = saved_state(src, ds, tmp_path / name)
    again = make_source(art.meta["source"], **art.meta["params"])
    again._set_state(art.arrays, art.meta)
    ctxs = contexts_from_dataset(ds, list(ds.users.ids[:8]))
    ctxs.append(
        cold_context(ds, interests=("cat2",), history=["i001"], followees=["u001"], now=ctxs[0].now)
    )
    for c, p, q in zip(
        ctxs, src.propose_batch(ctxs, 10), again.propose_batch(ctxs, 10), strict=True
    ):
        assert p.items.tolist() == q.items.tolist()
        np.testing.assert_allclose(p.scores, q.scores, rtol=1e-5)
        if len(p.items):
            assert src.evidence(c, int(p.items[0])) == again.evidence(c, int(p.items[0]))


@pytest.mark.parametrize("kind", ["hnsw", "ivf"])
def test_collaborative_indexes_travel_with_the_artifact(
    kind: str, toy_platform: Dataset, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The inner model's ANN indexes are saved in the source's arrays and read back, not
    rebuilt (an inverted file at 1M items is k-means: seconds per load and per process)."""
    from serendip.models.ann import AnnRetrieval

    ds = toy_platform
    inner = {"factors": 8, "iterations": 3, "ann": True, "ann_exact_below": 0}
    if kind == "ivf":
        inner["ann_ivf_from"] = 0
    src = make_source("collaborative", model="ials", params=inner).fit(ds)
    assert {ix.kind for ix in src.model_.ann_indexes_.values()} == {kind}
    art = saved_state(src, ds, tmp_path / "s")

    def no_rebuild(self: AnnRetrieval) -> None:
        raise AssertionError("the indexes were rebuilt")

    monkeypatch.setattr(AnnRetrieval, "build_ann", no_rebuild)
    again = make_source("collaborative", **art.meta["params"])
    again._set_state(art.arrays, art.meta)
    assert set(again.model_.ann_indexes_) == set(src.model_.ann_indexes_)
    ctxs = contexts_from_dataset(ds, list(ds.users.ids[:20]))
    for p, q in zip(src.propose_batch(ctxs, 10), again.propose_batch(ctxs, 10), strict=True):
        assert p.items.tolist() == q.items.tolist()
        np.testing.assert_array_equal(p.scores, q.scores)
    # an artifact from before the indexes travelled: rebuilt from the factors
    monkeypatch.undo()
    old_meta = {**art.meta, "model": {k: v for k, v in art.meta["model"].items()
                                       if k != "ann_entries"}}  # fmt: skip
    older = make_source("collaborative", **art.meta["params"])
    older._set_state(art.arrays, old_meta)
    assert set(older.model_.ann_indexes_) == set(src.model_.ann_indexes_)
