"""Active users on the fast path: a user with events since the fit is served from their
precomputed candidates updated with those events (`serendip.pipeline.incremental`), catalog
changes leave users on the precomputed path, and users whose fitted view no longer holds
(touched by a privacy change, erased) are computed in full."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from serendip.service.runtime import ModelRuntime
from serendip.serving.precompute import build_ranked_lists, fingerprint
from serendip.store import EventIn


@pytest.fixture(scope="module")
def artifact(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The pipeline (quick parameters) fitted on the `tiny` preset, saved with its lists."""
    from serendip.data.loaders.platform import load_platform
    from serendip.data.synthetic import generate_platform
    from serendip.models import get_model_class
    from serendip.pipeline.serving import serving_model

    root = tmp_path_factory.mktemp("incremental")
    generate_platform("tiny", seed=1, out=root / "tiny")
    cls = get_model_class("pipeline")
    model = cls(dict(cls.quick_params)).fit(load_platform(root / "tiny"))
    path = model.save(root / "pipe")
    lists = build_ranked_lists(serving_model(model), fingerprint=fingerprint(path))
    assert lists is not None
    lists.save(path)
    return path


def _runtime(artifact: Path, *, incremental: bool = True) -> ModelRuntime:
    rt = ModelRuntime(build_in_background=False, freeze_gc=False, incremental=incremental)
    rt.load(artifact, "v1")
    snap = rt.snapshot
    assert snap is not None and snap.lists is not None and snap.lists.state == "ready"
    return rt


def _paths(rt: ModelRuntime) -> dict[str, int]:
    snap = rt.snapshot
    assert snap is not None and snap.cache is not None
    return dict(snap.cache.paths)


def _like(rt: ModelRuntime, user: str, items: list[str], t: float) -> None:
    rt.on_events([EventIn(f"e-{user}-{j}", user, i, "like", t + j) for j, i in enumerate(items)])


def _neighbours(rt: ModelRuntime, item: str) -> list[str]:
    """The recent-item kNN source's neighbours of `item`, most similar first."""
    model: Any = rt.snapshot.model  # type: ignore[union-attr]
    sim = model.stage_.sources["recent-item-knn"].sim_
    i = model.items_.index(item)
    row = slice(sim.indptr[i], sim.indptr[i + 1])
    order = np.argsort(-sim.data[row], kind="stable")
    return [str(x) for x in model.items_.lookup(sim.indices[row][order])]


def _proposed(rt: ModelRuntime, user: str, source: str) -> set[str]:
    """The items `source` proposed among the user's cached candidates."""
    snap = rt.snapshot
    assert snap is not None and snap.cache is not None
    entry = snap.cache.get((user, None), rt.state.user_version(user))
    assert entry is not None
    j = entry.ranked.sources.index(source)
    ok = ~np.isnan(entry.ranked.source_rank[:, j])
    return {str(x) for x in snap.model.items_.lookup(entry.items[ok])}


def _soon(rt: ModelRuntime) -> float:
    """An hour after the newest fitted event: live traffic soon after a fit."""
    return float(rt.snapshot.model.now_) + 3600.0  # type: ignore[union-attr]


def test_a_user_with_new_events_takes_the_incremental_path_and_sees_the_new_neighbours(
    artifact: Path,
) -> None:
    rt = _runtime(artifact)
    full = _runtime(artifact, incremental=False)
    model: Any = rt.snapshot.model  # type: ignore[union-attr]
    user = str(model.users_.ids[3])
    before = [r.item for r in rt.recommend(user, 20)]
    assert _paths(rt) == {"precomputed": 1}
    # the user takes the first item served with kNN neighbours not yet in the list (a fresh
    # item may have none: which one ranks first varies with the ranker's fit)
    liked = next(i for i in before if set(_neighbours(rt, i)[:20]) - set(before))
    for r in (rt, full):
        _like(r, user, [liked], _soon(rt))
    after = rt.recommend(user, 20, explain=True)
    assert _paths(rt) == {"precomputed": 1, "incremental": 1}
    ids = [r.item for r in after]
    assert liked not in ids and len(ids) == 20
    # the candidates now hold the kNN source's proposals for the new history, as the full
    # path's do, among them neighbours of the liked item
    neighbours = _neighbours(rt, liked)[:20]
    ref20 = [r.item for r in full.recommend(user, 20)]
    ref = ref20[:10]
    assert _paths(full).get("full") == 1
    proposed = [_proposed(r, user, "recent-item-knn") for r in (rt, full)]
    assert proposed[0] == proposed[1] and set(neighbours) & proposed[0]
    # ... and the list moved as the full recompute's did (re-scored on the new history): the
    # neighbours that come into the full list come into this one
    came_in = set(neighbours) - set(before)
    assert set(ids) & came_in == set(ref20) & came_in
    # close to the full recompute: most of its top 10 are the incremental list's
    assert len(set(ref) & set(ids[:10])) >= 7
    # a repeated request is a cache hit; a new event updates again
    assert [r.item for r in rt.recommend(user, 20)] == ids
    assert _paths(rt)["hit"] == 1
    _like(rt, user, [ids[0]], _soon(rt) + 10)
    again = [r.item for r in rt.recommend(user, 20)]
    assert _paths(rt)["incremental"] == 2
    assert ids[0] not in again and liked not in again


def test_catalog_changes_keep_users_on_the_fast_path(artifact: Path) -> None:
    rt = _runtime(artifact)
    model: Any = rt.snapshot.model  # type: ignore[union-attr]
    quiet, active = str(model.users_.ids[5]), str(model.users_.ids[6])
    quiet_before = [r.item for r in rt.recommend(quiet, 10)]
    active_before = [r.item for r in rt.recommend(active, 10)]
    # a live feed: items deleted (among those served) and new items the model never saw
    gone = [quiet_before[0], active_before[1]]
    rt.on_items_deleted(gone)
    followee = sorted(rt.snapshot.serving.followees(quiet))[0]  # type: ignore[union-attr]
    rt.on_items([{"item": "new-1", "category": "", "author": followee, "created_at": 1.0}])
    _like(rt, active, [active_before[2]], _soon(rt))
    quiet_after = [r.item for r in rt.recommend(quiet, 10)]
    active_after = [r.item for r in rt.recommend(active, 10)]
    paths = _paths(rt)
    assert paths.get("full", 0) == 0
    assert paths["precomputed"] == 3 and paths["incremental"] == 1
    assert not set(gone) & (set(quiet_after) | set(active_after))
    assert active_before[2] not in active_after  # seen now
    assert "new-1" in quiet_after  # through the fresh-item slots


def test_users_whose_fitted_view_no_longer_holds_are_computed_in_full(artifact: Path) -> None:
    rt = _runtime(artifact)
    model: Any = rt.snapshot.model  # type: ignore[union-attr]
    touched, erased, follower = (str(model.users_.ids[j]) for j in (7, 8, 9))
    rt.state.touch([touched])
    rt.state.forget_user(erased)
    rt.on_follow(follower, str(model.users_.ids[10]))
    for user in (touched, erased, follower):
        rt.recommend(user, 10)
    # a follow change updates the social sources: still incremental
    assert _paths(rt) == {"full": 2, "incremental": 1}


def test_updating_every_source_gives_the_full_pipelines_candidates(artifact: Path) -> None:
    """The merge is exact: with every source proposed anew, the update of the precomputed
    candidates is the full path's ranking (what keeping some sources approximates)."""
    from serendip.pipeline.incremental import update_ranked

    rt = _runtime(artifact)
    snap = rt.snapshot
    assert snap is not None and snap.lists is not None and snap.lists.lists is not None
    model: Any = snap.model
    user = str(model.users_.ids[12])
    _like(rt, user, [r.item for r in rt.recommend(user, 3)], _soon(rt))
    ctx = snap.serving.contexts([rt.state.live_user(user)])[0]
    pre = snap.lists.lists.get(model.users_.index(user))
    assert pre is not None
    got = update_ranked(model, ctx, pre.ranked(snap.lists.lists.sources), snap.serving.sources)
    want = snap.serving.candidates([ctx])[0]
    assert np.array_equal(got.items, want.items)
    assert np.allclose(got.scores, want.scores, rtol=1e-6, atol=1e-7)
    assert np.array_equal(got.source_rank, want.source_rank, equal_nan=True)
    assert got.total == want.total


def test_live_users_can_be_updated_as_their_events_arrive(artifact: Path) -> None:
    """`refresh_live`: the update runs when the events arrive, the request is a cache hit
    with the final list and explanations ready, and serves what the lazy update serves."""
    rt = ModelRuntime(build_in_background=False, freeze_gc=False, refresh_live=True)
    rt.load(artifact, "v1")
    lazy = _runtime(artifact)
    model: Any = rt.snapshot.model  # type: ignore[union-attr]
    users = [str(model.users_.ids[j]) for j in (20, 21)]
    for r in (rt, lazy):
        for user in users:
            _like(r, user, [str(model.items_.ids[5]), str(model.items_.ids[9])], _soon(rt))
    assert rt._refresher is not None and rt._refresher.drain()
    assert _paths(rt) == {"incremental": 2}
    for user in users:
        assert rt.recommend(user, 20, explain=True) == lazy.recommend(user, 20, explain=True)
        assert rt.recommend(user, 10) == lazy.recommend(user, 10)
    assert _paths(rt) == {"incremental": 2, "hit": 4}
    rt._refresher.stop()


def test_live_users_replayed_before_a_load_are_updated_after_it(artifact: Path) -> None:
    """A restart replays the live events before any model is loaded (`warm_runtime`); the
    load then queues the most recently active live users, so their first requests are hits."""
    lazy = _runtime(artifact)
    model: Any = lazy.snapshot.model  # type: ignore[union-attr]
    users = [str(model.users_.ids[j]) for j in (30, 31, 32)]
    items = [str(model.items_.ids[5]), str(model.items_.ids[9])]
    rt = ModelRuntime(build_in_background=False, freeze_gc=False, refresh_live=True, cache_size=2)
    for r in (rt, lazy):
        for n, user in enumerate(users):  # user 32 the most recent
            _like(r, user, items, _soon(lazy) + 10 * n)
    assert rt.state.recent_users(2) == [users[2], users[1]]
    rt.load(artifact, "v1")
    assert rt._refresher is not None and rt._refresher.drain()
    assert _paths(rt) == {"incremental": 2}  # as many as the cache holds, newest first
    for user in users[1:]:
        assert rt.recommend(user, 20, explain=True) == lazy.recommend(user, 20, explain=True)
    assert _paths(rt) == {"incremental": 2, "hit": 2}
    rt._refresher.stop()
