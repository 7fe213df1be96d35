"""The ranker's trending prior: boosting from -w x the log trend rank, added back at prediction."""

from __future__ import annotations

from functools import cache

import numpy as np
import pytest

from serendip.data.dataset import Dataset
from serendip.errors import ConfigError
from serendip.pipeline.config import PipelineConfig, RankerParams
from serendip.pipeline.ranker import PRIOR_FEATURE, LambdaRanker, train_ranker
from serendip.pipeline.recommender import PipelineRecommender
from tests.conftest import make_toy_platform

QUICK = dict(PipelineRecommender.quick_params)


@cache
def _toy() -> Dataset:
    return make_toy_platform(seed=1, n_users=150, n_items=200)


def test_the_prior_is_added_to_the_members_mean_and_round_trips() -> None:
    cfg = PipelineConfig.model_validate({**QUICK, "ranker.n_models": 2, "ranker.prior_weight": 1.5})
    ranker, report = train_ranker(_toy(), cfg)
    assert ranker is not None and report.valid_ndcg is not None
    names = ranker.booster_.feature_name()
    col = names.index(PRIOR_FEATURE)
    assert ranker.prior_col_ == col
    X = np.random.default_rng(0).normal(size=(40, len(names))).astype(np.float32)
    mean = np.mean([b.predict(X, num_iteration=it) for b, it in ranker.members_], axis=0)
    np.testing.assert_allclose(ranker.predict(X), mean - 1.5 * X[:, col], rtol=1e-5, atol=1e-5)
    again = LambdaRanker.from_string(ranker.to_string(), cfg.ranker)
    np.testing.assert_allclose(again.predict(X), ranker.predict(X), rtol=1e-6)
    assert train_ranker(_toy(), cfg)[0].to_string() == ranker.to_string()  # type: ignore[union-attr]


def test_a_heavy_prior_ranks_by_the_trend_rank() -> None:
    cfg = PipelineConfig.model_validate({**QUICK, "ranker.prior_weight": 100.0})
    ranker, _ = train_ranker(_toy(), cfg)
    assert ranker is not None
    col = ranker.booster_.feature_name().index(PRIOR_FEATURE)
    X = np.random.default_rng(2).normal(size=(60, ranker.booster_.num_feature()))
    X[:, col] = np.log(np.random.default_rng(3).permutation(60) + 1.0)
    scores = ranker.predict(X.astype(np.float32))
    assert (np.argsort(-scores) == np.argsort(X[:, col], kind="stable")).all()


def test_the_prior_off_is_boosting_from_zero() -> None:
    cfg = PipelineConfig.model_validate(QUICK)
    assert cfg.ranker.prior_weight == 0.0
    ranker, _ = train_ranker(_toy(), cfg)
    assert ranker is not None and ranker.prior_col_ is None
    X = np.ones((3, ranker.booster_.num_feature()), np.float32)
    assert ranker.prior(X).tolist() == [0.0, 0.0, 0.0]


def test_the_prior_needs_its_feature() -> None:
    r = LambdaRanker(RankerParams(prior_weight=1.0))
    X = np.zeros((4, 2), np.float32)
    with pytest.raises(ConfigError, match=PRIOR_FEATURE):
        r.fit(X, np.array([1, 0, 0, 1]), np.array([2, 2]), feature_names=["a", "b"])


def test_oon_label_gain_raises_only_out_of_network_positives() -> None:
    import scipy.sparse as sp

    from serendip.pipeline.context import contexts_from_dataset
    from serendip.pipeline.ranker import OON_FEATURE, StageOne, _ranking_data

    ds = _toy()
    assert ds.has_social
    cfg = PipelineConfig.model_validate(QUICK)
    stage = StageOne(cfg).fit(ds)
    ctxs = contexts_from_dataset(ds, list(ds.users.ids[:60]))
    # every item counts as a positive of every user: both sides of the network flag get labels
    labels = sp.csr_matrix(np.ones((ds.n_users, ds.n_items), np.float32))
    plain = _ranking_data(stage, ctxs, labels)
    raised = _ranking_data(stage, ctxs, labels, oon_gain=3)
    col = stage.feature_names.index(OON_FEATURE)
    oon = plain.X[:, col] == 0
    assert oon.any() and (~oon).any()
    np.testing.assert_array_equal(raised.X, plain.X)
    np.testing.assert_array_equal(raised.y[oon], plain.y[oon] + 3)
    np.testing.assert_array_equal(raised.y[~oon], plain.y[~oon])
    with pytest.raises(ValueError):
        RankerParams(oon_label_gain=-1)


def test_train_ranker_passes_the_oon_label_gain_on_social_data() -> None:
    plain = PipelineConfig.model_validate(QUICK)
    gained = PipelineConfig.model_validate({**QUICK, "ranker.oon_label_gain": 3})
    a, _ = train_ranker(_toy(), plain)
    b, _ = train_ranker(_toy(), gained)
    assert a is not None and b is not None
    assert a.to_string() != b.to_string()  # the labels it trained on changed
