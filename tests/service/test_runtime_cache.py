"""The runtime's serving fast path for the pipeline: per-user cached candidates (sources, merge,
features and ranker run once per user and live state), with filters, re-ranking and backfill on
every request. A cached answer must equal the uncached one in every case: after events, follows,
deletions, catalog updates, with every filter, across swaps, under the LRU bound."""

from __future__ import annotations

from functools import cache
from pathlib import Path

import numpy as np
import pytest

from serendip.data.dataset import Dataset
from serendip.errors import ConfigError
from serendip.service.runtime import ModelRuntime, RecItem, SnapshotCache
from serendip.store import EventIn, ItemIn
from tests.conftest import make_toy_platform

USERS = ["u001", "u007", "u013", "u029", "u042", "newcomer"]


def _ev(user: str, item: str, event: str = "like", timestamp: float = 1_700_900_000.0) -> EventIn:
    return EventIn("", user, item, event, timestamp)


@cache
def _ds() -> Dataset:
    return make_toy_platform()


def _pair(pipe: Path) -> tuple[ModelRuntime, ModelRuntime]:
    """A cached runtime (the per-user cache alone: no precomputed lists) and an uncached
    reference on the same artifact."""
    cached, ref = ModelRuntime(precompute=False), ModelRuntime(cache_size=0)
    cached.load(pipe, "v1")
    ref.load(pipe, "v1")
    return cached, ref


def _ids(recs: list[RecItem]) -> list[str]:
    return [r.item for r in recs]


def _stats(rt: ModelRuntime) -> dict[str, int]:
    snap = rt.snapshot
    assert snap is not None and snap.cache is not None
    return snap.cache.stats()


def test_a_hit_returns_exactly_what_a_miss_and_the_uncached_pipeline_return(pipe: Path) -> None:
    rt, ref = _pair(pipe)
    for user in USERS:
        for k, explain in ((10, True), (5, False), (30, True)):
            miss_or_hit = rt.recommend(user, k, explain=explain)
            again = rt.recommend(user, k, explain=explain)
            want = ref.recommend(user, k, explain=explain)
            assert miss_or_hit == again == want
            assert len(want) == k
    stats = _stats(rt)
    assert stats["entries"] == len(USERS)
    assert stats["misses"] == len(USERS)  # one per user; every later request was a hit
    assert stats["hits"] == 5 * len(USERS)
    # explanations are per request copies carrying the score served
    recs = rt.recommend("u001", 3, explain=True)
    assert all(r.explanation is not None and r.explanation["score"] == r.score for r in recs)


def test_an_event_invalidates_the_user_and_is_excluded_at_once(pipe: Path) -> None:
    rt, ref = _pair(pipe)
    before = rt.recommend("u007", 10, explain=True)
    other = rt.recommend("u013", 10)
    misses = _stats(rt)["misses"]
    events = [_ev("u007", before[0].item), _ev("u007", before[3].item, "view", 1_700_900_100.0)]
    for runtime in (rt, ref):
        runtime.on_events(events)
    after = rt.recommend("u007", 10, explain=True)
    assert not {before[0].item, before[3].item} & set(_ids(after))
    # recomputed (the recent-history sources saw the events), equal to the uncached answer
    assert _stats(rt)["misses"] == misses + 1
    assert after == ref.recommend("u007", 10, explain=True)
    # another user's entry is still fresh
    assert rt.recommend("u013", 10) == other
    assert _stats(rt)["misses"] == misses + 1


def test_a_follow_or_unfollow_invalidates_the_user(pipe: Path) -> None:
    rt, ref = _pair(pipe)
    rt.recommend("newcomer", 10, explain=True)
    for runtime in (rt, ref):
        runtime.on_follow("newcomer", "u001")
    got = rt.recommend("newcomer", 10, explain=True)
    assert got == ref.recommend("newcomer", 10, explain=True)
    assert any(
        e["kind"] == "followee" and e["id"] == "u001"
        for r in got
        for e in (r.explanation or {}).get("evidence", [])
    )
    for runtime in (rt, ref):
        runtime.on_unfollow("newcomer", "u001")
    assert rt.recommend("newcomer", 10, explain=True) == ref.recommend("newcomer", 10, explain=True)


def test_a_deleted_item_vanishes_from_cached_lists_at_once(pipe: Path) -> None:
    rt, ref = _pair(pipe)
    lists = {u: rt.recommend(u, 10) for u in USERS}
    gone = lists["u001"][0].item
    misses = _stats(rt)["misses"]
    for runtime in (rt, ref):
        runtime.on_items_deleted([gone])
    for user in USERS:
        got = rt.recommend(user, 10)
        assert gone not in _ids(got) and len(got) == 10
        assert got == ref.recommend(user, 10)
    assert _stats(rt)["misses"] == misses  # served from the cached candidates
    # re-adding the item (a catalog upsert) brings it back at once
    for runtime in (rt, ref):
        runtime.on_items([ItemIn(gone)])
    assert rt.recommend("u001", 10) == ref.recommend("u001", 10) == lists["u001"]


def test_filters_on_cached_candidates_are_exact(pipe: Path) -> None:
    rt, ref = _pair(pipe)
    ds = _ds()
    cat = dict(zip(ds.items.ids, np.asarray(ds.item_meta.category), strict=True))
    author = dict(zip(ds.items.ids, np.asarray(ds.item_meta.author), strict=True))
    some_authors = sorted(set(author.values()))[:8]
    for user in USERS:
        rt.recommend(user, 10)  # warm the cache
        plain = _ids(ref.recommend(user, 10))
        cases: list[dict[str, object]] = [
            {"categories": ["cat1"]},
            {"categories": ["cat0", "cat2"], "authors": some_authors},
            {"authors": some_authors},
            {"exclude": plain[:3]},
            {"categories": ["no-such-category"]},
        ]
        for kw in cases:
            got = rt.recommend(user, 10, explain=True, **kw)  # type: ignore[arg-type]
            assert got == ref.recommend(user, 10, explain=True, **kw)  # type: ignore[arg-type]
            if kw.get("categories") == ["cat1"]:
                assert got  # non-trivial: the toy catalog has cat1 items for everyone
            if "categories" in kw:
                assert all(cat[r.item] in kw["categories"] for r in got)  # type: ignore[operator]
            if "authors" in kw:
                assert all(author[r.item] in some_authors for r in got)
            if "exclude" in kw:
                assert not set(plain[:3]) & set(_ids(got))
        assert rt.recommend(user, 10, categories=["no-such-category"]) == []
        # the context item is part of the context: cached under its own key
        ctx = rt.recommend(user, 10, context_item=plain[0])
        assert plain[0] not in _ids(ctx)
        assert ctx == ref.recommend(user, 10, context_item=plain[0])
        assert rt.recommend(user, 10, context_item=plain[0]) == ctx
    # a live catalog update moves an item between categories, for cached users too
    moved = _ids(rt.recommend("u001", 10))[0]
    for runtime in (rt, ref):
        runtime.on_items([ItemIn(moved, category="cat-new", author="someone")])
    assert _ids(rt.recommend("u001", 10, categories=["cat-new"])) == [moved]
    assert _ids(rt.recommend("u001", 10, authors=["someone"])) == [moved]
    for user in USERS:
        kws: list[dict[str, object]] = [{"categories": [cat[moved]]}, {"authors": [author[moved]]}]
        for kw in kws:
            got = rt.recommend(user, 10, **kw)  # type: ignore[arg-type]
            assert moved not in _ids(got)
            assert got == ref.recommend(user, 10, **kw)  # type: ignore[arg-type]


def test_a_swap_starts_an_empty_cache(pipe: Path) -> None:
    rt = ModelRuntime(precompute=False)  # the LRU alone, no precomputed lists
    rt.load(pipe, "v1")
    first = rt.snapshot
    assert first is not None and first.cache is not None
    before = {u: rt.recommend(u, 10) for u in USERS}
    assert len(first.cache) == len(USERS)
    rt.load(pipe, "v2")
    second = rt.snapshot
    assert second is not None and second.cache is not None
    assert second.cache is not first.cache and len(second.cache) == 0
    assert {u: rt.recommend(u, 10) for u in USERS} == before  # same artifact, same answers
    assert len(second.cache) == len(USERS)
    assert len(first.cache) == len(USERS)  # the old snapshot's requests finish on its own cache


def test_the_cache_is_a_bounded_lru(pipe: Path) -> None:
    rt = ModelRuntime(cache_size=3, precompute=False)  # the LRU alone, no precomputed lists
    rt.load(pipe, "v1")
    for user in ["u001", "u007", "u013"]:
        rt.recommend(user, 5)
    rt.recommend("u001", 5)  # hit: u001 becomes the most recent
    rt.recommend("u029", 5)  # evicts u007, the least recently used
    stats = _stats(rt)
    assert stats["entries"] == 3 and (stats["hits"], stats["misses"]) == (1, 4)
    rt.recommend("u013", 5)
    rt.recommend("u001", 5)
    assert _stats(rt)["misses"] == 4  # still cached
    rt.recommend("u007", 5)
    assert _stats(rt)["misses"] == 5  # was evicted
    off = ModelRuntime(cache_size=0)
    off.load(pipe, "v1")
    off.recommend("u001", 5)
    assert _stats(off)["entries"] == 0
    with pytest.raises(ConfigError, match="cache_size"):
        ModelRuntime(cache_size=-1)
    with pytest.raises(ConfigError, match="capacity"):
        SnapshotCache(-1)


def test_serving_limits_blas_and_openmp_to_one_thread(pipe: Path) -> None:
    from threadpoolctl import threadpool_info

    rt = ModelRuntime()
    rt.load(pipe, "v1")
    assert all(int(lib["num_threads"]) == 1 for lib in threadpool_info())


def test_users_the_model_never_saw_share_the_cold_start_candidates(pipe: Path) -> None:
    rt, ref = _pair(pipe)
    strangers = ["stranger-1", "stranger-2", "stranger-3"]
    for user in strangers:
        got = rt.recommend(user, 10, explain=True)
        assert got == ref.recommend(user, 10, explain=True)
        assert all(r.explanation is not None and r.explanation["user"] == user for r in got)
    assert _stats(rt)["entries"] == 1 and _stats(rt)["misses"] == 1
    # an event gives the stranger a context of their own
    first = rt.recommend("stranger-2", 10)[0].item
    for runtime in (rt, ref):
        runtime.on_events([_ev("stranger-2", first)])
    got = rt.recommend("stranger-2", 10, explain=True)
    assert first not in _ids(got) and got == ref.recommend("stranger-2", 10, explain=True)
    assert _stats(rt)["entries"] == 2
    assert rt.recommend("stranger-1", 10) == ref.recommend("stranger-1", 10)
