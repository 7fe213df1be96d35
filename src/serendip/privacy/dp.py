"""Differential privacy for aggregate counts: the Laplace and Gaussian mechanisms.

The unit of privacy is **a user**: two training sets are neighbours when one holds every
interaction of one more user than the other. A release is (epsilon, delta)-DP with respect to
that user when its noise is calibrated to how much one user's whole contribution can move it
(its sensitivity). That contribution is bounded first: `clip_per_user` keeps at most
`max_per_user` (m) interactions of each user (the selection depends only on that user's own
data, so it costs no privacy). Then, per release:

- item counts (popularity: distinct users per item), one user adds at most 1 to m items:
  L1 = m, L2 = sqrt(m) (`count_sensitivity`);
- weighted counts (trending: time-decayed weights in (0, 1], repeats allowed), at most m
  interactions of weight <= 1: L1 = m, L2 = m (all m may land on one item);
- co-occurrence counts C = X^T X of the binary users x items matrix with rows clipped to m
  items, one user adds the m x m block x x^T (diagonal included): L1 = m^2, L2 = m
  (`cooccurrence_sensitivity`); every one of the n x n entries gets noise, zeros included,
  or the released support would leak who co-occurs.

Mechanisms: Laplace with scale b = L1 / epsilon (pure epsilon-DP; Dwork, McSherry, Nissim and
Smith 2006); Gaussian with sigma from the analytic calibration of Balle and Wang, "Improving the
Gaussian Mechanism for Differential Privacy: Analytical Calibration and Optimal Denoising",
ICML 2018, Theorem 8 (exact for every epsilon, unlike the classical
sigma = L2 sqrt(2 ln(1.25 / delta)) / epsilon of Dwork and Roth 2014, Theorem A.1, which holds
only for epsilon < 1 and is larger; `classical_gaussian_sigma` keeps it for comparison).

What the guarantee covers: the noisy aggregate, and by post-processing everything computed from
it alone (similarities, rankings, and so the recommendations another user receives from it
together with that user's own history). It does not cover a model artifact's copy of the
training matrix (kept to mask seen items) nor exact fold-in updates; the models say how they
treat both.

>>> budget = PrivacyBudget(epsilon=1.0, max_per_user=10)
>>> counts, release = private_counts(np.array([0, 0, 1]), np.array([0, 1, 1]), 3, budget, seed=0)
>>> release.l1_sensitivity, release.scale
(10.0, 10.0)
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from typing import Literal

import numpy as np
import scipy.sparse as sp
from pydantic import BaseModel, ConfigDict, Field, model_validator
from scipy.special import log_ndtr, ndtr

from serendip.errors import ConfigError, DataError

__all__ = [
    "MECHANISMS",
    "DPConfig",
    "Mechanism",
    "PrivacyBudget",
    "Release",
    "add_noise",
    "classical_gaussian_sigma",
    "clip_per_user",
    "clip_rows",
    "cooccurrence_sensitivity",
    "count_sensitivity",
    "gaussian_delta",
    "gaussian_sigma",
    "laplace_scale",
    "noisy_cooccurrence_rows",
    "private_counts",
]

Mechanism = Literal["laplace", "gaussian"]
MECHANISMS: tuple[str, ...] = ("laplace", "gaussian")


# ----------------------------------------------------------------------------- the budget
@dataclass(frozen=True, slots=True)
class PrivacyBudget:
    """What a release may spend: epsilon (> 0), delta (Gaussian only: 0 < delta < 1; Laplace
    is pure epsilon-DP and ignores it), the mechanism, and m = the most interactions one user
    may contribute (the bound the sensitivity is computed from)."""

    epsilon: float
    max_per_user: int
    mechanism: Mechanism = "laplace"
    delta: float = 1e-6

    def __post_init__(self) -> None:
        if not (math.isfinite(self.epsilon) and self.epsilon > 0):
            raise ConfigError(f"dp epsilon must be a positive number, got {self.epsilon}")
        if self.mechanism not in MECHANISMS:
            raise ConfigError(
                f"unknown dp mechanism '{self.mechanism}'; valid: {', '.join(MECHANISMS)}"
            )
        if self.mechanism == "gaussian" and not (0.0 < self.delta < 1.0):
            raise ConfigError(f"the Gaussian mechanism needs 0 < delta < 1, got {self.delta}")
        if self.max_per_user < 1:
            raise ConfigError(f"dp max_per_user must be at least 1, got {self.max_per_user}")

    @property
    def effective_delta(self) -> float:
        return self.delta if self.mechanism == "gaussian" else 0.0


class DPConfig(BaseModel):
    """The differential-privacy fields a model's config mixes in (e.g.
    `class PopularityConfig(ModelConfig, DPConfig)`). `dp_epsilon=None` (the default): no noise,
    the model is exactly as without this option."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    dp_epsilon: float | None = Field(
        default=None, gt=0, description="privacy budget epsilon of the aggregate (None: off)"
    )
    dp_mechanism: Mechanism = Field(default="laplace", description="laplace or gaussian")
    dp_delta: float = Field(default=1e-6, gt=0, lt=1, description="delta (gaussian only)")
    dp_max_per_user: int = Field(
        default=50, ge=1, description="interactions kept per user (bounds the sensitivity)"
    )

    @model_validator(mode="after")
    def _finite(self) -> DPConfig:
        if self.dp_epsilon is not None and not math.isfinite(self.dp_epsilon):
            raise ValueError("dp_epsilon must be finite (None turns the option off)")
        return self

    def dp_budget(self) -> PrivacyBudget | None:
        """The budget these fields describe; None when the option is off."""
        if self.dp_epsilon is None:
            return None
        return PrivacyBudget(
            epsilon=self.dp_epsilon,
            max_per_user=self.dp_max_per_user,
            mechanism=self.dp_mechanism,
            delta=self.dp_delta,
        )


@dataclass(frozen=True, slots=True)
class Release:
    """What one noisy release did, for manifests and reports: the budget, the sensitivities
    it was calibrated to, the noise scale (Laplace b or Gaussian sigma) and how many
    interactions did not count (repeats of a pair in a distinct count, and those over the
    per-user bound) of how many."""

    mechanism: str
    epsilon: float
    delta: float
    max_per_user: int
    l1_sensitivity: float
    l2_sensitivity: float
    scale: float
    n_dropped: int
    n_total: int

    def to_dict(self) -> dict[str, float | int | str]:
        return asdict(self)


# ----------------------------------------------------------------------------- calibration
def count_sensitivity(max_per_user: int, *, distinct: bool = True) -> tuple[float, float]:
    """(L1, L2) sensitivity of a per-item count vector when one user contributes at most
    `max_per_user` interactions of weight <= 1: distinct items (+1 each) give (m, sqrt(m));
    repeats allowed (all on one item at worst) give (m, m)."""
    m = float(max_per_user)
    return m, (math.sqrt(m) if distinct else m)


def cooccurrence_sensitivity(max_per_user: int) -> tuple[float, float]:
    """(L1, L2) sensitivity of C = X^T X (binary X, rows of at most m items): one user adds
    the all-ones m x m block, so L1 = m^2 and L2 (Frobenius) = m."""
    m = float(max_per_user)
    return m * m, m


def laplace_scale(l1_sensitivity: float, epsilon: float) -> float:
    """b = L1 / epsilon: Laplace(b) noise on every coordinate gives epsilon-DP."""
    _positive(l1_sensitivity, "L1 sensitivity")
    _positive(epsilon, "epsilon")
    return l1_sensitivity / epsilon


def classical_gaussian_sigma(l2_sensitivity: float, epsilon: float, delta: float) -> float:
    """sigma = L2 sqrt(2 ln(1.25 / delta)) / epsilon (Dwork and Roth 2014, Theorem A.1); valid
    only for epsilon < 1 (a `ConfigError` otherwise). Kept to compare with `gaussian_sigma`."""
    _positive(l2_sensitivity, "L2 sensitivity")
    if not 0 < epsilon < 1:
        raise ConfigError(
            f"the classical Gaussian bound holds only for 0 < epsilon < 1, got {epsilon}"
        )
    _delta(delta)
    return l2_sensitivity * math.sqrt(2.0 * math.log(1.25 / delta)) / epsilon


def gaussian_delta(sigma: float, l2_sensitivity: float, epsilon: float) -> float:
    """The smallest delta for which N(0, sigma^2) noise is (epsilon, delta)-DP at this L2
    sensitivity (Balle and Wang 2018, Theorem 8):
    delta = Phi(L2 / (2 sigma) - epsilon sigma / L2) - e^epsilon Phi(-L2 / (2 sigma) - epsilon sigma / L2).
    The second term is computed in log space, so large epsilon does not overflow."""
    a = l2_sensitivity / (2.0 * sigma)
    b = epsilon * sigma / l2_sensitivity
    first = float(ndtr(a - b))
    second = math.exp(epsilon + float(log_ndtr(-a - b)))
    return max(first - second, 0.0)


def gaussian_sigma(l2_sensitivity: float, epsilon: float, delta: float) -> float:
    """The smallest sigma for which the Gaussian mechanism is (epsilon, delta)-DP at this L2
    sensitivity: the analytic Gaussian mechanism (Balle and Wang 2018, Theorem 8), found by
    bisection on `gaussian_delta` (decreasing in sigma) to a relative 1e-10. Valid for every
    epsilon > 0; below epsilon = 1 it is smaller than `classical_gaussian_sigma`."""
    _positive(l2_sensitivity, "L2 sensitivity")
    _positive(epsilon, "epsilon")
    _delta(delta)
    lo, hi = 1e-12 * l2_sensitivity, l2_sensitivity
    while gaussian_delta(hi, l2_sensitivity, epsilon) > delta:
        lo, hi = hi, 2.0 * hi
    while gaussian_delta(lo, l2_sensitivity, epsilon) <= delta:
        lo /= 2.0
    for _ in range(200):
        mid = math.sqrt(lo * hi)
        if gaussian_delta(mid, l2_sensitivity, epsilon) > delta:
            lo = mid
        else:
            hi = mid
        if hi / lo - 1.0 < 1e-10:
            break
    return hi


def _positive(x: float, what: str) -> None:
    if not (math.isfinite(x) and x > 0):
        raise ConfigError(f"{what} must be a positive number, got {x}")


def _delta(delta: float) -> None:
    if not 0 < delta < 1:
        raise ConfigError(f"delta must be in (0, 1), got {delta}")


def noise_scale(budget: PrivacyBudget, l1: float, l2: float) -> float:
    """Laplace b or Gaussian sigma of `budget` at these sensitivities."""
    if budget.mechanism == "laplace":
        return laplace_scale(l1, budget.epsilon)
    return gaussian_sigma(l2, budget.epsilon, budget.delta)


def add_noise(
    values: np.ndarray, budget: PrivacyBudget, scale: float, rng: np.random.Generator
) -> np.ndarray:
    """`values` (float64, any shape) plus independent noise of `budget`'s mechanism at
    `scale` (from `noise_scale`) on every entry."""
    out = np.asarray(values, dtype=np.float64)
    if budget.mechanism == "laplace":
        return out + rng.laplace(0.0, scale, size=out.shape)
    return out + rng.normal(0.0, scale, size=out.shape)


# ----------------------------------------------------------------------------- bounding
def clip_per_user(
    users: np.ndarray,
    max_per_user: int,
    *,
    keys: np.ndarray | None = None,
    priority: np.ndarray | None = None,
    seed: int = 0,
) -> np.ndarray:
    """bool mask of the interactions kept: at most `max_per_user` per user.

    With `priority` (e.g. timestamps; NaN counts lowest) a user's highest-priority rows are
    kept; the rest of the order is a seeded hash of (user, key) (`keys`: e.g. item indices;
    default 0), then the row order. The choice for one user therefore depends only on that
    user's own rows: adding or removing another user never changes it, which is what the
    sensitivity bound needs (a shared random permutation would not do).
    """
    users = np.asarray(users)
    n = len(users)
    if max_per_user < 1:
        raise ConfigError(f"max_per_user must be at least 1, got {max_per_user}")
    if n == 0:
        return np.zeros(0, dtype=bool)
    k = np.zeros(n, dtype=np.int64) if keys is None else np.asarray(keys, dtype=np.int64)
    if len(k) != n:
        raise DataError(f"keys has {len(k)} values for {n} interactions")
    tie = _mix(users.astype(np.int64), k, seed)
    if priority is None:
        order = np.lexsort((np.arange(n), tie, users))
    else:
        p = np.asarray(priority, dtype=np.float64)
        if len(p) != n:
            raise DataError(f"priority has {len(p)} values for {n} interactions")
        p = np.where(np.isnan(p), -np.inf, p)
        order = np.lexsort((np.arange(n), tie, -p, users))
    sorted_users = users[order]
    starts = np.r_[0, np.flatnonzero(sorted_users[1:] != sorted_users[:-1]) + 1]
    counts = np.diff(np.r_[starts, n])
    position = np.arange(n) - np.repeat(starts, counts)
    keep = np.zeros(n, dtype=bool)
    keep[order[position < max_per_user]] = True
    return keep


def _mix(a: np.ndarray, b: np.ndarray, seed: int) -> np.ndarray:
    """A seeded 64-bit hash of each (a, b) pair (splitmix64's finaliser), as uint64."""
    with np.errstate(over="ignore"):
        x = a.astype(np.uint64) * np.uint64(0x9E3779B97F4A7C15)
        x ^= b.astype(np.uint64) + np.uint64(0x632BE59BD9B4E019) + np.uint64(seed % 2**63)
        x ^= x >> np.uint64(30)
        x *= np.uint64(0xBF58476D1CE4E5B9)
        x ^= x >> np.uint64(27)
        x *= np.uint64(0x94D049BB133111EB)
        x ^= x >> np.uint64(31)
    return x


def clip_rows(matrix: sp.csr_matrix, max_per_user: int, *, seed: int = 0) -> sp.csr_matrix:
    """Binary CSR copy of `matrix` (users x items) with at most `max_per_user` items per row,
    chosen by a seeded hash of (row, item) (see `clip_per_user`)."""
    m = sp.csr_matrix(matrix)
    m.sum_duplicates()
    rows = np.repeat(np.arange(m.shape[0]), np.diff(m.indptr))
    keep = clip_per_user(rows, max_per_user, keys=m.indices, seed=seed)
    out = sp.csr_matrix(
        (np.ones(int(keep.sum()), np.float64), (rows[keep], m.indices[keep])), shape=m.shape
    )
    out.sort_indices()
    return out


# ----------------------------------------------------------------------------- releases
def private_counts(
    users: np.ndarray,
    items: np.ndarray,
    n_items: int,
    budget: PrivacyBudget,
    *,
    weights: np.ndarray | None = None,
    priority: np.ndarray | None = None,
    seed: int = 0,
) -> tuple[np.ndarray, Release]:
    """A noisy per-item count vector (float64, (n_items,)) and what the release did.

    Without `weights`: distinct users per item, each user's distinct items clipped to m
    (sensitivity L1 m, L2 sqrt(m)). With `weights` (each in [0, 1], e.g. time decay): the sum
    of the weights of each user's m kept interactions (by `priority`, e.g. newest first;
    L1 m, L2 m). Negative noisy counts are kept: ranking by them is post-processing, and
    clipping them (for display) is the caller's choice.
    """
    users = np.asarray(users, dtype=np.int64)
    items = np.asarray(items, dtype=np.int64)
    if len(users) != len(items):
        raise DataError(f"{len(users)} users for {len(items)} items")
    if len(items) and (items.min() < 0 or items.max() >= n_items):
        raise DataError(f"item index out of range [0, {n_items})")
    n_total = len(users)
    if weights is None:
        pairs = np.unique(users * max(n_items, 1) + items)
        users, items = pairs // max(n_items, 1), pairs % max(n_items, 1)
        keep = clip_per_user(users, budget.max_per_user, keys=items, seed=seed)
        w = np.ones(int(keep.sum()))
        l1, l2 = count_sensitivity(budget.max_per_user, distinct=True)
    else:
        w_all = np.asarray(weights, dtype=np.float64)
        if len(w_all) != n_total:
            raise DataError(f"{len(w_all)} weights for {n_total} interactions")
        if len(w_all) and (not np.isfinite(w_all).all() or w_all.min() < 0 or w_all.max() > 1):
            raise DataError("count weights must lie in [0, 1] (the sensitivity assumes it)")
        keep = clip_per_user(users, budget.max_per_user, keys=items, priority=priority, seed=seed)
        w = w_all[keep]
        l1, l2 = count_sensitivity(budget.max_per_user, distinct=False)
    exact = np.bincount(items[keep], weights=w, minlength=n_items).astype(np.float64)
    scale = noise_scale(budget, l1, l2)
    noisy = add_noise(exact, budget, scale, np.random.default_rng(seed))
    release = Release(
        mechanism=budget.mechanism,
        epsilon=budget.epsilon,
        delta=budget.effective_delta,
        max_per_user=budget.max_per_user,
        l1_sensitivity=l1,
        l2_sensitivity=l2,
        scale=scale,
        n_dropped=int(len(keep) - keep.sum()) + (n_total - len(keep)),
        n_total=n_total,
    )
    return noisy, release


def noisy_cooccurrence_rows(
    clipped: sp.csr_matrix,
    budget: PrivacyBudget,
    *,
    seed: int = 0,
    chunk_entries: int = 4_000_000,
) -> tuple[np.ndarray, Iterator[tuple[int, int, np.ndarray]], float]:
    """The noisy item x item co-occurrence matrix of `clipped` (binary users x items, rows
    already clipped to m = `budget.max_per_user` items by `clip_rows`), by row blocks.

    Returns (diagonal, blocks, scale): the noisy diagonal (float64, (n_items,): noisy
    distinct-user counts, released first so a caller can normalise every block by it), an
    iterator of (start, end, dense float64 (end - start, n_items) block of C + noise, its
    diagonal entries equal to `diagonal`), and the noise scale. Every entry gets independent
    noise, zeros included, at sensitivity (m^2, m): one mechanism over the whole matrix.
    Memory: one block of about `chunk_entries` float64 at a time; time O(n_items^2).
    """
    x = sp.csr_matrix(clipped, dtype=np.float64)
    row_nnz = np.diff(x.indptr)
    if len(row_nnz) and row_nnz.max(initial=0) > budget.max_per_user:
        raise DataError(
            f"a user has {int(row_nnz.max())} items, above max_per_user={budget.max_per_user}: "
            "clip the rows first (clip_rows)"
        )
    n = x.shape[1]
    l1, l2 = cooccurrence_sensitivity(budget.max_per_user)
    scale = noise_scale(budget, l1, l2)
    rng = np.random.default_rng(seed)
    xt = x.T.tocsr()
    exact_diag = np.asarray(xt.sum(axis=1)).ravel()
    diagonal = add_noise(exact_diag, budget, scale, rng)
    step = max(1, chunk_entries // max(n, 1))

    def blocks() -> Iterator[tuple[int, int, np.ndarray]]:
        for s in range(0, n, step):
            e = min(n, s + step)
            block = np.asarray((xt[s:e] @ x).toarray(), dtype=np.float64)
            block = add_noise(block, budget, scale, rng)
            block[np.arange(e - s), np.arange(s, e)] = diagonal[s:e]
            yield s, e, block

    return diagonal, blocks(), scale
