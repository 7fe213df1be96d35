from __future__ import annotations

import numpy as np
import pytest
from statsmodels.stats.proportion import proportions_ztest

from serendip.errors import DataError
from serendip.experiments.stats import (
    Spending,
    bootstrap_p_value,
    compare,
    correlated_boundaries,
    cuped,
    group_sequential,
    look_correlation,
    mean_ci,
    msprt_p_values,
    sample_ratio,
    spending_boundaries,
)


def test_compare_proportions_by_hand() -> None:
    c = np.r_[np.ones(100), np.zeros(900)]  # 10%
    t = np.r_[np.ones(130), np.zeros(870)]  # 13%
    cmp = compare(c, t)
    assert cmp.lift == pytest.approx(0.3)
    assert cmp.difference == pytest.approx(0.03)
    assert cmp.p_value == pytest.approx(float(proportions_ztest([130, 100], [1000, 1000])[1]))
    se = np.sqrt(0.1 * 0.9 / 999 * 1000 / 1000 + 0.13 * 0.87 / 999)
    assert cmp.difference_ci[1] - cmp.difference_ci[0] == pytest.approx(2 * 1.959964 * se, rel=1e-3)
    lo, hi = cmp.lift_ci
    assert lo < 0.3 < hi and lo > 0


def test_compare_edge_cases() -> None:
    assert np.isnan(compare([], [1.0, 0.0]).p_value)
    assert compare([0.0, 0.0], [0.0, 0.0]).p_value == 1.0
    with pytest.raises(DataError):
        compare([np.nan, 1.0], [1.0, 0.0])


def test_bootstrap_agrees_with_the_z_test() -> None:
    rng = np.random.default_rng(0)
    c = rng.poisson(2.0, 3000).astype(float)
    t = rng.poisson(2.1, 3000).astype(float)
    z = compare(c, t).p_value
    b = bootstrap_p_value(c, t, n_boot=2000, seed=1)
    assert b == pytest.approx(z, abs=0.02)
    cb = (rng.random(3000) < 0.2).astype(float)
    tb = (rng.random(3000) < 0.2).astype(float)
    assert bootstrap_p_value(cb, tb, n_boot=2000) == pytest.approx(
        compare(cb, tb).p_value, abs=0.05
    )


def test_mean_ci() -> None:
    lo, hi = mean_ci(np.r_[np.ones(50), np.zeros(50)])
    assert lo < 0.5 < hi and hi - lo == pytest.approx(0.19, abs=0.01)
    assert all(np.isnan(mean_ci([])))


def test_sample_ratio() -> None:
    assert not sample_ratio([5000, 5050], [0.5, 0.5]).mismatch
    bad = sample_ratio([5000, 5400], [0.5, 0.5])
    assert bad.mismatch and bad.p_value < 0.001
    assert not sample_ratio([8000, 2000], [0.8, 0.2]).mismatch
    with pytest.raises(DataError):
        sample_ratio([1], [1.0])


def test_cuped_reduction_is_the_squared_correlation() -> None:
    rng = np.random.default_rng(1)
    x = rng.normal(size=20_000)
    y = 0.6 * x + 0.8 * rng.normal(size=20_000)  # corr 0.6
    result = cuped(y, x)
    assert result.theta == pytest.approx(0.6, abs=0.02)
    assert result.variance_reduction == pytest.approx(0.36, abs=0.02)
    assert result.adjusted.mean() == pytest.approx(y.mean())
    assert cuped(y, np.ones_like(y)).variance_reduction == 0.0


def test_msprt_formula_and_running_minimum() -> None:
    d, v, tau = 0.02, 1e-4, 0.01
    lam = np.sqrt(v / (v + tau**2)) * np.exp(tau**2 * d**2 / (2 * v * (v + tau**2)))
    assert msprt_p_values([d], [v], tau)[0] == pytest.approx(min(1.0, 1 / lam))
    p = msprt_p_values([0.05, 0.0, np.nan], [1e-4, 1e-4, 1e-4], 0.01)
    assert p[0] < 0.01 and p[1] == p[0] and p[2] == p[0]  # never goes back up


def test_msprt_controls_false_positives_under_continuous_peeking() -> None:
    rng = np.random.default_rng(2)
    n = np.arange(1, 201)
    walks = np.cumsum(rng.standard_normal((4000, 200)), axis=1)
    p = msprt_p_values(walks / n, 1.0 / n, 0.3)
    fpr = float((p[:, -1] <= 0.05).mean())
    naive = float((np.abs(walks / np.sqrt(n)) > 1.96).any(axis=1).mean())
    assert fpr <= 0.05
    assert naive > 0.3  # peeking a fixed-horizon z-test 200 times inflates it many-fold


def test_spending_boundaries_match_published_lan_demets_values() -> None:
    # two-sided alpha 0.05, five equally spaced looks (Jennison & Turnbull 2000; gsDesign)
    obf = spending_boundaries(np.arange(1, 6) / 5)
    np.testing.assert_allclose(obf, [4.877, 3.357, 2.680, 2.290, 2.031], atol=2e-3)
    pocock = spending_boundaries(np.arange(1, 6) / 5, spending="pocock")
    np.testing.assert_allclose(pocock, [2.438, 2.427, 2.410, 2.397, 2.386], atol=2e-3)
    assert spending_boundaries([1.0])[0] == pytest.approx(1.95996, abs=1e-4)


@pytest.mark.parametrize("spending", ["obrien-fleming", "pocock"])
def test_group_sequential_keeps_alpha_however_unevenly_one_looks(spending: Spending) -> None:
    # 14 looks at uneven information (users arriving faster early), Brownian paths under no
    # difference: crossing at any look happens alpha of the time, not the naive test's 20%+
    t = np.cumsum(np.linspace(2.0, 0.5, 14))
    t /= t[-1]
    rng = np.random.default_rng(5)
    steps = rng.standard_normal((40_000, 14)) * np.sqrt(np.diff(t, prepend=0.0))
    z = np.cumsum(steps, axis=1) / np.sqrt(t)
    bounds = spending_boundaries(t, spending=spending)
    fpr = float((np.abs(z) >= bounds).any(axis=1).mean())
    assert 0.045 <= fpr <= 0.055
    assert float((np.abs(z) >= 1.96).any(axis=1).mean()) > 0.15


def test_group_sequential_skips_empty_looks_and_reports_the_crossing() -> None:
    res = group_sequential([np.nan, 1.0, 2.1, 4.0], [0.1, 0.4, 0.8, 1.2])
    assert res.fractions == (0.4, 0.8, 1.0)  # the NaN look skipped, the overrun capped at 1
    assert res.crossed_at == 2 and res.rejected  # 2.1 < the 0.8 look's boundary; 4.0 crosses
    assert res.boundaries[1] > 2.1
    assert not group_sequential([1.0, 1.5], [0.5, 1.0]).rejected
    with pytest.raises(DataError, match="increase"):
        spending_boundaries([0.5, 0.5])


def test_correlated_boundaries_agree_with_the_brownian_ones_under_independent_increments() -> None:
    t = np.arange(1, 11) / 10
    bm = np.sqrt(np.minimum.outer(t, t) / np.maximum.outer(t, t))
    np.testing.assert_allclose(
        correlated_boundaries(t, bm, samples=400_000)[3:], spending_boundaries(t)[3:], atol=0.03
    )


def test_look_correlation_estimates_the_correlation_of_the_looks() -> None:
    # heterogeneous users joining over time: heavy ones convert early and for sure, light ones
    # late or never; the value at a look is "converted by then" (not an independent increment)
    rng = np.random.default_rng(3)
    looks, n, tests = 8, 600, 400
    z = np.empty((tests, looks))
    estimates = []
    for i in range(tests):
        rate = np.where(rng.random(n) < 0.5, 2.0, 0.05)
        joined = rng.integers(0, looks // 2, size=n)
        converted = joined + rng.exponential(1.0 / rate)
        arm = rng.integers(0, 2, size=n)
        day = np.arange(1, looks + 1)[None, :]
        values = (converted[:, None] <= day).astype(float)
        present = joined[:, None] <= day
        for k in range(looks):
            c, t = values[present[:, k] & (arm == 0), k], values[present[:, k] & (arm == 1), k]
            z[i, k] = (t.mean() - c.mean()) / np.sqrt(
                t.var(ddof=1) / len(t) + c.var(ddof=1) / len(c)
            )
        estimates.append(look_correlation(values, present, arm))
    empirical = np.corrcoef(z.T)
    estimated = np.mean(estimates, axis=0)
    np.testing.assert_allclose(estimated, empirical, atol=0.08)
    users = np.array([(np.arange(looks // 2) <= k).mean() for k in range(1, looks + 1)])
    brownian = np.sqrt(np.minimum.outer(users, users) / np.maximum.outer(users, users))
    assert np.abs(brownian - empirical).max() > 0.2  # what independent increments would assume
