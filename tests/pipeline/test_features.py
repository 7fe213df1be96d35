from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from serendip.data.dataset import Dataset
from serendip.errors import ConfigError, NotFittedError, SerendipError
from serendip.models.artifacts import read_artifact, write_artifact
from serendip.pipeline.candidates import Proposal
from serendip.pipeline.context import contexts_from_dataset
from serendip.pipeline.features import RANK_MISSING, SCORE_MISSING, FeatureBuilder
from serendip.pipeline.merge import merge_proposals
from serendip.pipeline.sources import make_source
from tests.pipeline._tiny import tiny_platform

SOURCES = ("in-network", "content", "trending", "explore")


def frame_for(ds: Dataset, users: list[str]):  # type: ignore[no-untyped-def]
    ctxs = contexts_from_dataset(ds, users)
    props = {}
    for name in SOURCES:
        src = make_source(name)
        src.fit(ds)
        props[name] = src.propose_batch(ctxs, 20)
    return merge_proposals(props, len(ctxs), {}), ctxs


def test_shape_names_and_no_nan(toy_platform: Dataset) -> None:
    ds = toy_platform
    frame, ctxs = frame_for(ds, list(ds.users.ids[:10]))
    fb = FeatureBuilder(SOURCES).fit(ds)
    x = fb.build(frame, ctxs)
    assert x.dtype == np.float32 and x.shape == (len(frame), len(fb.feature_names))
    assert not np.isnan(x).any()
    assert len(set(fb.feature_names)) == len(fb.feature_names)
    col = {n: j for j, n in enumerate(fb.feature_names)}
    proposed = ~np.isnan(frame.score[:, 0])
    assert np.all(x[~proposed, col["score_in-network"]] == SCORE_MISSING)
    assert np.all(x[~proposed, col["rank_in-network"]] == RANK_MISSING)
    np.testing.assert_allclose(x[proposed, col["rank_in-network"]], frame.rank[proposed, 0])
    assert np.all((x[:, col["in_network"]] == 0) | (x[:, col["in_network"]] == 1))
    assert np.all(x[:, col["content_similarity"]] <= 1.0 + 1e-5)
    # a frame built in another order gives the same features per pair
    perm = np.random.default_rng(0).permutation(len(frame))
    shuffled = type(frame)(
        frame.row[perm], frame.item[perm], frame.sources, frame.score[perm], frame.rank[perm]
    )
    np.testing.assert_array_equal(fb.build(shuffled, ctxs), x[perm])


def test_values_on_known_data() -> None:
    ds = tiny_platform()
    frame, ctxs = frame_for(ds, ["a"])
    fb = FeatureBuilder(SOURCES).fit(ds)
    x = fb.build(frame, ctxs)
    col = {n: j for j, n in enumerate(fb.feature_names)}
    row = {ds.items.id(int(i)): x[j] for j, i in enumerate(frame.item)}
    # p2: liked by b (followed, public); c1 by c (followed, private) is never a signal
    assert row["p2"][col["followees_involved"]] == 1 and row["p2"][col["in_network"]] == 1
    assert row["p2"][col["max_tie_strength"]] > 0
    assert "c1" not in row or row["c1"][col["followees_involved"]] == 0
    # b_new: authored by b whom a follows, nobody interacted with it
    assert row["b_new"][col["in_network"]] == 1 and row["b_new"][col["followees_involved"]] == 0
    assert row["b_new"][col["item_log_popularity"]] == 0
    assert row["b_new"][col["item_age_days"]] == pytest.approx(2.0, abs=1e-3)
    # e1: garden, like all of a's history; d1: travel, out of network
    assert row["e1"][col["category_match"]] == pytest.approx(1.0)
    assert row["d1"][col["category_match"]] == 0 and row["d1"][col["in_network"]] == 0
    assert row["e1"][col["content_similarity"]] > row["d1"][col["content_similarity"]]
    assert row["e1"][col["user_log_activity"]] == pytest.approx(np.log1p(2))


def test_state_round_trip_and_errors(toy_platform: Dataset, tmp_path: Path) -> None:
    ds = toy_platform
    frame, ctxs = frame_for(ds, list(ds.users.ids[:5]))
    with pytest.raises(NotFittedError):
        FeatureBuilder(SOURCES).build(frame, ctxs)
    fb = FeatureBuilder(SOURCES).fit(ds)
    arrays, meta = fb._state()
    write_artifact(
        tmp_path / "fb",
        model="features",
        config={},
        users=ds.users,
        items=ds.items,
        arrays=arrays,
        meta=meta,
    )
    art = read_artifact(tmp_path / "fb")
    again = FeatureBuilder()
    again._set_state(art.arrays, art.meta)
    assert again.feature_names == fb.feature_names
    np.testing.assert_array_equal(again.build(frame, ctxs), fb.build(frame, ctxs))
    older = {k: v for k, v in art.arrays.items() if k != "event_time"}
    with pytest.raises(SerendipError, match="refit"):
        FeatureBuilder()._set_state(older, art.meta)
    with pytest.raises(ConfigError, match="differ"):
        FeatureBuilder(["trending"]).fit(ds).build(frame, ctxs)
    empty = merge_proposals({s: [Proposal.empty()] * 5 for s in SOURCES}, 5, {})
    assert fb.build(empty, ctxs).shape == (0, len(fb.feature_names))


def test_recency_features_count_only_what_happened_before_the_request_time() -> None:
    from serendip.pipeline.features import DAYS_MISSING
    from tests.pipeline._tiny import DAY, NOW

    ds = tiny_platform()
    fb = FeatureBuilder(["trending"]).fit(ds)
    col = {n: j for j, n in enumerate(fb.feature_names)}
    items = np.array([ds.items.index(i) for i in ("p3", "d1", "e1", "b_new")])

    def features(now: float) -> dict[str, np.ndarray]:
        ctx = contexts_from_dataset(ds, ["a"], now=now)
        frame = merge_proposals(
            {"trending": [Proposal(items, np.ones(len(items), np.float32))]}, 1, {}
        )
        x = fb.build(frame, ctx)
        return {ds.items.id(int(i)): x[j] for j, i in enumerate(frame.item)}

    row = features(NOW)
    # p3: viewed by b 2 days ago and liked by z now: the top trend item at a 1-day half-life
    assert row["p3"][col["item_trend_log_rank_1d"]] == pytest.approx(0.0)
    assert row["d1"][col["item_trend_log_rank_1d"]] == pytest.approx(np.log(2))
    assert row["d1"][col["item_days_since_last"]] == pytest.approx(0.5, abs=1e-4)
    assert row["d1"][col["item_days_since_first"]] == pytest.approx(3.0, abs=1e-4)
    # nobody touched b_new: the sentinel, and the catalog's last trend rank
    assert row["b_new"][col["item_days_since_last"]] == DAYS_MISSING
    assert row["b_new"][col["item_trend_log_rank_7d"]] == pytest.approx(np.log(ds.n_items + 1))
    # a acted 4 and 5 days ago, each time 2 and 1 days after the item's first interaction
    assert row["e1"][col["user_days_since_last"]] == pytest.approx(4.0, abs=1e-4)
    assert row["e1"][col["user_new_item_affinity_days"]] == pytest.approx(1.5, abs=1e-4)
    # 2.5 days earlier: p3's interactions had not happened yet, d1's second one neither
    before = features(NOW - 2.5 * DAY)
    assert before["p3"][col["item_days_since_last"]] == DAYS_MISSING
    assert before["d1"][col["item_days_since_last"]] == pytest.approx(0.5, abs=1e-4)
    assert before["e1"][col["user_days_since_last"]] == pytest.approx(1.5, abs=1e-4)
    assert features(NOW)["d1"][col["item_days_since_last"]] == pytest.approx(0.5, abs=1e-4)


def test_item_recency_after_the_newest_event_equals_the_full_recomputation() -> None:
    """Live request times (after the newest fitted event) take a shortcut; it must agree."""
    from tests.conftest import make_toy_platform

    ds = make_toy_platform()
    builder = FeatureBuilder(["trending"]).fit(ds)
    newest = float(builder.event_time_[-1])
    items = np.arange(len(builder.log_pop_))
    for later in (newest + 1.0, newest + 3.5 * 86_400.0):
        fast = builder._item_recency_rows(later, items)
        full = builder._item_recency(later)
        np.testing.assert_allclose(fast, full, rtol=1e-9, atol=1e-9)
