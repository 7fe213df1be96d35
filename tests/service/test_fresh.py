"""Items added through the API after the fit reach personal recommendations at once (the
runtime's live catalog step): by an author the user follows, or in the user's most read
category; never for others, never when deleted, filtered, seen or not yet created; k stays k.
Through the HTTP API on the toy item-kNN model, and on the pipeline (precomputed lists, the
per-user cache and the uncached path agree)."""

from __future__ import annotations

import time
from collections import Counter
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient

from serendip.data.dataset import Dataset
from serendip.errors import ConfigError
from serendip.service.runtime import ModelRuntime, RecItem
from serendip.serving.fresh import FreshIndex
from serendip.serving.serve import fresh_index
from serendip.store import EventIn, ItemIn, Store
from tests.conftest import make_toy_platform
from tests.service.conftest import ClientFactory, ready_lists

NEW_CATEGORY = "brand-new-category"  # nobody's history has it: the content route never fires


@pytest.fixture
def live(store: Store, real_runtime: Any, make_client: ClientFactory) -> TestClient:
    return make_client(store, real_runtime)


def _recs(client: TestClient, user: str, **params: Any) -> list[dict[str, Any]]:
    r = client.get(f"/v1/users/{user}/recommendations", params=params)
    assert r.status_code == 200, r.text
    items: list[dict[str, Any]] = r.json()["items"]
    return items


def _upsert(client: TestClient, **item: Any) -> None:
    assert client.post("/v1/items", json={"items": [item]}).status_code == 200


def _top_category(ds: Dataset, user: str) -> str:
    u = ds.users.index(user)
    cats = ds.item_meta.category[ds.interactions.item[ds.interactions.user == u]]
    return str(Counter(str(c) for c in cats).most_common(1)[0][0])


def test_new_item_by_a_followed_author_reaches_the_follower_at_once(
    live: TestClient, toy_platform: Any
) -> None:
    user, other = str(toy_platform.users.ids[0]), str(toy_platform.users.ids[1])
    before = [x["item"] for x in _recs(live, user, k=10)]
    assert live.put(f"/v1/users/{user}/follows/new-author").status_code == 200
    _upsert(live, item="fresh-a", title="t", category=NEW_CATEGORY, author="new-author")

    recs = _recs(live, user, k=10, explain=True)
    assert len(recs) == 10  # k stays k: the new item takes the last slot
    assert [x["item"] for x in recs[:9]] == before[:9]
    assert recs[9]["item"] == "fresh-a"
    assert recs[9]["score"] < recs[8]["score"]
    expl = recs[9]["explanation"]
    assert expl["text"] == "New from new-author, whom you follow"
    assert expl["evidence"][0]["kind"] == "source"
    assert expl["evidence"][0]["id"] == "fresh-followed"
    assert {"kind": "author", "id": "new-author"}.items() <= expl["evidence"][1].items()
    assert expl["score"] == recs[9]["score"] and expl["user"] == user

    # someone who does not follow the author, with another most read category: not for them
    assert "fresh-a" not in [x["item"] for x in _recs(live, other, k=50)]
    # an author filter without the author excludes it; one with the author keeps it
    shown = [x["item"] for x in _recs(live, user, k=10, author="u002")]
    assert "fresh-a" not in shown
    assert [x["item"] for x in _recs(live, user, k=10, author="new-author")] == ["fresh-a"]
    assert "fresh-a" not in [x["item"] for x in _recs(live, user, k=10, exclude="fresh-a")]
    # deleting it removes it at once; unfollowing the author does too
    assert live.delete("/v1/items/fresh-a").status_code == 200
    assert "fresh-a" not in [x["item"] for x in _recs(live, user, k=50)]
    _upsert(live, item="fresh-a", title="t", category=NEW_CATEGORY, author="new-author")
    assert "fresh-a" in [x["item"] for x in _recs(live, user, k=10)]
    assert live.delete(f"/v1/users/{user}/follows/new-author").status_code == 200
    assert "fresh-a" not in [x["item"] for x in _recs(live, user, k=50)]


def test_new_item_in_the_most_read_category_reaches_its_readers(
    live: TestClient, toy_platform: Any
) -> None:
    users = [str(u) for u in toy_platform.users.ids[:40]]
    cats = {u: _top_category(toy_platform, u) for u in users}
    user = users[0]
    other = next(u for u in users if cats[u] != cats[user])
    _upsert(live, item="fresh-c", title="t", category=cats[user], author="someone-new")

    recs = _recs(live, user, k=5, explain=True)
    assert len(recs) == 5 and recs[-1]["item"] == "fresh-c"
    expl = recs[-1]["explanation"]
    assert expl["text"] == f"New in {cats[user]}, which you often read"
    assert [e["id"] for e in expl["evidence"]] == ["content", cats[user]]
    assert "fresh-c" not in [x["item"] for x in _recs(live, other, k=50)]
    # a category filter without its category excludes it
    assert "fresh-c" not in [x["item"] for x in _recs(live, user, k=5, category=cats[other])]
    # once the user has seen it, it is not shown again
    ev = {"event_id": "fc1", "user": user, "item": "fresh-c", "event": "view"}
    assert live.post("/v1/events", json=ev).status_code == 200
    assert "fresh-c" not in [x["item"] for x in _recs(live, user, k=50)]


def test_fresh_slots_newest_first_author_route_first_and_not_before_creation(
    real_runtime: ModelRuntime, toy_platform: Any
) -> None:
    rt = real_runtime
    user = str(toy_platform.users.ids[0])
    cat = _top_category(toy_platform, user)
    rt.on_follow(user, "writer")
    now = time.time()
    rt.on_items(
        [
            ItemIn("by-writer-old", category=NEW_CATEGORY, author="writer", created_at=now - 50),
            ItemIn("by-writer-new", category=NEW_CATEGORY, author="writer", created_at=now - 10),
            ItemIn("in-cat-newest", category=cat, author="stranger", created_at=now - 1),
            ItemIn("by-writer-future", category=cat, author="writer", created_at=now + 3600),
        ]
    )
    got = [r.item for r in rt.recommend(user, 10)]
    assert len(got) == 10
    assert got[-2:] == ["by-writer-new", "by-writer-old"]  # at most 2 slots, author route first
    rt.fresh_slots = 3
    assert [r.item for r in rt.recommend(user, 10)][-3:] == [
        "by-writer-new",
        "by-writer-old",
        "in-cat-newest",
    ]
    assert [r.item for r in rt.recommend(user, 1)] == ["by-writer-new"]  # never more than k
    rt.fresh_slots = 0
    assert not {"by-writer-new", "by-writer-old", "in-cat-newest"} & {
        r.item for r in rt.recommend(user, 50)
    }
    with pytest.raises(ConfigError):
        ModelRuntime(fresh_slots=-1)


def test_items_the_model_knows_are_not_fresh(real_runtime: ModelRuntime, toy_platform: Any) -> None:
    """A catalog update of a fitted item is not a new item: the model ranks it as before."""
    rt = real_runtime
    user = str(toy_platform.users.ids[0])
    before = rt.recommend(user, 10)
    known = str(toy_platform.items.ids[0])
    rt.on_follow(user, "writer")
    rt.on_items([ItemIn(known, category=NEW_CATEGORY, author="writer")])
    assert rt.recommend(user, 10) == before


def test_the_index_follows_updates_and_deletions_incrementally(
    real_runtime: ModelRuntime, toy_platform: Any
) -> None:
    rt = real_runtime
    user = str(toy_platform.users.ids[0])
    rt.on_follow(user, "writer")
    rt.on_items([ItemIn(str(i), category="x") for i in toy_platform.items.ids])  # all known
    rt.on_items([ItemIn("new-1", category=NEW_CATEGORY, author="someone")])
    assert "new-1" not in _ids(rt.recommend(user, 50))
    rt.on_items([ItemIn("new-1", category=NEW_CATEGORY, author="writer")])  # new author
    assert _ids(rt.recommend(user, 10))[-1] == "new-1"
    snap = rt.snapshot
    assert snap is not None and snap.cache is not None
    index = snap.cache.fresh()
    assert index is not None and set(index.info) == {"new-1"}  # the known items are not kept
    rt.on_items_deleted(["new-1"])
    assert "new-1" not in _ids(rt.recommend(user, 50))
    rt.on_items([ItemIn("new-1", category=NEW_CATEGORY, author="writer")])  # back again
    assert _ids(rt.recommend(user, 10))[-1] == "new-1"


def test_the_incremental_index_equals_one_built_from_scratch(
    real_runtime: ModelRuntime, toy_platform: Any
) -> None:
    """Random upserts (new and fitted items, authors and categories changing), deletions and a
    log compaction: after each, the index the runtime keeps up to date incrementally is the
    one built from the whole live state."""
    rt = real_runtime
    snap = rt.snapshot
    assert snap is not None and snap.cache is not None
    rng = np.random.default_rng(7)
    known = [str(i) for i in toy_platform.items.ids[:5]]
    pool = [f"n{j}" for j in range(12)] + known
    for step in range(120):
        if rng.random() < 0.3:
            rt.on_items_deleted(list(rng.choice(pool, size=2, replace=False)))
        else:
            item = str(rng.choice(pool))
            created = None if rng.random() < 0.3 else float(rng.integers(0, 5))
            author, category = f"a{rng.integers(0, 3)}", f"c{rng.integers(0, 3)}"
            times = 10_001 if step == 60 else 1  # one batch long enough to compact the log
            rt.on_items(
                [ItemIn(item, category=category, author=author, created_at=created)] * times
            )
        if step % 40 == 0:  # a bulk upsert: many arrivals into one group at once
            batch = [f"b{step}-{j}" for j in range(20)]
            pool += batch[:2]
            rt.on_items([ItemIn(b, category="c0", author="a0", created_at=1.5) for b in batch])
        got = fresh_index(snap, rt.state)
        want = FreshIndex.build(rt.state.catalog_version, snap.model, rt.state, None)
        assert (got.info, got.by_author, got.by_category) == (
            want.info,
            want.by_author,
            want.by_category,
        )
    assert got.epoch == 1  # the compaction happened, and the index followed it


# ---------------------------------------------------------------- the pipeline


@cache
def _ds() -> Dataset:
    return make_toy_platform()


def _ids(recs: list[RecItem]) -> list[str]:
    return [r.item for r in recs]


def test_pipeline_fitted_follows_reach_new_items_on_every_path(pipe: Path) -> None:
    ds = _ds()
    lists = ModelRuntime()  # precomputed lists (built in the background after the load)
    cached = ModelRuntime(precompute=False)  # the per-user cache alone
    uncached = ModelRuntime(cache_size=0)
    for rt in (lists, cached, uncached):
        rt.load(pipe, "v1")
    ready_lists(lists)
    g = ds.social
    user_idx, followee_idx = int(g.follower[0]), int(g.followee[0])
    user, author = str(ds.users.id(user_idx)), str(ds.users.id(followee_idx))
    stranger = next(
        str(ds.users.id(u))
        for u in range(ds.n_users)
        if followee_idx not in set(g.followee[g.follower == u].tolist()) and u != followee_idx
    )
    item = ItemIn("fresh-p", category=NEW_CATEGORY, author=author)
    answers = []
    for rt in (lists, cached, uncached):
        rt.recommend(user, 10)  # fill the caches before the item arrives
        rt.on_items([item])
        answers.append(rt.recommend(user, 10, explain=True))
        assert "fresh-p" not in _ids(rt.recommend(stranger, 50))
    assert answers[0] == answers[1] == answers[2]
    recs = answers[0]
    assert len(recs) == 10 and recs[-1].item == "fresh-p"
    assert recs[-1].explanation is not None
    assert recs[-1].explanation["text"] == f"New from {author}, whom you follow"
    for rt in (lists, cached, uncached):
        rt.on_unfollow(user, author)  # a live unfollow beats the fitted graph
        assert "fresh-p" not in _ids(rt.recommend(user, 50))
        rt.on_follow(user, author)
        rt.on_events([EventIn("", user, "fresh-p", "view", time.time())])
        assert "fresh-p" not in _ids(rt.recommend(user, 50))  # seen
