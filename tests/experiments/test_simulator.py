from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from serendip.data.synthetic import response_probability
from serendip.errors import DataError
from serendip.experiments.simulator import (
    SimulatedPlatform,
    calibrate_multiplier,
    engagement,
    examination,
    expected_conversion,
    simulate_ab,
    simulate_interleaving,
)
from serendip.experiments.stats import compare
from serendip.models.registry import create_model

DAYS, K = 7, 10


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory) -> SimulatedPlatform:
    out: Path = tmp_path_factory.mktemp("tiny")
    return SimulatedPlatform.generate("tiny", seed=3, out=out)


@pytest.fixture(scope="module")
def pages(platform: SimulatedPlatform) -> dict[str, np.ndarray]:
    return {
        name: platform.pages(create_model(name).fit(platform.dataset), DAYS, K)
        for name in ("popularity", "random", "category-popularity")
    }


def test_probabilities_are_the_truths_with_position_bias(platform: SimulatedPlatform) -> None:
    users = np.array([0, 1, 2])
    items = np.array([[5, 6, 7, -1], [8, 9, 10, 11], [12, 13, 14, 15]])
    p = platform.probabilities(users, items)
    truth = platform.truth
    ids_u = truth.users.lookup(np.repeat(users, 4))
    ids_i = truth.items.lookup(np.maximum(items.ravel(), 0))
    like = response_probability(truth, ids_u, ids_i, "like").reshape(3, 4)
    share = response_probability(truth, ids_u, ids_i, "share").reshape(3, 4)
    bias = examination(4)
    assert bias[0] == 1.0 and np.all(np.diff(bias) < 0)
    np.testing.assert_allclose(p["like"][:, :3], (like * bias)[:, :3])
    np.testing.assert_allclose(p["share"][1:], (share * bias)[1:])
    assert p["like"][0, 3] == 0.0  # empty slot
    doubled = platform.probabilities(users, items, multiplier=2.0)
    np.testing.assert_allclose(doubled["click"], np.minimum(2 * p["click"] / bias, 1) * bias)


def test_respond_follows_preferences_and_position(platform: SimulatedPlatform) -> None:
    truth = platform.truth
    user = str(platform.user_ids[0])
    aff = truth.affinity(np.zeros(len(truth.items), np.int64), np.arange(len(truth.items)))
    best = str(truth.items.lookup([int(np.argmax(aff * truth.item_quality))])[0])
    worst = str(truth.items.lookup([int(np.argmin(aff * truth.item_quality))])[0])
    rng = np.random.default_rng(0)
    likes = {best: 0, worst: 0}
    top_clicks = low_clicks = 0
    filler = [str(x) for x in truth.items.lookup(np.arange(1, 10)) if x not in (best, worst)]
    for _ in range(3000):
        for o in platform.respond(user, [best, worst], rng):
            assert o.position == [best, worst].index(o.item)
            if o.event == "like":
                likes[o.item] += 1
        top_clicks += sum(o.event == "click" for o in platform.respond(user, [best], rng))
        low = platform.respond(user, [*filler, best], rng)
        low_clicks += sum(o.event == "click" and o.item == best for o in low)
    assert likes[best] > 3 * likes[worst]
    assert low_clicks / top_clicks == pytest.approx(examination(len(filler) + 1)[-1], abs=0.06)
    with pytest.raises(DataError, match="unknown user"):
        platform.respond("nobody", [best], rng)
    assert platform.respond(user, [], rng) == []


def test_pages_do_not_repeat_items(pages: dict[str, np.ndarray]) -> None:
    served = pages["popularity"]
    assert served.shape[1:] == (DAYS, K)
    row = served[0].ravel()
    assert len(set(row[row >= 0].tolist())) == int((row >= 0).sum())


def test_simulated_conversion_matches_the_exact_expectation(
    platform: SimulatedPlatform, pages: dict[str, np.ndarray]
) -> None:
    pop = pages["popularity"]
    run = simulate_ab(platform, [pop, pop], n_users=40_000, rng=np.random.default_rng(1))
    values, present = run.conversion()
    assert present.all()  # every simulated user visited at least once
    assert values.mean() == pytest.approx(expected_conversion(platform, pop), abs=0.01)
    # looks see users accumulate and convert over time
    early, early_present = run.conversion(0)
    assert early_present.mean() < 1 and early[early_present].mean() < values.mean()
    # the pre-period covariate predicts the outcome (what CUPED feeds on)
    assert np.corrcoef(values, run.covariate)[0, 1] > 0.1


def test_a_calibrated_multiplier_gives_the_chosen_true_lift(
    platform: SimulatedPlatform, pages: dict[str, np.ndarray]
) -> None:
    pop = pages["popularity"]
    c = calibrate_multiplier(platform, pop, 0.05)
    assert c > 1.0
    base = expected_conversion(platform, pop)
    assert expected_conversion(platform, pop, multiplier=c) == pytest.approx(base * 1.05)
    run = simulate_ab(
        platform, [pop, pop], n_users=60_000, multipliers=[1.0, c], rng=np.random.default_rng(2)
    )
    values, _ = run.conversion()
    cmp = compare(values[run.arm == 0], values[run.arm == 1])
    assert cmp.lift == pytest.approx(0.05, abs=0.02)
    assert cmp.p_value < 0.01


def test_interleaving_prefers_the_better_ranker(
    platform: SimulatedPlatform, pages: dict[str, np.ndarray]
) -> None:
    good, bad = pages["popularity"], pages["random"]
    assert expected_conversion(platform, good) > expected_conversion(platform, bad)
    run = simulate_interleaving(platform, bad, good, n_users=300, rng=np.random.default_rng(3))
    wins_bad, wins_good = run.wins()
    assert wins_good > 2 * wins_bad
    same = simulate_interleaving(platform, good, good, n_users=2000, rng=np.random.default_rng(4))
    a, b = same.wins()
    assert abs(a - b) < 0.15 * (a + b)


def test_engagement_and_network(platform: SimulatedPlatform, pages: dict[str, np.ndarray]) -> None:
    result = engagement(platform, "popularity", pages["popularity"])
    assert result.lists == platform.n_users * DAYS
    assert result.engagement == pytest.approx(result.clicks + result.likes + result.shares)
    assert 0 <= result.out_of_network_share <= 1 and 0 <= result.served_out_of_network <= 1
    # an item by someone the user follows is in network, by anyone else not
    follower, followee = platform.follows.nonzero()
    user, author = int(follower[0]), int(followee[0])
    by_author = np.flatnonzero(platform.item_author == author)
    by_other = np.flatnonzero(
        (platform.item_author >= 0) & ~np.isin(platform.item_author, platform.follows[user].indices)
    )
    if len(by_author):
        assert platform.in_network(np.array([user]), by_author[None, :1]).all()
    assert not platform.in_network(np.array([user]), by_other[None, :1]).any()
