"""Paired significance of each model against the best baseline of one dataset x protocol.

Models of a cell share their test users, so comparisons are paired on `d_u = metric_model(u) -
metric_baseline(u)`: per-user variance (heavy vs cold users) dwarfs model differences, and
pairing removes it. Per model: a percentile bootstrap interval of mean(d) (the same resampled
users for every model) says how large the gain is; a two-sided Wilcoxon signed-rank p-value on
d (zero differences dropped; all zero: p = 1), robust to per-user NDCG's skewed, zero-inflated
shape, says whether it is real. p-values are adjusted across a cell's models (Holm by default;
Bonferroni, Benjamini-Hochberg); `significant` is `p_adjusted < alpha`, while the interval
stays the unadjusted (1 - alpha) one: it describes the effect size.

>>> compare_to_baseline({"pop": pop, "ease": ease}, "pop")[0]["significant"]  # doctest: +SKIP
True
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from serendip.errors import ConfigError

__all__ = [
    "BASELINE_FAMILY",
    "CORRECTIONS",
    "adjust_p_values",
    "align_on_users",
    "compare_to_baseline",
    "pick_baseline",
    "pick_baselines",
]

#: The model family whose members are candidate baselines (popularity, random, ...).
BASELINE_FAMILY = "baselines"

#: Multiple-comparison corrections `compare_to_baseline` accepts.
CORRECTIONS: tuple[str, ...] = ("holm", "bonferroni", "bh", "none")

# Bootstrap draws are processed in chunks of at most this many user draws, so memory stays bounded
# (~32 MB per array) whatever the number of users and resamples.
_CHUNK_ELEMENTS = 1 << 22


def adjust_p_values(p_values: Sequence[float] | np.ndarray, method: str = "holm") -> np.ndarray:
    """Adjusted p-values for a family of tests (same order as given; each capped at 1).

    - "holm": step-down Holm: sort ascending, p_(i) * (m - i + 1) for i = 1..m, running maximum.
    - "bonferroni": p * m.
    - "bh": Benjamini-Hochberg step-up: p_(i) * m / i, running minimum from the largest down.
    - "none": unchanged.
    """
    if method not in CORRECTIONS:
        raise ConfigError(
            f"unknown correction {method!r}; expected one of {', '.join(CORRECTIONS)}"
        )
    p = np.asarray(p_values, dtype=np.float64)
    if p.ndim != 1:
        raise ConfigError(f"p-values must be one-dimensional, got shape {p.shape}")
    if np.any(np.isnan(p)) or np.any((p < 0) | (p > 1)):
        raise ConfigError("p-values must be numbers in [0, 1]")
    m = len(p)
    if m == 0 or method == "none":
        return p.copy()
    if method == "bonferroni":
        return np.minimum(p * m, 1.0)
    order = np.argsort(p, kind="stable")
    ranked = p[order]
    if method == "holm":
        factors = (m - np.arange(m)).astype(np.float64)  # m, m-1, ..., 1
        adjusted_sorted = np.maximum.accumulate(np.minimum(ranked * factors, 1.0))
    else:  # bh
        factors = m / np.arange(1, m + 1, dtype=np.float64)
        adjusted_sorted = np.minimum.accumulate((ranked * factors)[::-1])[::-1]
        adjusted_sorted = np.minimum(adjusted_sorted, 1.0)
    out = np.empty(m, dtype=np.float64)
    out[order] = adjusted_sorted
    return out


def _wilcoxon_p(diff: np.ndarray) -> float:
    """Two-sided Wilcoxon signed-rank p-value; 1.0 when every difference is zero."""
    if not np.any(diff != 0):
        return 1.0
    from scipy.stats import wilcoxon

    p = float(wilcoxon(diff, zero_method="wilcox", alternative="two-sided").pvalue)
    return 1.0 if math.isnan(p) else min(max(p, 0.0), 1.0)


def _bootstrap_means(diffs: np.ndarray, n_boot: int, seed: int) -> np.ndarray:
    """Bootstrap means of each column of diffs (n_users x n_models) -> (n_boot, n_models).

    One resample of users is shared by all models (paired across models too). The result depends
    only on (seed, n_boot, n_users), not on the chunk size a machine would pick: the chunk size is
    a function of the data's shape alone.
    """
    n_users, n_models = diffs.shape
    rng = np.random.default_rng(seed)
    chunk = max(1, _CHUNK_ELEMENTS // n_users)
    out = np.empty((n_boot, n_models), dtype=np.float64)
    for start in range(0, n_boot, chunk):
        rows = min(n_boot, start + chunk) - start
        idx = rng.integers(0, n_users, size=(rows, n_users))
        # How often each user was drawn in each resample, then one matrix product for all
        # models: far cheaper than gathering rows x users x models values.
        offsets = (np.arange(rows) * n_users)[:, None]
        counts = np.bincount((idx + offsets).ravel(), minlength=rows * n_users)
        out[start : start + rows] = counts.reshape(rows, n_users).astype(np.float64) @ diffs
    return out / n_users


def compare_to_baseline(
    per_user: Mapping[str, np.ndarray],
    baseline: str,
    *,
    metric: str = "ndcg@10",
    n_boot: int = 2000,
    seed: int = 0,
    alpha: float = 0.05,
    correction: str = "holm",
) -> list[dict[str, Any]]:
    """Compare every model of one dataset x protocol with `baseline`, paired per user.

    per_user: model name -> per-user metric values (1-D, finite), all aligned on the same users in
    the same order (see `align_on_users`); `baseline` must be one of its keys. `metric` only labels
    the output. Returns one dict per other model, in the mapping's order, with keys
    model, baseline, metric, n_users, mean_model, mean_baseline, mean_diff (model - baseline),
    ci_low, ci_high (percentile bootstrap, level 1 - alpha), p_value (Wilcoxon, two-sided),
    p_adjusted (`correction` across the returned models) and significant (p_adjusted < alpha).
    Deterministic for a given seed. Cost: O(n_boot x n_users x n_models), vectorised.
    """
    if baseline not in per_user:
        raise ConfigError(
            f"baseline {baseline!r} has no per-user values; models: {', '.join(per_user) or 'none'}"
        )
    if correction not in CORRECTIONS:
        raise ConfigError(
            f"unknown correction {correction!r}; expected one of {', '.join(CORRECTIONS)}"
        )
    if isinstance(n_boot, bool) or not isinstance(n_boot, int) or n_boot < 1:
        raise ConfigError(f"n_boot must be a positive integer, got {n_boot!r}")
    if not 0.0 < alpha < 1.0:
        raise ConfigError(f"alpha must be in (0, 1), got {alpha!r}")

    arrays: dict[str, np.ndarray] = {}
    for name, values in per_user.items():
        a = np.asarray(values, dtype=np.float64)
        if a.ndim != 1:
            raise ConfigError(f"per-user {metric} of {name!r} must be 1-D, got shape {a.shape}")
        if not np.all(np.isfinite(a)):
            raise ConfigError(f"per-user {metric} of {name!r} has NaN or infinite values")
        arrays[name] = a
    base = arrays[baseline]
    n_users = len(base)
    if n_users == 0:
        raise ConfigError(f"no users to compare on (baseline {baseline!r} has no values)")
    mismatched = {name: len(a) for name, a in arrays.items() if len(a) != n_users}
    if mismatched:
        shown = ", ".join(f"{name} has {n}" for name, n in mismatched.items())
        raise ConfigError(
            f"per-user {metric} must be aligned on the same users: baseline {baseline!r} has "
            f"{n_users} values, {shown}"
        )

    models = [name for name in arrays if name != baseline]
    if not models:
        return []
    diffs = np.column_stack([arrays[name] - base for name in models])
    boot = _bootstrap_means(diffs, n_boot, seed)
    lows, highs = np.quantile(boot, [alpha / 2, 1 - alpha / 2], axis=0)
    p_values = np.array([_wilcoxon_p(diffs[:, j]) for j in range(len(models))])
    p_adjusted = adjust_p_values(p_values, correction)
    mean_baseline = float(base.mean())
    out: list[dict[str, Any]] = []
    for j, name in enumerate(models):
        out.append(
            {
                "model": name,
                "baseline": baseline,
                "metric": metric,
                "n_users": n_users,
                "mean_model": float(arrays[name].mean()),
                "mean_baseline": mean_baseline,
                "mean_diff": float(diffs[:, j].mean()),
                "ci_low": float(lows[j]),
                "ci_high": float(highs[j]),
                "p_value": float(p_values[j]),
                "p_adjusted": float(p_adjusted[j]),
                "significant": bool(p_adjusted[j] < alpha),
            }
        )
    return out


def align_on_users(
    per_model: Mapping[str, tuple[Sequence[str] | np.ndarray, np.ndarray]],
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Put per-user values of several models in one user order (for `compare_to_baseline`).

    per_model: model name -> (external user IDs, values), e.g. the `users` array and one metric
    array of a cell's per_user.npz. Every model must cover exactly the same users (a paired test on
    different users would compare different things). Returns (users in the first model's order,
    model name -> values in that order).
    """
    if not per_model:
        return np.array([], dtype=str), {}
    first_name, (first_users, _) = next(iter(per_model.items()))
    users = np.asarray(first_users).astype(str)
    if len(np.unique(users)) != len(users):
        raise ConfigError(f"per-user values of {first_name!r} list a user twice")
    out: dict[str, np.ndarray] = {}
    for name, (ids, values) in per_model.items():
        ids_s = np.asarray(ids).astype(str)
        vals = np.asarray(values, dtype=np.float64)
        if ids_s.shape != vals.shape:
            raise ConfigError(
                f"{name!r}: {len(ids_s)} users but {vals.shape} values; expected one value per user"
            )
        if len(ids_s) != len(users) or not np.array_equal(np.sort(ids_s), np.sort(users)):
            only_here = np.setdiff1d(ids_s, users)
            only_first = np.setdiff1d(users, ids_s)
            raise ConfigError(
                f"{name!r} and {first_name!r} are not on the same users "
                f"({len(only_here)} only in {name!r}, {len(only_first)} only in {first_name!r}, "
                f"{len(ids_s)} vs {len(users)} values)"
            )
        if np.array_equal(ids_s, users):
            out[name] = vals
        else:
            order = np.argsort(ids_s, kind="stable")
            pos = np.searchsorted(ids_s[order], users)
            out[name] = vals[order[pos]]
    return users, out


def _metric_value(row: Mapping[str, Any], metric: str) -> float | None:
    metrics = row.get("metrics")
    if not isinstance(metrics, Mapping):
        return None
    value = metrics.get(metric)
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def _is_baseline(row: Mapping[str, Any]) -> bool:
    return (
        row.get("kind") == "model"
        and row.get("family") == BASELINE_FAMILY
        and row.get("status") == "ok"
    )


def pick_baselines(
    rows: Iterable[Mapping[str, Any]], *, metric: str = "ndcg@10"
) -> dict[tuple[str, str], str]:
    """The best baseline per (dataset, protocol): the ok row of kind "model" and family
    "baselines" with the highest `metric` (ties: the smaller model name, so the choice is stable).

    Cells without any usable baseline are absent from the result.
    """
    best: dict[tuple[str, str], tuple[float, str]] = {}
    for row in rows:
        if not _is_baseline(row):
            continue
        value = _metric_value(row, metric)
        if value is None:
            continue
        key = (str(row.get("dataset")), str(row.get("protocol")))
        name = str(row.get("model"))
        current = best.get(key)
        if current is None or value > current[0] or (value == current[0] and name < current[1]):
            best[key] = (value, name)
    return {key: name for key, (_, name) in best.items()}


def pick_baseline(rows: Iterable[Mapping[str, Any]], *, metric: str = "ndcg@10") -> str | None:
    """The best baseline of the rows of ONE dataset x protocol (see `pick_baselines`), or None.

    Raises ConfigError when the rows span several dataset x protocol cells: a baseline is only
    meaningful within one.
    """
    rows = list(rows)
    cells = {(str(r.get("dataset")), str(r.get("protocol"))) for r in rows}
    if len(cells) > 1:
        shown = ", ".join(f"{d} x {p}" for d, p in sorted(cells))
        raise ConfigError(
            f"pick_baseline works within one dataset x protocol, got rows of {shown}; "
            "use pick_baselines for several"
        )
    picked = pick_baselines(rows, metric=metric)
    return next(iter(picked.values()), None)
