"""The statistics of an A/B comparison on per-user values: arrays in, small frozen results out.

Shared by `analyze` (live exposures and events) and the simulator's benchmark (hundreds of
simulated tests), so what the benchmark proves is what the service reports. Distributions and
tests come from scipy and statsmodels; the mSPRT's mixture likelihood ratio (Johari, Koomen,
Pekelis and Walsh, "Peeking at A/B tests", KDD 2017; "Always valid inference", Operations
Research 2022) is a closed form written here; the group-sequential test's boundaries
(Lan-DeMets alpha spending) come from the standard recursive integration of the sub-density of
the score process (Armitage, McPherson and Rowe 1969; Jennison and Turnbull 2000, ch. 19)
over scipy's normal distribution.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike
from scipy.optimize import brentq
from scipy.stats import chisquare, norm
from statsmodels.stats.proportion import proportion_confint, proportions_ztest
from statsmodels.stats.weightstats import ztest

from serendip.errors import DataError

__all__ = [
    "Comparison",
    "Cuped",
    "GroupSequential",
    "SampleRatio",
    "Spending",
    "bootstrap_p_value",
    "compare",
    "cuped",
    "group_sequential",
    "mean_ci",
    "msprt_p_values",
    "sample_ratio",
    "spending_boundaries",
]

#: Lan-DeMets spending functions: O'Brien-Fleming-like spends almost nothing early (the
#: final look keeps nearly the fixed-horizon critical value); Pocock-like spends evenly.
Spending = Literal["obrien-fleming", "pocock"]

Interval = tuple[float, float]

#: SRM is flagged below this p-value (the usual industry threshold: a mismatch this unlikely
#: means assignment or logging is broken, and no other number of the experiment can be trusted)
SRM_THRESHOLD = 0.001


@dataclass(frozen=True, slots=True)
class Comparison:
    """A treatment against the control on one per-user metric.

    difference: treatment mean - control mean (absolute); lift: relative difference
    (treatment / control - 1), its CI by the delta method on the log ratio; p_value: two-sided.
    """

    control_mean: float
    treatment_mean: float
    difference: float
    difference_ci: Interval
    lift: float
    lift_ci: Interval
    p_value: float


@dataclass(frozen=True, slots=True)
class SampleRatio:
    """Sample-ratio-mismatch check: users per variant against the configured shares
    (chi-square goodness of fit); `mismatch` when p < 0.001."""

    counts: tuple[int, ...]
    expected: tuple[float, ...]
    statistic: float
    p_value: float
    mismatch: bool


@dataclass(frozen=True, slots=True)
class Cuped:
    """CUPED (Deng, Xu, Kohavi and Walker 2013): y - theta * (x - mean(x)) with
    theta = cov(y, x) / var(x) pooled over all users; `variance_reduction` is
    1 - var(adjusted) / var(y) (the squared correlation of y and x)."""

    theta: float
    variance_reduction: float
    adjusted: np.ndarray


def _z(alpha: float) -> float:
    return float(norm.ppf(1.0 - alpha / 2.0))


def _is_binary(values: np.ndarray) -> bool:
    return bool(np.all((values == 0) | (values == 1)))


def _values(x: ArrayLike, name: str) -> np.ndarray:
    a = np.asarray(x, dtype=np.float64)
    if a.ndim != 1:
        raise DataError(f"{name} must be one value per user (1-D), got shape {a.shape}")
    if not np.all(np.isfinite(a)):
        raise DataError(f"{name} has non-finite values")
    return a


def mean_ci(values: ArrayLike, alpha: float = 0.05) -> Interval:
    """The (1 - alpha) CI of a per-user mean: Wilson for 0/1 values (a proportion), normal
    otherwise; (nan, nan) for no users."""
    v = _values(values, "values")
    n = len(v)
    if n == 0:
        return (math.nan, math.nan)
    if _is_binary(v):
        lo, hi = proportion_confint(int(v.sum()), n, alpha=alpha, method="wilson")
        return (float(lo), float(hi))
    half = _z(alpha) * (float(v.std(ddof=1)) / math.sqrt(n) if n > 1 else math.inf)
    m = float(v.mean())
    return (m - half, m + half)


def compare(control: ArrayLike, treatment: ArrayLike, *, alpha: float = 0.05) -> Comparison:
    """Compare per-user values of the treatment with the control's.

    0/1 values (conversion): the two-proportion z-test (`statsmodels proportions_ztest`, pooled
    variance under the null); other values (rates per user, CUPED-adjusted values): the
    two-sample z-test on means with unequal variances (`statsmodels ztest`). A p-value of nan
    means there is nothing to test (an empty arm or no variation at all).
    """
    c = _values(control, "control")
    t = _values(treatment, "treatment")
    nc, nt = len(c), len(t)
    if nc < 2 or nt < 2:
        nan2 = (math.nan, math.nan)
        mc = float(c.mean()) if nc else math.nan
        mt = float(t.mean()) if nt else math.nan
        return Comparison(mc, mt, mt - mc, nan2, _ratio(mt, mc), nan2, math.nan)
    mc, mt = float(c.mean()), float(t.mean())
    vc, vt = float(c.var(ddof=1)), float(t.var(ddof=1))
    if vc == 0 and vt == 0:
        p = 1.0 if mc == mt else 0.0
    elif _is_binary(c) and _is_binary(t):
        _, pv = proportions_ztest([t.sum(), c.sum()], [nt, nc])
        p = float(pv)
    else:
        _, pv = ztest(t, c, usevar="unequal")
        p = float(pv)
    se = math.sqrt(vc / nc + vt / nt)
    z = _z(alpha)
    diff = mt - mc
    return Comparison(
        mc,
        mt,
        diff,
        (diff - z * se, diff + z * se),
        _ratio(mt, mc),
        _lift_ci(mc, mt, vc / nc, vt / nt, z),
        p,
    )


def _ratio(mt: float, mc: float) -> float:
    return mt / mc - 1.0 if mc > 0 else math.nan


def _lift_ci(mc: float, mt: float, var_mc: float, var_mt: float, z: float) -> Interval:
    """Delta method on log(mt / mc): var = var(mt)/mt^2 + var(mc)/mc^2."""
    if mc <= 0 or mt <= 0:
        return (math.nan, math.nan)
    log_ratio = math.log(mt / mc)
    se = math.sqrt(var_mt / mt**2 + var_mc / mc**2)
    return (math.exp(log_ratio - z * se) - 1.0, math.exp(log_ratio + z * se) - 1.0)


def bootstrap_p_value(
    control: ArrayLike, treatment: ArrayLike, *, n_boot: int = 2000, seed: int = 0
) -> float:
    """Two-sided p-value of the difference in means by a per-user bootstrap: users are
    resampled with replacement within each arm `n_boot` times, and the p-value is the share of
    resampled differences at least |observed| away from the observed one (the bootstrap
    distribution of d* - d approximates that of d under the null), with the +1 correction.
    0/1 values are resampled exactly as Binomial(n, mean) / n (the same distribution, O(n_boot)).
    """
    c = _values(control, "control")
    t = _values(treatment, "treatment")
    if len(c) < 2 or len(t) < 2:
        return math.nan
    rng = np.random.default_rng(seed)
    observed = float(t.mean() - c.mean())
    boot = _resampled_means(t, n_boot, rng) - _resampled_means(c, n_boot, rng)
    extreme = int(np.count_nonzero(np.abs(boot - observed) >= abs(observed) - 1e-15))
    return (1 + extreme) / (1 + n_boot)


def _resampled_means(v: np.ndarray, n_boot: int, rng: np.random.Generator) -> np.ndarray:
    n = len(v)
    if _is_binary(v):
        return rng.binomial(n, float(v.mean()), size=n_boot) / n
    out = np.empty(n_boot)
    chunk = max(1, 2_000_000 // n)
    for start in range(0, n_boot, chunk):
        stop = min(n_boot, start + chunk)
        idx = rng.integers(0, n, size=(stop - start, n))
        out[start:stop] = v[idx].mean(axis=1)
    return out


def sample_ratio(counts: Sequence[int], shares: Sequence[float]) -> SampleRatio:
    """Chi-square goodness of fit of users per variant to the configured shares
    (`scipy.stats.chisquare`)."""
    if len(counts) != len(shares) or len(counts) < 2:
        raise DataError("one count per variant, and at least two variants")
    total = int(sum(counts))
    expected = tuple(float(s) * total for s in shares)
    if total == 0:
        return SampleRatio(tuple(int(c) for c in counts), expected, 0.0, 1.0, False)
    stat, p = chisquare(np.asarray(counts, dtype=np.float64), np.asarray(expected))
    return SampleRatio(
        tuple(int(c) for c in counts), expected, float(stat), float(p), bool(p < SRM_THRESHOLD)
    )


def cuped(values: ArrayLike, covariate: ArrayLike) -> Cuped:
    """CUPED-adjust per-user `values` with a pre-period `covariate` (same users, same order).

    A covariate without variance gives theta 0 (no adjustment, no reduction).
    """
    y = _values(values, "values")
    x = _values(covariate, "covariate")
    if len(y) != len(x):
        raise DataError(f"values and covariate differ in length ({len(y)} vs {len(x)})")
    if len(y) < 2:
        return Cuped(0.0, 0.0, y.copy())
    var_x = float(x.var(ddof=1))
    var_y = float(y.var(ddof=1))
    if var_x == 0 or var_y == 0:
        return Cuped(0.0, 0.0, y.copy())
    theta = float(np.cov(y, x, ddof=1)[0, 1] / var_x)
    adjusted = y - theta * (x - x.mean())
    return Cuped(theta, 1.0 - float(adjusted.var(ddof=1)) / var_y, adjusted)


def msprt_p_values(difference: ArrayLike, variance: ArrayLike, tau: ArrayLike) -> np.ndarray:
    """Always-valid p-values of the mixture SPRT at successive looks (the last axis).

    At each look the estimated difference d (treatment - control, absolute) has variance
    v = var_t / n_t + var_c / n_c. With a normal mixture N(0, tau^2) over the true difference,
    the mixture likelihood ratio against "no difference" is (Johari et al. 2017, eq. for the
    two-sample normal case written in terms of d and v)

        Lambda = sqrt(v / (v + tau^2)) * exp(tau^2 d^2 / (2 v (v + tau^2)))

    and the always-valid p-value is the running minimum of min(1, 1 / Lambda) over looks: under
    the null, P(any look has p <= alpha) <= alpha however often one looks. Looks with v <= 0 or
    non-finite inputs (too few users yet) leave the p-value as it was. Broadcasts: shape
    (..., looks) in, the same shape out.
    """
    d = np.asarray(difference, dtype=np.float64)
    v = np.asarray(variance, dtype=np.float64)
    t2 = np.broadcast_to(
        np.asarray(tau, dtype=np.float64) ** 2, np.broadcast_shapes(d.shape, v.shape)
    )
    ok = np.isfinite(d) & np.isfinite(v) & (v > 0) & (t2 > 0)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        log_lambda = 0.5 * np.log(v / (v + t2)) + t2 * d**2 / (2.0 * v * (v + t2))
    log_lambda = np.where(ok, log_lambda, -np.inf)
    p = np.exp(-np.maximum(log_lambda, 0.0))
    return np.minimum.accumulate(p, axis=-1)


@dataclass(frozen=True, slots=True)
class GroupSequential:
    """A two-sided group-sequential test over the looks made so far: `boundaries` the critical
    |z| at each look, `z` the observed statistics, `crossed_at` the first look whose |z|
    reached its boundary (None: none yet), `rejected` whether one did."""

    fractions: tuple[float, ...]
    boundaries: tuple[float, ...]
    z: tuple[float, ...]
    crossed_at: int | None

    @property
    def rejected(self) -> bool:
        return self.crossed_at is not None


def _spent(t: float, alpha: float, spending: Spending) -> float:
    if spending == "pocock":
        return alpha * math.log1p((math.e - 1.0) * t)
    # two-sided: each side spends the one-sided O'Brien-Fleming-like function at alpha / 2
    return float(4.0 * norm.sf(norm.isf(alpha / 4.0) / math.sqrt(t)))


#: Below this a look spends nothing worth a boundary: |z| >= 8 has probability ~1e-15.
_NO_SPEND = 1e-12
_FAR = 8.0


def _excess(b: float, x: np.ndarray, f: np.ndarray, sd: float, target: float) -> float:
    """Chance of crossing +-b at the next look (increment sd) from sub-density f on grid x,
    less the alpha this look may spend."""
    tail = norm.sf((b - x) / sd) + norm.cdf((-b - x) / sd)
    return float(np.trapezoid(f * tail, x)) - target


def spending_boundaries(
    fractions: ArrayLike,
    alpha: float = 0.05,
    spending: Spending = "obrien-fleming",
    grid: int = 801,
) -> np.ndarray:
    """Two-sided critical |z| values at looks made at information `fractions` (increasing, in
    (0, 1]; the last is 1 at the planned end) so that under no difference the chance of
    crossing by look k is the Lan-DeMets spending function alpha(t_k) exactly (up to the
    integration grid), wherever the looks fall: looking daily spends the same alpha overall.

    Method: on the score scale B = z sqrt(t), a Brownian motion under the null, the density of
    B at each look restricted to the paths that have not crossed yet is carried forward by
    convolution with the increment's normal density (trapezoid rule on `grid` points); each
    boundary is the root (brentq) of crossing probability = alpha(t_k) - alpha(t_{k-1}).
    """
    t = np.asarray(fractions, dtype=np.float64)
    if t.ndim != 1 or len(t) == 0:
        raise DataError("fractions must be a non-empty 1-D sequence")
    if not (np.all(t > 0) and np.all(t <= 1.0 + 1e-12) and np.all(np.diff(t) > 0)):
        raise DataError("fractions must increase strictly within (0, 1]")
    if not 0 < alpha < 1:
        raise DataError(f"alpha must lie in (0, 1), got {alpha}")
    bounds = np.empty(len(t))
    x = f = np.zeros(0)
    t_prev = spent_prev = 0.0
    for k, tk in enumerate(t):
        spent = _spent(float(tk), alpha, spending)
        target = spent - spent_prev
        sd_t = math.sqrt(tk)
        if target < _NO_SPEND:
            c = _FAR
        elif k == 0:
            c = float(norm.isf(target / 2.0))
        else:
            sd = math.sqrt(tk - t_prev)
            hi = _FAR * sd_t
            if _excess(hi, x, f, sd, target) > 0:
                c = _FAR
            else:
                c = brentq(_excess, 1e-9, hi, args=(x, f, sd, target), xtol=1e-10) / sd_t
        bounds[k] = c
        y = np.linspace(-c * sd_t, c * sd_t, grid)
        if k == 0:
            f = np.asarray(norm.pdf(y / sd_t) / sd_t, dtype=np.float64)
        else:
            sd = math.sqrt(tk - t_prev)
            kernel = norm.pdf((y[:, None] - x[None, :]) / sd) / sd
            f = np.asarray(np.trapezoid(f[None, :] * kernel, x, axis=1), dtype=np.float64)
        x, t_prev, spent_prev = y, float(tk), spent
    return bounds


def look_correlation(values: ArrayLike, present: ArrayLike, arm: ArrayLike) -> np.ndarray:
    """The correlation of the difference in means (arm 1 - arm 0) between looks, estimated
    from the per-user data: `values` and `present` are (users, looks), `arm` 0/1 per user.

    Per arm, Cov(mean at look j, mean at look k) = cov over the users present at both of
    their values at j and k / (n_j n_k) x (users present at both); the difference's
    covariance is the sum over arms. A user's value at later looks is not an independent
    increment (a user who converts early has converted at every later look; heavy users
    convert for sure by the end), so the Brownian-motion correlation sqrt(t_j / t_k) can be
    far off; this is the data's own."""
    v = np.asarray(values, dtype=np.float64)
    m = np.asarray(present, dtype=bool)
    a = np.asarray(arm)
    looks = v.shape[1]
    cov = np.zeros((looks, looks))
    for side in (0, 1):
        rows = a == side
        vs, ms = v[rows], m[rows]
        n = ms.sum(axis=0).astype(np.float64)
        msf = ms.astype(np.float64)
        both = msf.T @ msf  # users present at both looks, without a users x looks^2 array
        mean = np.divide((vs * ms).sum(axis=0), n, out=np.zeros(looks), where=n > 0)
        centred = np.where(ms, vs - mean, 0.0)
        with np.errstate(divide="ignore", invalid="ignore"):
            cov += np.nan_to_num(
                (centred.T @ centred) / np.maximum(both - 1.0, 1.0) * both / np.outer(n, n)
            )
    sd = np.sqrt(np.diag(cov))
    with np.errstate(divide="ignore", invalid="ignore"):
        corr = np.nan_to_num(cov / np.outer(sd, sd))
    np.fill_diagonal(corr, 1.0)
    return corr


def correlated_boundaries(
    fractions: ArrayLike,
    corr: ArrayLike,
    alpha: float = 0.05,
    spending: Spending = "obrien-fleming",
    samples: int = 100_000,
    seed: int = 0,
) -> np.ndarray:
    """Two-sided critical |z| values like `spending_boundaries`, for looks whose statistics
    have correlation `corr` (any valid matrix, e.g. `look_correlation`'s) instead of the
    Brownian-motion one: `samples` draws of N(0, corr) (seeded), and each boundary the
    |z| quantile that makes the draws not stopped earlier cross at this look with probability
    alpha(t_k) - alpha(t_{k-1}) (Monte Carlo error on the total alpha about
    sqrt(alpha / samples))."""
    t = np.asarray(fractions, dtype=np.float64)
    c = np.asarray(corr, dtype=np.float64)
    if c.shape != (len(t), len(t)):
        raise DataError(f"corr must be {len(t)} x {len(t)}, got {c.shape}")
    w, vecs = np.linalg.eigh((c + c.T) / 2.0)
    root = vecs * np.sqrt(np.clip(w, 0.0, None))  # a PSD square root, robust to rank loss
    draws = np.abs(np.random.default_rng(seed).standard_normal((samples, len(t))) @ root.T)
    alive = np.ones(samples, dtype=bool)
    bounds = np.empty(len(t))
    spent_prev = 0.0
    for k, tk in enumerate(t):
        spent = _spent(float(tk), alpha, spending)
        cross = round((spent - spent_prev) * samples)
        live = np.sort(draws[alive, k])[::-1]
        bounds[k] = _FAR if cross <= 0 or len(live) == 0 else float(live[min(cross, len(live)) - 1])
        alive &= draws[:, k] < bounds[k]
        spent_prev = spent
    return bounds


def group_sequential(
    z: ArrayLike,
    fractions: ArrayLike,
    alpha: float = 0.05,
    spending: Spending = "obrien-fleming",
    corr: ArrayLike | None = None,
) -> GroupSequential:
    """The group-sequential test of looks with statistics `z` (difference / its standard
    error) at information `fractions` (for example users so far / planned users; capped at 1,
    and a look at or past the planned end spends what is left). Looks with a non-finite z
    (too few users yet) are skipped. `corr`: the looks' correlation (`look_correlation`);
    None: the Brownian-motion one (independent increments)."""
    zs = np.asarray(z, dtype=np.float64)
    ts = np.minimum(np.asarray(fractions, dtype=np.float64), 1.0)
    if zs.shape != ts.shape or zs.ndim != 1:
        raise DataError("z and fractions must be 1-D and of the same length")
    keep = np.isfinite(zs) & (ts > 0)
    # a look that adds no information (a fraction not above the previous one) is no new look
    kept: list[int] = []
    for i in np.flatnonzero(keep):
        if not kept or ts[i] > ts[kept[-1]]:
            kept.append(int(i))
    if not kept:
        return GroupSequential((), (), (), None)
    tk, zk = ts[kept], zs[kept]
    if corr is None:
        bounds = spending_boundaries(tk, alpha, spending)
    else:
        sub = np.asarray(corr, dtype=np.float64)[np.ix_(kept, kept)]
        bounds = correlated_boundaries(tk, sub, alpha, spending)
    crossed = np.flatnonzero(np.abs(zk) >= bounds)
    return GroupSequential(
        tuple(float(v) for v in tk),
        tuple(float(v) for v in bounds),
        tuple(float(v) for v in zk),
        int(crossed[0]) if len(crossed) else None,
    )
