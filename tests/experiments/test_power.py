from __future__ import annotations

import numpy as np
import pytest
from statsmodels.stats.proportion import proportions_ztest

from serendip.errors import DataError
from serendip.experiments.power import detectable_lift, power_at, sample_size, total_sample_size


def test_sample_size_matches_the_textbook_formula() -> None:
    # Cohen's h: n per arm = 2 ((z_a/2 + z_b) / h)^2
    p0, p1 = 0.1, 0.105
    h = 2 * np.arcsin(np.sqrt(p1)) - 2 * np.arcsin(np.sqrt(p0))
    expected = 2 * ((1.959964 + 0.841621) / h) ** 2  # var(2 asin sqrt p) = 1/n per arm
    assert sample_size(0.1, 0.05) == int(np.ceil(expected))
    assert sample_size(0.1, 0.10) < sample_size(0.1, 0.05)
    assert sample_size(0.1, 0.05, power=0.9) > sample_size(0.1, 0.05)


def test_unequal_shares_and_inverses() -> None:
    n = sample_size(0.2, 0.05, shares=(0.8, 0.2))
    assert n > sample_size(0.2, 0.05)
    assert total_sample_size(0.2, 0.05) == 2 * sample_size(0.2, 0.05)
    m = sample_size(0.2, 0.05)
    assert power_at(0.2, 0.05, m) == pytest.approx(0.8, abs=0.001)
    assert detectable_lift(0.2, m) == pytest.approx(0.05, rel=0.01)


def test_the_calculated_size_gives_the_promised_power() -> None:
    rng = np.random.default_rng(0)
    p0, lift = 0.3, 0.1
    n = sample_size(p0, lift)
    hits = 0
    for _ in range(400):
        c = rng.binomial(n, p0)
        t = rng.binomial(n, p0 * (1 + lift))
        hits += proportions_ztest([t, c], [n, n])[1] < 0.05
    assert 0.74 < hits / 400 < 0.86


@pytest.mark.parametrize(
    "kwargs",
    [
        {"baseline_rate": 0.0, "relative_lift": 0.1},
        {"baseline_rate": 0.5, "relative_lift": 0.0},
        {"baseline_rate": 0.5, "relative_lift": 1.5},
        {"baseline_rate": 0.5, "relative_lift": 0.1, "power": 1.2},
        {"baseline_rate": 0.5, "relative_lift": 0.1, "shares": (0.5, 0.3, 0.2)},
    ],
)
def test_bad_input(kwargs: dict[str, object]) -> None:
    with pytest.raises(DataError):
        sample_size(**kwargs)  # type: ignore[arg-type]
