"""Train/test splitters: plain, seeded, deterministic functions from a `Dataset` to a `Split`.

Splitters only choose rows (`ds.filter_interactions(mask)`), so the parts share the user and
item vocabularies, the metadata and the social graph. Interactions are held out by distinct
(user, item) *pair* (a recommender excludes training items, so a repeated pair in test could
never be hit), and per-user thresholds (`min_interactions`) count distinct items. A splitter
that leaves rows out of every part says which, and counts them in `Split.params["n_excluded"]`.

>>> import pandas as pd
>>> from serendip.data import Dataset
>>> frame = pd.DataFrame({"user": ["a"] * 6 + ["b"] * 2, "item": list("pqrstu") + ["p", "q"]})
>>> split = random_split(Dataset.from_frames(frame), test_fraction=0.5, seed=1)
>>> split.train.n_interactions, split.test.n_interactions   # user b (2 items) stays in train
(5, 3)
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Literal

import numpy as np
import pandas as pd

from serendip.data.dataset import Dataset
from serendip.errors import ConfigError, DataError
from serendip.jsonsafe import jsonable

__all__ = [
    "SPLIT_METHODS",
    "Split",
    "cold_item_split",
    "cold_user_split",
    "leave_last_split",
    "random_split",
    "split_dataset",
    "temporal_split",
    "validation_split",
    "with_validation",
]


@dataclass(frozen=True, eq=False)
class Split:
    """A train/test split of one source `Dataset`; all parts share its vocabularies.

    - `train`: what a model is fitted on.
    - `test`: the held-out interactions (the truth of the metrics).
    - `fold_in`: cold-user splits only: the held-out users' first share of history, given to a
      model at recommend time as context (never fitted on); None otherwise.
    - `validation`: an inner `Split` of `train` by the same scheme (for tuning), set by
      `with_validation`; None otherwise.
    - `kind`: the method name ("random", "temporal", "leave-last", "cold-users", "cold-items").
    - `params`: every parameter the splitter used (so the split can be repeated), plus what it
      decided (e.g. the cut time, the cold users/items count, `n_excluded`).
    """

    train: Dataset
    test: Dataset
    kind: str
    params: Mapping[str, Any] = field(default_factory=dict)
    fold_in: Dataset | None = None
    validation: Split | None = None

    def summary(self) -> dict[str, Any]:
        """JSON-ready description: kind, params and the size of every part."""

        def sizes(ds: Dataset) -> dict[str, int]:
            it = ds.interactions
            return {
                "interactions": len(it),
                "users": int(np.unique(it.user).size),
                "items": int(np.unique(it.item).size),
            }

        out: dict[str, Any] = {
            "kind": self.kind,
            "params": jsonable(self.params),
            "train": sizes(self.train),
            "test": sizes(self.test),
        }
        if self.fold_in is not None:
            out["fold_in"] = sizes(self.fold_in)
        if self.validation is not None:
            out["validation"] = self.validation.summary()
        return out


# --------------------------------------------------------------------------- helpers
@dataclass(frozen=True, slots=True)
class _Pairs:
    """Distinct (user, item) pairs of a dataset's interactions.

    user, item: int64 per pair, sorted by (user, item); row_pair: int64 per interaction row, the
    pair it belongs to.
    """

    user: np.ndarray
    item: np.ndarray
    row_pair: np.ndarray

    def __len__(self) -> int:
        return len(self.user)


def _pairs(ds: Dataset) -> _Pairs:
    it = ds.interactions
    n_items = max(ds.n_items, 1)
    keys = it.user.astype(np.int64) * n_items + it.item.astype(np.int64)
    uniq, inverse = np.unique(keys, return_inverse=True)
    return _Pairs(uniq // n_items, uniq % n_items, inverse.astype(np.int64))


def _rank_within_user(pair_user: np.ndarray, *sort_keys: np.ndarray) -> np.ndarray:
    """0-based position of every pair within its user after sorting by `sort_keys` (first = primary)."""
    order = np.lexsort((*reversed(sort_keys), pair_user))
    sorted_user = pair_user[order]
    starts = np.r_[0, np.flatnonzero(np.diff(sorted_user)) + 1]
    group_start = np.repeat(starts, np.diff(np.r_[starts, len(order)]))
    rank = np.empty(len(order), dtype=np.int64)
    rank[order] = np.arange(len(order)) - group_start
    return rank


def _round_half_up(x: np.ndarray) -> np.ndarray:
    return np.floor(x + 0.5).astype(np.int64)


def _check_fraction(name: str, value: float) -> None:
    if not (0.0 < value < 1.0):
        raise ConfigError(f"{name} must be between 0 and 1 (exclusive), got {value}")


def _first_times(ds: Dataset, pairs: _Pairs) -> np.ndarray:
    """Earliest timestamp of every pair (float64; NaN when none of its rows has a time)."""
    first = np.full(len(pairs), np.inf)
    ts = ds.interactions.timestamp
    timed = ~np.isnan(ts)
    np.minimum.at(first, pairs.row_pair[timed], ts[timed])
    first[np.isinf(first)] = np.nan
    return first


def _require_timestamps(ds: Dataset, method: str) -> None:
    if not ds.interactions.has_timestamps:
        raise DataError(
            f"the {method} split needs interaction timestamps, and dataset '{ds.name}' has none; "
            "use --method random or cold-users instead"
        )


def _parts(
    ds: Dataset, train_rows: np.ndarray, test_rows: np.ndarray, kind: str, params: dict[str, Any]
) -> Split:
    n_excluded = int(len(train_rows) - train_rows.sum() - test_rows.sum())
    params = {**params, "n_excluded": n_excluded}
    return Split(
        train=ds.filter_interactions(train_rows, name=f"{ds.name}:train"),
        test=ds.filter_interactions(test_rows, name=f"{ds.name}:test"),
        kind=kind,
        params=params,
    )


# --------------------------------------------------------------------------- splitters
def random_split(
    ds: Dataset, *, test_fraction: float = 0.2, seed: int = 0, min_interactions: int = 5
) -> Split:
    """Random per-user holdout of distinct (user, item) pairs.

    Every user with at least `min_interactions` distinct items (and at least 2) gives
    round(test_fraction * n_items_of_user) of its pairs to test, at least 1 and at most all but
    one; every occurrence of a held-out pair goes to test. Users below the threshold stay whole
    in train. Nothing is excluded: train + test = the source rows.
    """
    _check_fraction("test_fraction", test_fraction)
    pairs = _pairs(ds)
    per_user = np.bincount(pairs.user, minlength=ds.n_users)
    eligible = per_user >= max(min_interactions, 2)
    n_test = np.where(
        eligible, np.clip(_round_half_up(test_fraction * per_user), 1, per_user - 1), 0
    )
    rng = np.random.default_rng(seed)
    rank = _rank_within_user(pairs.user, rng.random(len(pairs)))
    test_pair = rank < n_test[pairs.user]
    test_rows = test_pair[pairs.row_pair]
    params = {"test_fraction": test_fraction, "seed": seed, "min_interactions": min_interactions}
    return _parts(ds, ~test_rows, test_rows, "random", params)


def temporal_split(
    ds: Dataset,
    *,
    test_fraction: float | None = 0.2,
    cut: float | str | None = None,
    drop_unseen_items: bool = False,
    repeated_pairs: Literal["drop", "keep"] = "drop",
) -> Split:
    """Global temporal cut: train is everything before the cut, test what comes after.

    The cut is `cut` (epoch seconds, or an ISO 8601 string) when given, else the time at which
    the last `test_fraction` of the timed interactions begin (a quantile of interaction times;
    ties at the cut all go to test, so the share is approximate). Test rows are those with
    timestamp >= cut. Rows without a timestamp stay in train.

    Excluded (in neither part, counted in `params`): test rows of users with no train row (no
    history to recommend from); with `repeated_pairs="drop"`, test rows whose (user, item) pair
    already occurs in train (re-consumption a recommender that hides seen items cannot hit);
    with `drop_unseen_items`, test rows whose item never occurs in train.
    """
    _require_timestamps(ds, "temporal")
    ts = ds.interactions.timestamp
    timed = ~np.isnan(ts)
    if cut is not None:
        cut_time = _parse_time(cut)
    else:
        if test_fraction is None:
            raise ConfigError("the temporal split needs either a cut time or a test_fraction")
        _check_fraction("test_fraction", test_fraction)
        ordered = np.sort(ts[timed])
        pos = min(math.ceil((1.0 - test_fraction) * len(ordered)), len(ordered) - 1)
        cut_time = float(ordered[pos])
    after = timed & (ts >= cut_time)
    train_rows = ~after
    it = ds.interactions
    in_train_user = np.zeros(ds.n_users, dtype=bool)
    in_train_user[it.user[train_rows]] = True
    test_rows = after & in_train_user[it.user]
    n_new_users = int((after & ~test_rows).sum())
    n_repeat = 0
    if repeated_pairs == "drop":
        n_items = max(ds.n_items, 1)
        keys = it.user.astype(np.int64) * n_items + it.item
        repeat = test_rows & np.isin(keys, keys[train_rows])
        n_repeat = int(repeat.sum())
        test_rows &= ~repeat
    elif repeated_pairs != "keep":
        raise ConfigError(f"repeated_pairs must be 'drop' or 'keep', got {repeated_pairs!r}")
    n_unseen = 0
    if drop_unseen_items:
        in_train_item = np.zeros(ds.n_items, dtype=bool)
        in_train_item[it.item[train_rows]] = True
        unseen = test_rows & ~in_train_item[it.item]
        n_unseen = int(unseen.sum())
        test_rows &= ~unseen
    params = {
        "test_fraction": test_fraction if cut is None else None,
        "cut": cut_time,
        "drop_unseen_items": drop_unseen_items,
        "repeated_pairs": repeated_pairs,
        "n_untimed_in_train": int((~timed).sum()),
        "n_excluded_new_users": n_new_users,
        "n_excluded_repeated_pairs": n_repeat,
        "n_excluded_unseen_items": n_unseen,
    }
    return _parts(ds, train_rows, test_rows, "temporal", params)


def _parse_time(value: float | str) -> float:
    if isinstance(value, (int, float)):
        return float(value)
    try:
        return float(value)
    except ValueError:
        pass
    try:
        stamp = pd.Timestamp(value)
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"cut '{value}' is neither epoch seconds nor an ISO 8601 time") from exc
    if stamp.tzinfo is None:
        stamp = stamp.tz_localize("UTC")
    return float(stamp.timestamp())


def leave_last_split(ds: Dataset, *, n: int = 1, seed: int = 0, min_interactions: int = 5) -> Split:
    """Leave-last-N: each user's N newest distinct items go to test.

    Pairs are ordered by their *first* interaction time (the moment the item was new to the
    user, which is what a recommender of unseen items predicts); pairs without any timestamp
    count as oldest. Ties in time are broken by a seeded random order, so the split is
    deterministic under `seed`. Users with fewer than max(min_interactions, N + 1) distinct
    items stay whole in train. Nothing is excluded.
    """
    if n < 1:
        raise ConfigError(f"n must be at least 1, got {n}")
    _require_timestamps(ds, "leave-last")
    pairs = _pairs(ds)
    first = np.nan_to_num(_first_times(ds, pairs), nan=-np.inf)
    per_user = np.bincount(pairs.user, minlength=ds.n_users)
    eligible = per_user >= max(min_interactions, n + 1)
    rng = np.random.default_rng(seed)
    # Newest first: negate the time; the random key breaks ties.
    rank = _rank_within_user(pairs.user, -first, rng.random(len(pairs)))
    test_pair = eligible[pairs.user] & (rank < n)
    test_rows = test_pair[pairs.row_pair]
    params = {"n": n, "seed": seed, "min_interactions": min_interactions}
    return _parts(ds, ~test_rows, test_rows, "leave-last", params)


def cold_user_split(
    ds: Dataset,
    *,
    user_fraction: float = 0.1,
    fold_in_fraction: float = 0.5,
    seed: int = 0,
    min_interactions: int = 5,
    fold_in_order: Literal["random", "time"] = "random",
) -> Split:
    """Cold users: a share of users is held out of train entirely.

    round(user_fraction * users with interactions) users (at least 1) are drawn at random among
    those with at least max(min_interactions, 2) distinct items. Each one's distinct pairs are
    divided: round(fold_in_fraction * n) of them (at least 1, at most all but one) form the
    fold-in history (`Split.fold_in`, context given at recommend time), the rest the test.
    `fold_in_order="time"` gives the earliest pairs (by first interaction) to fold-in, "random"
    a seeded random share. Nothing is excluded: train + fold_in + test = the source rows.
    """
    _check_fraction("user_fraction", user_fraction)
    _check_fraction("fold_in_fraction", fold_in_fraction)
    if fold_in_order not in ("random", "time"):
        raise ConfigError(f"fold_in_order must be 'random' or 'time', got {fold_in_order!r}")
    pairs = _pairs(ds)
    per_user = np.bincount(pairs.user, minlength=ds.n_users)
    eligible = np.flatnonzero(per_user >= max(min_interactions, 2))
    n_active = int((per_user > 0).sum())
    if len(eligible) == 0:
        raise DataError(
            f"no user has at least {max(min_interactions, 2)} distinct items to hold out"
        )
    n_cold = min(max(math.floor(user_fraction * n_active + 0.5), 1), len(eligible))
    rng = np.random.default_rng(seed)
    cold_users = np.sort(rng.choice(eligible, size=n_cold, replace=False))
    is_cold = np.zeros(ds.n_users, dtype=bool)
    is_cold[cold_users] = True

    tiebreak = rng.random(len(pairs))
    if fold_in_order == "time":
        _require_timestamps(ds, "cold-users (fold_in_order='time')")
        first = np.nan_to_num(_first_times(ds, pairs), nan=-np.inf)
        rank = _rank_within_user(pairs.user, first, tiebreak)
    else:
        rank = _rank_within_user(pairs.user, tiebreak)
    n_fold = np.clip(_round_half_up(fold_in_fraction * per_user), 1, np.maximum(per_user - 1, 1))
    cold_pair = is_cold[pairs.user]
    fold_pair = cold_pair & (rank < n_fold[pairs.user])
    test_pair = cold_pair & ~fold_pair
    cold_rows = cold_pair[pairs.row_pair]
    fold_rows = fold_pair[pairs.row_pair]
    test_rows = test_pair[pairs.row_pair]
    params = {
        "user_fraction": user_fraction,
        "fold_in_fraction": fold_in_fraction,
        "seed": seed,
        "min_interactions": min_interactions,
        "fold_in_order": fold_in_order,
        "n_cold_users": n_cold,
        "n_excluded": 0,
    }
    return Split(
        train=ds.filter_interactions(~cold_rows, name=f"{ds.name}:train"),
        test=ds.filter_interactions(test_rows, name=f"{ds.name}:test"),
        kind="cold-users",
        params=params,
        fold_in=ds.filter_interactions(fold_rows, name=f"{ds.name}:fold_in"),
    )


def cold_item_split(
    ds: Dataset,
    *,
    item_fraction: float = 0.1,
    by: Literal["auto", "created_at", "first_interaction"] = "auto",
    drop_new_users: bool = True,
) -> Split:
    """Cold items: the newest items are held out; all their interactions go to test.

    Among the items that have interactions, the newest round(item_fraction * n) (at least 1,
    at most all but one) are cold, newest by `by`: the item's `created_at` metadata, or its
    first interaction ("auto": created_at when any of those items has one, else the first
    interaction; `params["by"]` says which). Items without that time count as oldest; ties go
    to the higher item
    index. Train never sees a cold item, but the items stay in the vocabulary and the item
    metadata, so content models can recommend them.

    Excluded with `drop_new_users` (counted in `params`): test rows of users who have no train
    row (they interacted only with cold items; they are cold users, not the point here).
    """
    _check_fraction("item_fraction", item_fraction)
    it = ds.interactions
    counts = np.bincount(it.item, minlength=ds.n_items)
    active = np.flatnonzero(counts > 0)
    if len(active) < 2:
        raise DataError("the cold-items split needs interactions on at least 2 distinct items")
    if by == "auto":
        has_created = not np.isnan(ds.item_meta.created_at[active]).all()
        by = "created_at" if has_created else "first_interaction"
    if by == "created_at":
        when = ds.item_meta.created_at.astype(np.float64)
        if np.isnan(when[active]).all():
            raise DataError(
                "the cold-items split by created_at needs item creation times, and none of the "
                "items with interactions has one; pass items metadata or use by='first_interaction'"
            )
    elif by == "first_interaction":
        _require_timestamps(ds, "cold-items (by='first_interaction')")
        when = np.full(ds.n_items, np.inf)
        timed = ~np.isnan(it.timestamp)
        np.minimum.at(when, it.item[timed], it.timestamp[timed])
        when[np.isinf(when)] = np.nan
    else:
        raise ConfigError(f"by must be 'auto', 'created_at' or 'first_interaction', got {by!r}")
    n_cold = min(max(math.floor(item_fraction * len(active) + 0.5), 1), len(active) - 1)
    key = np.nan_to_num(when[active], nan=-np.inf)
    # Newest first: sort descending by time, then descending by index.
    order = np.lexsort((-active, -key))
    cold_items = active[order[:n_cold]]
    is_cold = np.zeros(ds.n_items, dtype=bool)
    is_cold[cold_items] = True
    cold_rows = is_cold[it.item]
    train_rows = ~cold_rows
    test_rows = cold_rows.copy()
    n_new_users = 0
    if drop_new_users:
        in_train_user = np.zeros(ds.n_users, dtype=bool)
        in_train_user[it.user[train_rows]] = True
        new_user = test_rows & ~in_train_user[it.user]
        n_new_users = int(new_user.sum())
        test_rows &= ~new_user
    params = {
        "item_fraction": item_fraction,
        "by": by,
        "drop_new_users": drop_new_users,
        "n_cold_items": n_cold,
        "n_excluded_new_users": n_new_users,
    }
    return _parts(ds, train_rows, test_rows, "cold-items", params)


# --------------------------------------------------------------------------- dispatch
SPLIT_METHODS: dict[str, Callable[..., Split]] = {
    "random": random_split,
    "temporal": temporal_split,
    "leave-last": leave_last_split,
    "cold-users": cold_user_split,
    "cold-items": cold_item_split,
}

#: Parameters each method accepts (what `with_validation` carries over from a split's params).
_METHOD_PARAMS: dict[str, tuple[str, ...]] = {
    "random": ("test_fraction", "seed", "min_interactions"),
    "temporal": ("test_fraction", "drop_unseen_items", "repeated_pairs"),
    "leave-last": ("n", "seed", "min_interactions"),
    "cold-users": (
        "user_fraction",
        "fold_in_fraction",
        "seed",
        "min_interactions",
        "fold_in_order",
    ),
    "cold-items": ("item_fraction", "by", "drop_new_users"),
}


def split_dataset(ds: Dataset, method: str, **params: Any) -> Split:
    """Split by method name (one of `SPLIT_METHODS`) with that method's keyword parameters."""
    try:
        func = SPLIT_METHODS[method]
    except KeyError:
        raise ConfigError(
            f"unknown split method '{method}'; valid: {', '.join(SPLIT_METHODS)}"
        ) from None
    unknown = (
        set(params) - set(_METHOD_PARAMS[method]) - ({"cut"} if method == "temporal" else set())
    )
    if unknown:
        raise ConfigError(
            f"split method '{method}' does not take {', '.join(sorted(unknown))}; "
            f"valid: {', '.join(_METHOD_PARAMS[method] + (('cut',) if method == 'temporal' else ()))}"
        )
    return func(ds, **params)


def validation_split(train: Dataset, method: str = "random", **params: Any) -> Split:
    """Carve a validation split out of a training set (for tuning), by method name.

    The returned split's `train` is the reduced training set and its `test` the validation
    interactions. Same parameters as `split_dataset`.
    """
    inner = split_dataset(train, method, **params)
    return replace(
        inner,
        train=inner.train.with_interactions(
            inner.train.interactions, name=f"{train.name}:subtrain"
        ),
        test=inner.test.with_interactions(inner.test.interactions, name=f"{train.name}:validation"),
    )


def with_validation(split: Split, **overrides: Any) -> Split:
    """The same split with `validation` set: `split.train` split again by the same scheme.

    Parameters default to the ones `split` was made with (a temporal split made with a fixed
    `cut` uses its test_fraction, 0.2 unless overridden, since the cut itself lies after all of
    train); `overrides` replaces any of them, e.g. `seed=1`.
    """
    if split.kind not in _METHOD_PARAMS:
        raise ConfigError(f"cannot carve a validation split from a '{split.kind}' split")
    params = {k: split.params[k] for k in _METHOD_PARAMS[split.kind] if k in split.params}
    if split.kind == "temporal" and params.get("test_fraction") is None:
        params["test_fraction"] = 0.2
    params.update(overrides)
    return replace(split, validation=validation_split(split.train, split.kind, **params))
