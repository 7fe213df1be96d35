"""The ranker's training recipe: time split, graded labels, a ranker that learns, determinism."""

from __future__ import annotations

from functools import cache

import numpy as np
import pandas as pd

from serendip.data.dataset import Dataset
from serendip.pipeline.config import PipelineConfig, RankerParams
from serendip.pipeline.context import contexts_from_dataset
from serendip.pipeline.ranker import (
    LambdaRanker,
    _mean_ndcg,
    fusion_scores,
    graded_labels,
    label_lookup,
    time_split,
    train_ranker,
)
from serendip.pipeline.recommender import PipelineRecommender
from tests.conftest import make_toy_platform

QUICK = dict(PipelineRecommender.quick_params)


@cache
def _toy() -> Dataset:
    return make_toy_platform(seed=1, n_users=150, n_items=200)


def test_time_split_cuts_at_the_label_window() -> None:
    ds = _toy()
    past, future, cut = time_split(ds, 0.25)
    assert np.all(past.interactions.timestamp < cut)
    assert np.all(future.interactions.timestamp >= cut)
    assert len(past.interactions) + len(future.interactions) == ds.n_interactions
    assert abs(len(future.interactions) / ds.n_interactions - 0.25) < 0.02
    assert past.items is ds.items and past.users is ds.users


def test_time_split_without_timestamps_holds_out_at_random() -> None:
    inter = pd.DataFrame({"user": [f"u{i % 20}" for i in range(400)], "item": range(400)})
    ds = Dataset.from_frames(inter)
    _past, future, cut = time_split(ds, 0.3, seed=4)
    assert np.isnan(cut)
    assert abs(len(future.interactions) / 400 - 0.3) < 0.08
    again = time_split(ds, 0.3, seed=4)[1]
    np.testing.assert_array_equal(future.interactions.item, again.interactions.item)


def test_random_label_split_ignores_timestamps() -> None:
    ds = _toy()
    past, future, cut = time_split(ds, 0.25, random=True, seed=3)
    assert np.isnan(cut)
    assert len(past.interactions) + len(future.interactions) == ds.n_interactions
    assert abs(len(future.interactions) / ds.n_interactions - 0.25) < 0.03
    # not a time cut: the label window reaches back before the latest past interaction
    assert future.interactions.timestamp.min() < past.interactions.timestamp.max()
    again = time_split(ds, 0.25, random=True, seed=3)[1]
    np.testing.assert_array_equal(future.interactions.item, again.interactions.item)


def test_labels_are_graded_by_event_strength() -> None:
    inter = pd.DataFrame(
        {
            "user": ["a", "a", "a", "a", "b", "b", "b"],
            "item": ["x", "y", "z", "x", "x", "y", "w"],
            "event": ["view", "like", "share", "click", "rating", "rating", "view"],
            "value": [None, None, None, None, 5, 2, None],
            "timestamp": [1, 2, 3, 4, 5, 6, 0.5],
        }
    )
    ds = Dataset.from_frames(inter)
    past = ds.filter_interactions(ds.interactions.timestamp < 1)  # b viewed w before
    future = ds.filter_interactions(ds.interactions.timestamp >= 1)
    labels = graded_labels(future, past, RankerParams().label_gains)
    u, i = ds.users.index, ds.items.index
    grade = {(a, b): int(labels[u(a), i(b)]) for a in "ab" for b in "xyzw"}
    assert grade[("a", "x")] == 2  # view then click: the strongest event counts
    assert grade[("a", "y")] == 3 and grade[("a", "z")] == 4  # like, share
    assert grade[("b", "x")] == 2 and grade[("b", "y")] == 1  # rating 5 above rating 2
    assert grade[("b", "w")] == 0  # not in the future window


def test_the_ranker_beats_the_merged_candidate_order_on_a_held_out_window() -> None:
    ds = _toy()
    past, future, cut = time_split(ds, 0.2)
    model = PipelineRecommender(QUICK).fit(past)
    assert model.ranker_ is not None
    labels = graded_labels(future, past, model.config.ranker.label_gains)
    users = np.flatnonzero(np.diff(labels.indptr) > 0)
    contexts = contexts_from_dataset(past, list(past.users.ids[users]), now=cut)
    frame = model.stage_.frame(contexts)
    y = label_lookup(labels, users[frame.row], frame.item)
    learned = model.ranker_.predict(model.stage_.features(frame, contexts))
    merged = fusion_scores(frame)
    has_pos = np.bincount(frame.row, weights=y > 0, minlength=len(contexts)) > 0
    rows = has_pos[frame.row]
    sizes = frame.group_sizes(len(contexts))[has_pos]
    ndcg_learned = _mean_ndcg(learned[rows], y[rows], sizes, 10)
    ndcg_merged = _mean_ndcg(merged[rows], y[rows], sizes, 10)
    assert ndcg_learned > ndcg_merged + 0.05, (ndcg_learned, ndcg_merged)


def test_training_is_deterministic_and_the_text_model_round_trips() -> None:
    ds = _toy()
    cfg = PipelineConfig.model_validate(QUICK)
    a, report = train_ranker(ds, cfg)
    b, _ = train_ranker(ds, cfg)
    assert a is not None and b is not None
    assert a.to_string() == b.to_string()
    assert report.n_train_groups > 0 and report.best_iteration >= 1
    X = np.random.default_rng(0).normal(size=(50, a.booster_.num_feature())).astype(np.float32)
    again = LambdaRanker.from_string(a.to_string(), cfg.ranker)
    np.testing.assert_allclose(again.predict(X), a.predict(X), rtol=1e-6)


def test_older_label_windows_slide_back_without_looking_ahead() -> None:
    ds = _toy()
    cut0 = time_split(ds, 0.2, window=0)[2]
    past1, f1, cut1 = time_split(ds, 0.2, window=1)
    assert cut1 < cut0
    assert f1.interactions.timestamp.max() < cut0  # window 1 ends where window 0 begins
    assert np.all(past1.interactions.timestamp < cut1)
    n = ds.n_interactions
    assert abs(len(f1.interactions) / n - 0.2) < 0.03
    per_user = time_split(ds, 0.2, per_user=True, window=1)
    later = time_split(ds, 0.2, per_user=True, window=0)[1]

    def pairs(d: Dataset) -> set[tuple[int, int]]:
        it = d.interactions
        return set(zip(it.user.tolist(), it.item.tolist(), strict=True))

    assert not pairs(per_user[1]) & pairs(later)


def test_windows_must_leave_a_past() -> None:
    import pytest

    from serendip.errors import ConfigError

    with pytest.raises(ConfigError, match="below 1"):
        PipelineRecommender({"ranker": {"n_windows": 4, "label_fraction": 0.25}})


def test_bagged_members_average_and_round_trip() -> None:
    ds = _toy()
    cfg = PipelineConfig.model_validate({**QUICK, "ranker.n_models": 3})
    bagged, report = train_ranker(ds, cfg)
    assert bagged is not None and len(bagged.members_) == 3
    # every label group trains two members and holds out for the third (out-of-fold score)
    assert report.n_valid_groups == report.n_train_groups and report.valid_ndcg is not None
    X = np.random.default_rng(1).normal(size=(40, bagged.booster_.num_feature())).astype(np.float32)
    mean = np.mean([b.predict(X, num_iteration=it) for b, it in bagged.members_], axis=0)
    np.testing.assert_allclose(bagged.predict(X), mean, rtol=1e-5)
    again = LambdaRanker.from_string(bagged.to_string(), cfg.ranker)
    assert len(again.members_) == 3
    np.testing.assert_allclose(again.predict(X), bagged.predict(X), rtol=1e-6)
    assert train_ranker(ds, cfg)[0].to_string() == bagged.to_string()  # type: ignore[union-attr]


def test_label_users_without_a_past_are_left_out() -> None:
    ds = _toy()
    past, future, _ = time_split(ds, 0.2)
    labels = graded_labels(future, past, RankerParams().label_gains)
    users = np.flatnonzero(np.diff(labels.indptr) > 0)
    n_past = np.bincount(past.interactions.user, minlength=ds.n_users)
    need = int(np.median(n_past[users])) + 1  # a threshold half the label users miss
    kept = int((n_past[users] >= need).sum())
    assert 0 < kept < len(users)
    base = {**QUICK, "ranker.label_fraction": 0.2, "ranker.max_label_users": 10_000}
    every = train_ranker(ds, PipelineConfig.model_validate({**base, "ranker.min_history": 0}))[1]
    warm = train_ranker(ds, PipelineConfig.model_validate({**base, "ranker.min_history": need}))[1]
    assert every.n_label_users == len(users) and warm.n_label_users == kept
