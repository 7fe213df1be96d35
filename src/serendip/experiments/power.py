"""The power and sample-size calculator for a conversion metric (a proportion per user).

Cohen's h effect size (`statsmodels.stats.proportion.proportion_effectsize`, the arcsine
transform) and the normal two-sample power equation (`statsmodels.stats.power.NormalIndPower`),
two-sided.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from statsmodels.stats.power import NormalIndPower
from statsmodels.stats.proportion import proportion_effectsize

from serendip.errors import DataError

__all__ = ["detectable_lift", "power_at", "sample_size", "total_sample_size"]


def _check(baseline_rate: float, alpha: float, power: float | None = None) -> None:
    if not 0 < baseline_rate < 1:
        raise DataError(
            f"baseline_rate must be in (0, 1), got {baseline_rate}", field="baseline_rate"
        )
    if not 0 < alpha < 1:
        raise DataError(f"alpha must be in (0, 1), got {alpha}", field="alpha")
    if power is not None and not alpha < power < 1:
        raise DataError(f"power must be in (alpha, 1), got {power}", field="power")


def _ratio(shares: Sequence[float]) -> float:
    if len(shares) != 2 or any(not (0 < s < 1) or not math.isfinite(s) for s in shares):
        raise DataError(
            f"shares must be (control, treatment), each in (0, 1), got {tuple(shares)}",
            field="shares",
        )
    return shares[1] / shares[0]


def sample_size(
    baseline_rate: float,
    relative_lift: float,
    alpha: float = 0.05,
    power: float = 0.8,
    shares: Sequence[float] = (0.5, 0.5),
) -> int:
    """Users the control needs (rounded up) to detect a relative lift of `relative_lift` on a
    conversion rate of `baseline_rate` with a two-sided test at `alpha` with `power`; the
    treatment needs `shares[1] / shares[0]` times as many (equal shares: users per variant).

    >>> sample_size(0.1, 0.05)
    57756
    """
    _check(baseline_rate, alpha, power)
    treated = baseline_rate * (1.0 + relative_lift)
    if relative_lift == 0 or not 0 < treated < 1:
        raise DataError(
            f"relative_lift must be non-zero and keep the rate in (0, 1), got {relative_lift}",
            field="relative_lift",
        )
    effect = abs(float(proportion_effectsize(treated, baseline_rate)))
    n = NormalIndPower().solve_power(
        effect_size=effect, nobs1=None, alpha=alpha, power=power, ratio=_ratio(shares)
    )
    return math.ceil(float(n))


def total_sample_size(
    baseline_rate: float,
    relative_lift: float,
    alpha: float = 0.05,
    power: float = 0.8,
    shares: Sequence[float] = (0.5, 0.5),
) -> int:
    """Users in the whole experiment: `sample_size(...)` divided by the control's share."""
    n = sample_size(baseline_rate, relative_lift, alpha, power, shares)
    return math.ceil(n / shares[0] * (shares[0] + shares[1]))


def power_at(
    baseline_rate: float,
    relative_lift: float,
    n_control: int,
    alpha: float = 0.05,
    shares: Sequence[float] = (0.5, 0.5),
) -> float:
    """The power of the two-sided test with `n_control` users in the control."""
    _check(baseline_rate, alpha)
    if n_control < 2:
        raise DataError(f"n_control must be >= 2, got {n_control}", field="n_control")
    effect = abs(float(proportion_effectsize(baseline_rate * (1 + relative_lift), baseline_rate)))
    return float(NormalIndPower().power(effect, nobs1=n_control, alpha=alpha, ratio=_ratio(shares)))


def detectable_lift(
    baseline_rate: float,
    n_control: int,
    alpha: float = 0.05,
    power: float = 0.8,
    shares: Sequence[float] = (0.5, 0.5),
) -> float:
    """The smallest positive relative lift detected with `power` given `n_control` users."""
    _check(baseline_rate, alpha, power)
    if n_control < 2:
        raise DataError(f"n_control must be >= 2, got {n_control}", field="n_control")
    h = float(
        NormalIndPower().solve_power(
            effect_size=None, nobs1=n_control, alpha=alpha, power=power, ratio=_ratio(shares)
        )
    )
    # invert Cohen's h = 2 asin(sqrt(p1)) - 2 asin(sqrt(p0)) for p1
    angle = 2 * math.asin(math.sqrt(baseline_rate)) + h
    if angle >= math.pi:
        return math.inf
    return math.sin(angle / 2) ** 2 / baseline_rate - 1.0
