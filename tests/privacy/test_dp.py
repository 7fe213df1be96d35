"""The DP mechanisms: calibration against the published formulas, the per-user bound the
sensitivity rests on, and the noise actually drawn."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from serendip.errors import ConfigError, DataError
from serendip.privacy.dp import (
    DPConfig,
    PrivacyBudget,
    classical_gaussian_sigma,
    clip_per_user,
    clip_rows,
    cooccurrence_sensitivity,
    count_sensitivity,
    gaussian_delta,
    gaussian_sigma,
    laplace_scale,
    noisy_cooccurrence_rows,
    private_counts,
)


def test_laplace_scale_is_l1_over_epsilon() -> None:
    assert laplace_scale(10.0, 0.5) == 20.0
    with pytest.raises(ConfigError, match="epsilon"):
        laplace_scale(1.0, 0.0)


@pytest.mark.parametrize("epsilon", [0.05, 0.1, 0.5, 0.9])
def test_analytic_gaussian_is_tight_and_below_the_classical_bound(epsilon: float) -> None:
    delta = 1e-6
    sigma = gaussian_sigma(3.0, epsilon, delta)
    # exactly delta at sigma (Balle and Wang 2018, Theorem 8), more just below it
    assert gaussian_delta(sigma, 3.0, epsilon) == pytest.approx(delta, rel=1e-6)
    assert gaussian_delta(0.99 * sigma, 3.0, epsilon) > delta
    assert sigma < classical_gaussian_sigma(3.0, epsilon, delta)


def test_analytic_gaussian_covers_large_epsilon_and_scales_with_sensitivity() -> None:
    s1, s10 = gaussian_sigma(1.0, 10.0, 1e-6), gaussian_sigma(10.0, 10.0, 1e-6)
    assert s10 == pytest.approx(10 * s1, rel=1e-6)
    assert gaussian_sigma(1.0, 1.0, 1e-6) > gaussian_sigma(1.0, 10.0, 1e-6)
    # a published value: eps = 1, delta = 1e-5, L2 = 1 -> sigma about 3.73 (Balle and Wang, Fig. 1)
    assert gaussian_sigma(1.0, 1.0, 1e-5) == pytest.approx(3.73, abs=0.02)
    with pytest.raises(ConfigError, match="epsilon < 1"):
        classical_gaussian_sigma(1.0, 2.0, 1e-6)


def test_sensitivities() -> None:
    assert count_sensitivity(9) == (9.0, 3.0)
    assert count_sensitivity(9, distinct=False) == (9.0, 9.0)
    assert cooccurrence_sensitivity(4) == (16.0, 4.0)


def test_budget_and_config_validation() -> None:
    with pytest.raises(ConfigError, match="mechanism"):
        PrivacyBudget(1.0, 5, mechanism="exponential")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="delta"):
        PrivacyBudget(1.0, 5, mechanism="gaussian", delta=0.0)
    assert PrivacyBudget(1.0, 5).effective_delta == 0.0
    assert DPConfig().dp_budget() is None
    budget = DPConfig(dp_epsilon=2.0, dp_mechanism="gaussian", dp_max_per_user=7).dp_budget()
    assert budget == PrivacyBudget(2.0, 7, "gaussian", 1e-6)


def test_clip_keeps_at_most_m_per_user_and_newest_first() -> None:
    users = np.array([0, 0, 0, 0, 1, 2, 2])
    ts = np.array([1.0, 4.0, 3.0, np.nan, 9.0, 1.0, 2.0])
    keep = clip_per_user(users, 2, keys=np.arange(7), priority=ts)
    assert keep.tolist() == [False, True, True, False, True, True, True]
    assert np.bincount(users[clip_per_user(users, 1, keys=np.arange(7))]).max() == 1


@settings(max_examples=40, deadline=None)
@given(
    st.lists(st.tuples(st.integers(0, 6), st.integers(0, 9)), min_size=1, max_size=60),
    st.integers(1, 4),
    st.integers(0, 6),
)
def test_removing_one_user_moves_the_counts_by_at_most_the_sensitivity(
    pairs: list[tuple[int, int]], m: int, gone: int
) -> None:
    """The bound the noise is calibrated to: the same seed draws the same noise, so the
    difference of two releases is the difference of the exact clipped counts."""
    users = np.array([u for u, _ in pairs])
    items = np.array([i for _, i in pairs])
    budget = PrivacyBudget(1.0, m)
    with_user, _ = private_counts(users, items, 10, budget, seed=3)
    rest = users != gone
    without, _ = private_counts(users[rest], items[rest], 10, budget, seed=3)
    diff = with_user - without
    l1, l2 = count_sensitivity(m)
    assert np.abs(diff).sum() <= l1 + 1e-9
    assert np.sqrt((diff**2).sum()) <= l2 + 1e-9
    # the other users' kept interactions do not depend on whether `gone` is there
    keep_all = clip_per_user(users, m, keys=items, seed=3)
    keep_rest = clip_per_user(users[rest], m, keys=items[rest], seed=3)
    assert (keep_all[rest] == keep_rest).all()


@pytest.mark.parametrize("mechanism", ["laplace", "gaussian"])
def test_noise_has_the_calibrated_spread(mechanism: str) -> None:
    budget = PrivacyBudget(0.5, 4, mechanism=mechanism)  # type: ignore[arg-type]
    noisy, release = private_counts(np.zeros(0), np.zeros(0), 200_000, budget, seed=1)
    if mechanism == "laplace":
        assert release.scale == 8.0  # L1 4 / 0.5
        expected_sd = math.sqrt(2) * 8.0
    else:
        assert release.scale == pytest.approx(gaussian_sigma(2.0, 0.5, 1e-6))  # L2 sqrt(4)
        expected_sd = release.scale
    assert abs(noisy.mean()) < 0.1
    assert noisy.std() == pytest.approx(expected_sd, rel=0.02)


def test_private_counts_center_on_the_clipped_counts() -> None:
    users = np.repeat(np.arange(400), 3)
    items = np.tile([0, 1, 2], 400)
    noisy, release = private_counts(users, items, 4, PrivacyBudget(5.0, 2), seed=0)
    # each user keeps 2 of its 3 items: 800 counts spread over items 0..2, none on item 3
    assert noisy[:3].sum() == pytest.approx(800, abs=5)
    assert abs(noisy[3]) < 5
    assert (release.n_dropped, release.n_total) == (400, 1200)


def test_weighted_counts_need_weights_in_unit_interval() -> None:
    with pytest.raises(DataError, match=r"\[0, 1\]"):
        private_counts(
            np.array([0]), np.array([0]), 1, PrivacyBudget(1.0, 1), weights=np.array([2.0])
        )


def test_noisy_cooccurrence_is_the_exact_matrix_plus_noise_everywhere() -> None:
    x = sp.csr_matrix(np.array([[1, 1, 0, 0], [1, 1, 1, 0], [0, 1, 1, 1]], dtype=float))
    clipped = clip_rows(x, 2, seed=0)
    assert np.diff(clipped.indptr).max() == 2
    exact = (clipped.T @ clipped).toarray()
    budget = PrivacyBudget(1e6, 2, mechanism="gaussian")  # negligible noise
    diagonal, blocks, scale = noisy_cooccurrence_rows(clipped, budget, seed=0, chunk_entries=4)
    got = np.vstack([b for _, _, b in blocks])
    assert scale < 0.01
    np.testing.assert_allclose(got, exact, atol=0.05)
    np.testing.assert_allclose(np.diag(got), diagonal)
    noisy = np.vstack([b for _, _, b in noisy_cooccurrence_rows(clipped, PrivacyBudget(1.0, 2))[1]])
    assert (noisy[exact == 0] != 0).all()  # zeros get noise too: the support is not leaked
    with pytest.raises(DataError, match="clip the rows"):
        noisy_cooccurrence_rows(x, PrivacyBudget(1.0, 2))
