"""The out-of-network collaborative source: the model's ranking minus the user's network."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from serendip.data.dataset import Dataset
from serendip.models.registry import create_model
from serendip.pipeline.context import contexts_from_dataset
from serendip.pipeline.recommender import PipelineRecommender
from serendip.pipeline.sources import CollaborativeOONSource, SourceBase, make_source
from tests.pipeline._tiny import tiny_platform
from tests.pipeline.test_sources import saved_state

MODEL: dict[str, Any] = {"model": "ials", "params": {"factors": 8, "iterations": 3, "seed": 0}}


def fitted(name: str, ds: Dataset, **params: Any) -> SourceBase:
    src = make_source(name, **{**MODEL, **params})
    assert isinstance(src, SourceBase)
    src.fit(ds)
    return src


def network(ds: Dataset, followees: np.ndarray) -> set[int]:
    touched = set(ds.seen()[followees].indices.tolist())
    authored = set(np.flatnonzero(np.isin(ds.item_author_index(), followees)).tolist())
    return touched | authored


def test_never_proposes_what_a_followee_touched_or_authored(toy_platform: Dataset) -> None:
    ds = toy_platform
    src = fitted("collaborative-oon", ds)
    ctxs = contexts_from_dataset(ds, list(ds.users.ids[:30]))
    assert any(len(c.followees) for c in ctxs)
    for ctx, p in zip(ctxs, src.propose_batch(ctxs, 20), strict=True):
        assert len(p.items) == len(p.scores) <= 20
        assert not set(p.items.tolist()) & network(ds, ctx.followees)
        assert not set(p.items.tolist()) & set(ctx.history.tolist())
        assert np.all(np.diff(p.scores) <= 1e-6)


def test_is_the_collaborative_ranking_minus_the_network(toy_platform: Dataset) -> None:
    """Same model, same order and scores: only the in-network items are gone, and the source
    reaches as deep as `depth` to fill its n."""
    ds = toy_platform
    oon = fitted("collaborative-oon", ds, depth=len(ds.items))
    plain = fitted("collaborative", ds)
    ctxs = contexts_from_dataset(ds, list(ds.users.ids[:10]))
    deep = plain.propose_batch(ctxs, len(ds.items))
    for ctx, p, q in zip(ctxs, oon.propose_batch(ctxs, 10), deep, strict=True):
        net = network(ds, ctx.followees)
        expected = [i for i in q.items.tolist() if i not in net][:10]
        assert p.items.tolist() == expected
        lookup = dict(zip(q.items.tolist(), q.scores.tolist(), strict=True))
        np.testing.assert_allclose(p.scores, [lookup[i] for i in expected], rtol=1e-6)
    # a user who follows nobody gets the collaborative top-n itself
    lonely = replace(ctxs[0], followees=np.zeros(0, np.int64))
    assert oon.propose(lonely, 10).items.tolist() == plain.propose(lonely, 10).items.tolist()


def test_known_answer_on_the_tiny_platform() -> None:
    """a follows b (public) and c (private): b's items and likes and c's like are in-network;
    the not-yet-published item by b is never proposed."""
    ds = tiny_platform()
    src = fitted("collaborative-oon", ds)
    a = contexts_from_dataset(ds, ["a"])[0]
    got = set(ds.items.lookup(src.propose(a, 10).items).tolist())
    assert got and got <= {"d1", "e1", "g_new"}
    net = set(ds.items.lookup(src.network_items(a)).tolist())
    assert net == {"p1", "p2", "p3", "c1", "b_new", "b_future"}


def test_batch_equals_single_and_cold_users(toy_platform: Dataset) -> None:
    ds = toy_platform
    src = fitted("collaborative-oon", ds)
    ctxs = contexts_from_dataset(ds, list(ds.users.ids[:6]))
    batch = src.propose_batch(ctxs, 8)
    assert [p.items.tolist() for p in batch] == [src.propose(c, 8).items.tolist() for c in ctxs]
    # a user the model never saw, with a history and followees, gets out-of-network items
    cold = replace(ctxs[0], user="newcomer", user_idx=-1)
    p = src.propose(cold, 8)
    assert len(p.items) > 0
    assert not set(p.items.tolist()) & network(ds, cold.followees)
    assert src.propose_batch([], 5) == [] and len(src.propose(ctxs[0], 0).items) == 0


def test_from_model_and_save_load(toy_platform: Dataset, tmp_path: Path) -> None:
    ds = toy_platform
    model = create_model(MODEL["model"], MODEL["params"]).fit(ds)
    wrapped = CollaborativeOONSource.from_model(model, ds)
    src = fitted("collaborative-oon", ds)
    ctxs = contexts_from_dataset(ds, list(ds.users.ids[:8]))
    first = [p.items.tolist() for p in src.propose_batch(ctxs, 10)]
    assert [p.items.tolist() for p in wrapped.propose_batch(ctxs, 10)] == first
    art = saved_state(src, ds, tmp_path / "s")
    again = make_source(art.meta["source"], **art.meta["params"])
    again._set_state(art.arrays, art.meta)
    assert [p.items.tolist() for p in again.propose_batch(ctxs, 10)] == first


def test_a_pipeline_with_the_source_fits_and_serves(toy_platform: Dataset) -> None:
    params = {
        **PipelineRecommender.quick_params,
        "sources.collaborative-oon.params": MODEL,
        "sources.collaborative-oon.quota": 20,
    }
    model = PipelineRecommender(params).fit(toy_platform)
    assert "score_collaborative-oon" in model.stage_.feature_names
    recs = model.recommend(list(toy_platform.users.ids[:5]), 10)
    assert (recs.items >= 0).all()
