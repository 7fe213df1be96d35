"""Selection recipes behind product defaults: the weighted hybrid's blend search on validation
carvings, and the pipeline's choice rule on validation folds."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from serendip.data.dataset import Dataset
from serendip.errors import ConfigError, SerendipError
from serendip.evaluation.selection import (
    BlendCarvings,
    Floors,
    choice_key,
    choose,
    floors_met,
    matched_temporal_folds,
    select_blend,
    standard_error,
    ties,
    validation_reference,
)
from serendip.models.hybrid import WeightedHybrid

MEMBERS = {"popularity": {}, "item-knn": {}}


# ------------------------------------------------------------------------------ blend search
def test_a_one_member_blend_scores_as_the_member_alone(toy_platform: Dataset) -> None:
    """Normalising per user keeps each member's order, so the blend machinery and the member's
    own ranking agree (the check that blends are scored like the members)."""
    carv = BlendCarvings(toy_platform, MEMBERS, (1, 2), fraction=0.2, normalization="minmax")
    assert carv.n_users > 0 and set(carv.parts) == set(MEMBERS)
    for key in MEMBERS:
        assert carv.ndcg({key: 1.0}) == pytest.approx(carv.member_ndcg[key])
    with pytest.raises(ConfigError, match="not members"):
        carv.ndcg({"ease": 1.0})


def test_select_blend_searches_on_its_carvings_and_scores_the_holdout(
    toy_platform: Dataset,
) -> None:
    result = select_blend(
        toy_platform,
        MEMBERS,
        seeds=(1, 2),
        holdout_seeds=(3,),
        validation_fraction=0.2,
        trials=8,
    )
    assert set(result.weights) == set(MEMBERS)
    assert sum(result.weights.values()) == pytest.approx(1.0, abs=1e-3)
    # the equal weights are the first trial, so the search never ends below them
    assert result.validation_ndcg >= result.equal_weights_ndcg
    assert result.holdout_ndcg is not None and result.n_holdout_users > 0
    assert result.normalization == "rank" and result.rank_constant == 60.0  # the default blend's
    assert result.seeds == (1, 2) and result.holdout_seeds == (3,)
    # the result is a WeightedHybrid configuration, and the search is reproducible
    model = WeightedHybrid(result.params()).fit(toy_platform)
    assert model.recommend(["u000"], 5).items.shape == (1, 5)
    again = select_blend(
        toy_platform,
        MEMBERS,
        seeds=(1, 2),
        holdout_seeds=(3,),
        validation_fraction=0.2,
        trials=8,
    )
    assert again.weights == result.weights
    assert again.to_dict()["params"] == result.params()


def test_select_blend_without_holdout_searches_the_normalisation_given(
    toy_platform: Dataset,
) -> None:
    result = select_blend(
        toy_platform,
        {"popularity": {}, "item-knn": {}, "user-knn": {}},
        normalization="minmax",
        seeds=(1,),
        holdout_seeds=(),
        validation_fraction=0.2,
        trials=5,
    )
    assert result.normalization == "minmax"
    assert result.holdout_ndcg is None and result.member_holdout_ndcg == {}
    assert result.n_holdout_users == 0 and result.trials == 5


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"seeds": (1, 2), "holdout_seeds": (2,)}, "must differ"),
        ({"members": {"no-such-model": {}}}, "unknown model"),
        ({"normalization": "softmax"}, "normalization"),
        ({"trials": 0}, "trials must be at least 1"),
        ({"validation_fraction": 1.0}, "validation_fraction"),
        ({"seeds": ()}, "at least one carving"),
    ],
)
def test_select_blend_refuses_bad_settings(
    toy_platform: Dataset, kwargs: dict[str, Any], message: str
) -> None:
    args: dict[str, Any] = {"members": MEMBERS, "holdout_seeds": (), **kwargs}
    with pytest.raises(ConfigError, match=message):
        select_blend(toy_platform, **args)


# --------------------------------------------------------------------------- pipeline choice
def test_ties_are_models_within_two_standard_errors_of_the_best() -> None:
    rng = np.random.default_rng(0)
    best = rng.binomial(1, 0.05, 4000).astype(float)  # sparse hits: a noisy mean
    noisy = best.copy()
    noisy[np.flatnonzero(best)[:3]] = 0.0  # 3 hits fewer: well within the noise
    worse = np.zeros(4000)  # every hit lost: far outside it
    assert ties({"best": best, "noisy": noisy, "worse": worse}, "best") == ["best", "noisy"]
    # evaluated on other users: the share alone (1% of the best's mean)
    other = np.full(10, best.mean() * 0.995)
    assert "other" in ties({"best": best, "other": other}, "best")


def _setting(ndcg_at_10: float, oon_hit_rate: float, **met: bool) -> dict[str, Any]:
    return {"ndcg@10": ndcg_at_10, "oon_hit_rate@10": oon_hit_rate, "floors_met": met}


def test_choice_puts_the_ndcg_floor_first_then_spends_its_margin_on_discovery() -> None:
    floors = {"ndcg": True, "coverage": True, "novelty": True}
    sharp = _setting(0.20, 0.30, **floors, oon=False)
    discovering = _setting(0.19, 0.35, **floors, oon=False)
    assert max([sharp, discovering], key=choice_key) is discovering
    # once the out-of-network floor is met (or absent), the best NDCG wins
    met_sharp = _setting(0.20, 0.50, **floors, oon=True)
    met_discovering = _setting(0.19, 0.60, **floors, oon=True)
    assert choose([met_sharp, met_discovering]) is met_sharp
    plain = _setting(0.20, 0.0, **floors)
    assert choose([plain, _setting(0.19, 0.0, **floors)]) is plain
    # among settings at the NDCG floor, more floors met first
    no_coverage = _setting(0.30, 0.60, ndcg=True, coverage=False, novelty=True, oon=True)
    assert choose([no_coverage, met_discovering]) is met_discovering
    # the NDCG floor before any other: short of it, NDCG alone counts
    below = _setting(0.10, 0.60, ndcg=False, coverage=True, novelty=True, oon=True)
    assert choose([below, no_coverage]) is no_coverage
    closest = _setting(0.15, 0.20, ndcg=False, coverage=False, novelty=False, oon=False)
    assert choose([below, closest]) is closest
    with pytest.raises(SerendipError, match="no validation settings"):
        choose([])


def test_the_ndcg_floor_is_taken_at_the_best_models_upper_bound() -> None:
    ref = {"ndcg@10": 0.10, "ndcg@10_upper": 0.12, "coverage@10": 0.1, "novelty@10": 1.0}
    at_mean = {"ndcg@10": 0.11, "coverage@10": 0.2, "novelty@10": 2.0, "oon_hit_rate@10": None}
    assert not floors_met(at_mean, ref, social=False)["ndcg"]
    above = {**at_mean, "ndcg@10": 0.125}
    assert floors_met(above, ref, social=False) == {
        "ndcg": True,
        "coverage": True,
        "novelty": True,
    }
    social_ref = {**ref, "oon_hit_rate@10": 0.2}
    assert not floors_met({**above, "oon_hit_rate@10": 0.29}, social_ref, social=True)["oon"]
    assert floors_met({**above, "oon_hit_rate@10": 0.31}, social_ref, social=True)["oon"]
    assert floors_met(
        {**above, "oon_hit_rate@10": 0.25}, social_ref, social=True, floors=Floors(oon_ratio=1.2)
    )["oon"]
    # sample std sqrt(1/3) over sqrt(4) users
    assert standard_error(np.array([0.0, 1.0, 0.0, 1.0])) == pytest.approx(0.2886751)
    assert standard_error(np.array([0.3])) == 0.0


def test_the_reference_takes_coverage_from_the_best_of_the_tied_models() -> None:
    rng = np.random.default_rng(1)
    best = rng.binomial(1, 0.2, 500).astype(float)
    tied = best.copy()
    tied[np.flatnonzero(best)[:2]] = 0.0
    metrics = {
        "best": {"ndcg@10": best.mean(), "coverage@10": 0.1, "novelty@10": 2.0},
        "tied": {"ndcg@10": tied.mean(), "coverage@10": 0.3, "novelty@10": 1.5},
        "far": {"ndcg@10": 0.0, "coverage@10": 0.9, "novelty@10": 9.0},
    }
    per_user = {"best": best, "tied": tied, "far": np.zeros(500)}
    ref = validation_reference(metrics, per_user)
    assert ref["model"] == "best" and ref["ties"] == ["best", "tied"]
    assert ref["coverage@10"] == 0.3 and ref["novelty@10"] == 2.0
    assert ref["oon_hit_rate@10"] == 0
    assert ref["ndcg@10_upper"] == pytest.approx(best.mean() + 2 * standard_error(best))


def test_matched_temporal_folds_are_windows_as_long_as_the_test_stepping_back(
    toy_platform: Dataset,
) -> None:
    ts = toy_platform.interactions.timestamp
    folds = matched_temporal_folds(toy_platform, 3, window=0.25, step=0.1)
    assert len(folds) == 3
    shares = [f.test.n_interactions / toy_platform.n_interactions for f in folds]
    assert all(0.15 < s <= 0.3 for s in shares), shares
    ends = [float(f.test.interactions.timestamp.max()) for f in folds]
    assert ends[0] == float(ts.max())  # the newest window ends where the data ends
    assert ends[0] > ends[1] > ends[2]
    for f in folds:  # each fold trains on the past only
        assert f.train.interactions.timestamp.max() <= f.test.interactions.timestamp.min()
    with pytest.raises(ConfigError, match="no training data"):
        matched_temporal_folds(toy_platform, 5, window=0.5, step=0.2)
