"""Precomputed ranked candidates (`serendip.serving.precompute`): built in batch, saved with the
artifact, loaded on the next start, and served exactly as the uncached pipeline would serve --
also when the list is cut at its depth and a request's filters need more of it, after events
and after deletions."""

from __future__ import annotations

import shutil
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from serendip.data.dataset import Dataset
from serendip.pipeline.serving import serving_model
from serendip.service.runtime import ModelRuntime
from serendip.serving.precompute import LISTS_DIR, RankedLists, build_ranked_lists, fingerprint
from serendip.store import EventIn
from tests.conftest import make_toy_platform
from tests.service.conftest import ready_lists

USERS = ["u001", "u007", "u013", "u029", "u042", "newcomer"]


@cache
def _ds() -> Dataset:
    return make_toy_platform()


def _copy(pipe: Path, tmp_path: Path) -> Path:
    out = tmp_path / "artifact"
    shutil.copytree(pipe, out)
    return out


def _ready(rt: ModelRuntime, timeout: float = 60.0) -> RankedLists:
    lists: RankedLists = ready_lists(rt, timeout)
    return lists


def _pair(path: Path) -> tuple[ModelRuntime, ModelRuntime]:
    rt, ref = ModelRuntime(), ModelRuntime(cache_size=0)
    rt.load(path, "v1")
    ref.load(path, "v1")
    return rt, ref


def test_lists_are_built_after_load_saved_and_loaded_on_the_next_start(
    pipe: Path, tmp_path: Path
) -> None:
    path = _copy(pipe, tmp_path)
    rt, ref = _pair(path)
    lists = _ready(rt)
    model = rt.snapshot.model  # type: ignore[union-attr]
    assert len(lists) == len(model.users_)
    assert (path / LISTS_DIR / "meta.json").is_file()
    for user in USERS:
        assert rt.recommend(user, 10, explain=True) == ref.recommend(user, 10, explain=True)
    # a restart finds them with the artifact: ready at once, nothing rebuilt
    again = ModelRuntime(build_in_background=False)
    again.load(path, "v1")
    loaded = _ready(again, timeout=0)
    assert np.array_equal(np.asarray(loaded.a["items"]), np.asarray(lists.a["items"]))
    for user in USERS:
        assert again.recommend(user, 10, explain=True) == ref.recommend(user, 10, explain=True)


def test_lists_of_another_fit_are_ignored(pipe: Path, tmp_path: Path) -> None:
    path = _copy(pipe, tmp_path)
    rt = ModelRuntime()
    rt.load(path, "v1")
    lists = _ready(rt)
    assert RankedLists.load(path, fingerprint="another fit") is None
    assert RankedLists.load(tmp_path, fingerprint=lists.fingerprint) is None  # none saved there


@pytest.mark.parametrize("depth", [3, 44, None])
def test_served_lists_equal_the_uncached_pipeline_at_any_depth(
    pipe: Path, tmp_path: Path, depth: int | None
) -> None:
    """A cut list (depth below the re-ranking pool) sends every request to the full path, a
    deep one serves from the lists; both are exact, with filters, after deletions and events
    (users with events then take the full path: `incremental=False`; the incremental update of
    the lists is tested in tests/serving/test_incremental.py)."""
    path = _copy(pipe, tmp_path)
    rt = ModelRuntime(build_in_background=False, incremental=False)
    ref = ModelRuntime(cache_size=0, incremental=False)
    rt.load(path, "v1")
    ref.load(path, "v1")
    snap = rt.snapshot
    assert snap is not None and snap.lists is not None
    snap.lists.lists = build_ranked_lists(snap.serving, fingerprint="-", depth=depth, batch=7)
    snap.lists.state = "ready"
    model: Any = snap.model
    assert model.rerank_pool == 40  # quick_params: depth 44 is cut but holds a pool
    assert snap.lists.lists is not None
    cut = snap.lists.lists.get(model.users_.index("u001"))
    assert cut is not None and cut.cut == (depth is not None)
    rt.recommend("u001", 10)
    entry = snap.cache.get(("u001", None), 0) if snap.cache is not None else None
    # served from the lists (not cached) unless they are cut below the pool (computed, cached)
    assert (entry is None) == (depth != 3)
    cats = sorted({str(c) for c in model.item_category_})[:2]
    for user in USERS:
        for kwargs in ({}, {"categories": cats}, {"exclude": ["i0001", "i0002"]}):
            got = rt.recommend(user, 10, explain=True, **kwargs)  # type: ignore[arg-type]
            assert got == ref.recommend(user, 10, explain=True, **kwargs)  # type: ignore[arg-type]
    first = rt.recommend("u007", 10)
    for runtime in (rt, ref):
        runtime.on_items_deleted([first[0].item])
        runtime.on_events([EventIn("", "u007", first[1].item, "like", 1_700_900_000.0)])
    after = rt.recommend("u007", 10, explain=True)
    assert not {first[0].item, first[1].item} & {r.item for r in after}
    assert after == ref.recommend("u007", 10, explain=True)
    for user in USERS:
        assert rt.recommend(user, 10) == ref.recommend(user, 10)


def test_lists_hold_the_best_candidates_in_score_order(pipe: Path) -> None:
    from serendip.models.base import Recommender

    model = Recommender.load(pipe)
    lists = build_ranked_lists(
        serving_model(model), fingerprint=fingerprint(pipe), depth=8, batch=5
    )
    assert lists is not None and lists.fingerprint == fingerprint(pipe)
    full = build_ranked_lists(serving_model(model), batch=1000)
    assert full is not None
    for u in range(0, len(model.users_), 37):
        cut, whole = lists.get(u), full.get(u)
        assert cut is not None and whole is not None
        assert np.array_equal(cut.items, whole.items[:8])
        assert np.all(np.diff(whole.scores) <= 0)
        assert cut.total == whole.total == len(whole.items)
        # every candidate was proposed by at least one source, with a finite rank
        assert np.all(np.isfinite(whole.source_rank).sum(axis=1) >= 1)
    assert lists.get(-1) is None and lists.get(len(model.users_)) is None


def test_a_build_stops_when_asked(pipe: Path) -> None:
    from serendip.models.base import Recommender

    model = Recommender.load(pipe)
    assert build_ranked_lists(serving_model(model), batch=5, should_stop=lambda: True) is None


def test_worker_processes_build_the_same_lists(pipe: Path) -> None:
    from serendip.models.base import Recommender

    model = Recommender.load(pipe)
    one = build_ranked_lists(serving_model(model), batch=40)
    two = build_ranked_lists(
        serving_model(model), batch=40, workers=2, directory=pipe, adapter=serving_model
    )
    assert one is not None and two is not None
    for name, values in one.a.items():
        assert np.array_equal(np.asarray(values), np.asarray(two.a[name])), name
    u = model.users_.index("u007")
    got = one.get(u)
    assert got is not None and len(got.final_items) == 10
    assert set(got.explanations) == set(got.final_items.tolist())


def test_a_load_freezes_the_long_lived_heap(pipe: Path) -> None:
    """A full GC pass over a platform-size model stalls every request in flight; after a load
    the heap is frozen, so collections only walk what requests allocate."""
    import gc

    rt = ModelRuntime(build_in_background=False)
    rt.load(pipe, "v1")
    assert gc.get_freeze_count() > 0


def test_metrics_count_requests_per_serving_path(pipe: Path, tmp_path: Path) -> None:
    from fastapi.testclient import TestClient

    from serendip.service.app import create_app
    from serendip.service.settings import Settings
    from serendip.store import Store

    rt = ModelRuntime()
    rt.load(_copy(pipe, tmp_path), "v1")
    _ready(rt)
    store = Store.open(f"sqlite:///{tmp_path / 'm.db'}")
    settings = Settings(db_url=store.url, bootstrap=False, follow_store_s=0)
    with TestClient(create_app(settings, store=store, runtime=rt)) as client:
        for _ in range(2):
            assert client.get("/v1/users/u001/recommendations").status_code == 200
        text = client.get("/metrics").text
    store.close()
    paths = {
        line.split('path="')[1].split('"')[0]: float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith("serendip_recommend_path_requests{")
    }
    assert paths == {k: float(v) for k, v in rt.snapshot.cache.paths.items()}  # type: ignore[union-attr]
    assert sum(paths.values()) >= 2


def test_a_runtime_that_does_not_build_adopts_the_lists_another_process_saved(
    pipe: Path, tmp_path: Path
) -> None:
    # a worker other than the leader (`serve --workers`): it waits for the leader's lists
    path = _copy(pipe, tmp_path)
    shutil.rmtree(path / LISTS_DIR, ignore_errors=True)  # another test's load may have saved them
    follower = ModelRuntime(build_in_background=False)
    follower.load(path, "v1")
    snap = follower.snapshot
    assert snap is not None and snap.lists is not None and snap.lists.state == "absent"
    assert not follower.adopt_saved_lists()  # nothing saved yet
    leader = ModelRuntime()
    leader.load(path, "v1")
    built = _ready(leader)
    assert follower.adopt_saved_lists()
    assert snap.lists.state == "ready" and snap.lists.lists is not None
    assert np.array_equal(np.asarray(snap.lists.lists.a["items"]), np.asarray(built.a["items"]))
    assert not follower.adopt_saved_lists()  # once
