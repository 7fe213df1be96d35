"""Popularity-family baselines. Cheap, strong on head-heavy data, and the yardstick of every study."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np
import pandas as pd
import scipy.sparse as sp
from pydantic import Field

from serendip.data.dataset import Dataset
from serendip.models.base import Evidence, FloatRange, ModelConfig, Recommender, SearchSpace
from serendip.privacy.dp import DPConfig, private_counts

__all__ = ["CategoryPopularity", "Popularity", "RandomRecommender", "Trending"]

_DAY = 86_400.0


class PopularityConfig(ModelConfig, DPConfig):
    """`dp_epsilon` (with `dp_mechanism`, `dp_delta`, `dp_max_per_user`) releases the counts
    with differential privacy instead of exactly: see `serendip.privacy.dp`."""


class Popularity(Recommender[PopularityConfig]):
    """Items ranked by how many distinct users interacted with them in training.

    With `dp_epsilon` set, the counts are released once at fit time by the Laplace or Gaussian
    mechanism (each user's distinct items clipped to `dp_max_per_user`, so L1 = m, L2 =
    sqrt(m)); the ranking, the cold-start list, the explanations and `popularity_` all read the
    noisy counts, so what any user is shown is (epsilon, delta)-DP with respect to every other
    user. `update` then only marks the new events seen: adding them to the counts exactly would
    spend privacy the budget does not cover (the next fit releases fresh counts).
    """

    name = "popularity"
    family = "baselines"
    description = "Most interacted items overall."
    Config: ClassVar[type[ModelConfig]] = PopularityConfig
    supports_update = True

    def _fit(self, dataset: Dataset) -> None:
        self.counts_ = self.popularity_.astype(np.float64)
        self.dp_release_: dict[str, Any] | None = None
        budget = self.config.dp_budget()
        if budget is not None:
            it = dataset.interactions
            noisy, release = private_counts(
                it.user, it.item, dataset.n_items, budget, seed=self.config.seed
            )
            self._set_private(noisy, release.to_dict())

    def _set_private(self, noisy: np.ndarray, release: dict[str, Any]) -> None:
        """Use the released noisy counts everywhere the exact ones were (display clipped at 0)."""
        self.counts_ = noisy
        self.popularity_ = np.clip(noisy, 0.0, None).astype(np.float32)
        self.dp_release_ = release

    def _score_warm(self, user_idx: np.ndarray) -> np.ndarray:
        return np.broadcast_to(self.counts_.astype(np.float32), (len(user_idx), len(self.counts_)))

    def _score_cold(self, context: np.ndarray) -> np.ndarray:
        return self.counts_.astype(np.float32)

    def _explain(self, user_idx: int, item_idx: int) -> tuple[list[Evidence], str]:
        n = float(self.counts_[item_idx])
        if self.config.dp_epsilon is not None:
            shown = max(round(n), 0)
            return [Evidence("popularity", self.items_.id(item_idx), n, "noisy count")], (
                f"Popular: about {shown} people interacted with this (a privacy-protected count)"
            )
        return [Evidence("popularity", self.items_.id(item_idx), n, f"{int(n)} users")], (
            f"Popular: {int(n)} people interacted with this"
        )

    def _update(self, events: pd.DataFrame) -> None:
        _fold_in_seen(self, events)
        if self.config.dp_epsilon is not None:
            return  # exact increments would leak the new events; the next fit re-releases
        idx = self.items_.indices(events["item"].astype(str).to_numpy())
        np.add.at(self.counts_, idx[idx >= 0], 1.0)

    def _state(self) -> tuple[dict[str, Any], dict[str, Any]]:
        return {"counts": self.counts_}, {"dp_release": self.dp_release_}

    def _set_state(self, arrays: Mapping[str, Any], meta: Mapping[str, Any]) -> None:
        self.counts_ = np.asarray(arrays["counts"], dtype=np.float64)
        self.dp_release_ = meta.get("dp_release")


class TrendingConfig(PopularityConfig):
    half_life_days: float = Field(default=7.0, gt=0)


class Trending(Popularity):
    """Popularity with exponential time decay: an interaction `a` days before the newest one
    counts 0.5 ** (a / half_life_days). Without timestamps it is plain popularity."""

    name = "trending"
    description = "Most interacted items, exponentially time-decayed."
    Config: ClassVar[type[ModelConfig]] = TrendingConfig
    config: TrendingConfig
    search_space: ClassVar[SearchSpace] = {"half_life_days": FloatRange(0.5, 60.0, log=True)}
    quick_params: ClassVar[Mapping[str, Any]] = {"half_life_days": 7.0}

    def _fit(self, dataset: Dataset) -> None:
        it = dataset.interactions
        self.now_ = float(np.nanmax(it.timestamp)) if it.has_timestamps else 0.0
        self.counts_ = self._decayed(it.item, it.timestamp, dataset.n_items)
        self.dp_release_ = None
        budget = self.config.dp_budget()
        if budget is not None:
            # each user's m newest interactions, weights 0.5 ** (age / half-life) in (0, 1]
            noisy, release = private_counts(
                it.user,
                it.item,
                dataset.n_items,
                budget,
                weights=self._weights(it.timestamp),
                priority=it.timestamp,
                seed=self.config.seed,
            )
            self._set_private(noisy, release.to_dict())

    def _weights(self, ts: np.ndarray) -> np.ndarray:
        hl = self.config.half_life_days
        age = np.nan_to_num((self.now_ - ts) / _DAY, nan=0.0).clip(min=0.0)
        return np.exp2(-age / hl)

    def _decayed(self, items: np.ndarray, ts: np.ndarray, n_items: int) -> np.ndarray:
        return np.bincount(items, weights=self._weights(ts), minlength=n_items)

    def _update(self, events: pd.DataFrame) -> None:
        _fold_in_seen(self, events)
        if self.config.dp_epsilon is not None:
            return  # the noisy counts stay as released until the next fit
        idx = self.items_.indices(events["item"].astype(str).to_numpy())
        ts = (
            pd.to_numeric(events["timestamp"], errors="coerce").to_numpy(dtype=np.float64)
            if "timestamp" in events
            else np.full(len(events), np.nan)
        )
        ok = idx >= 0
        newest = float(np.nanmax(ts)) if np.isfinite(ts).any() else self.now_
        if newest > self.now_:  # move the clock: older mass decays
            hl = self.config.half_life_days
            self.counts_ *= np.exp2(-(newest - self.now_) / _DAY / hl)
            self.now_ = newest
        self.counts_ += self._decayed(
            idx[ok], np.nan_to_num(ts[ok], nan=self.now_), len(self.counts_)
        )

    def _state(self) -> tuple[dict[str, Any], dict[str, Any]]:
        return {"counts": self.counts_}, {"now": self.now_, "dp_release": self.dp_release_}

    def _set_state(self, arrays: Mapping[str, Any], meta: Mapping[str, Any]) -> None:
        self.counts_ = np.asarray(arrays["counts"], dtype=np.float64)
        self.now_ = float(meta["now"])
        self.dp_release_ = meta.get("dp_release")


class CategoryPopularity(Popularity):
    """Popular items within the categories a user engages with: score = share of the user's
    history in the item's category, plus a small popularity term to order within a category."""

    name = "category-popularity"
    description = "Popular items within the categories the user engages with."

    def _fit(self, dataset: Dataset) -> None:
        super()._fit(dataset)
        cats, codes = np.unique(dataset.item_meta.category.astype(str), return_inverse=True)
        self.categories_ = cats
        self.item_cat_ = codes.astype(np.int64)
        n_items = dataset.n_items
        onehot = sp.csr_matrix(
            (np.ones(n_items, np.float32), (np.arange(n_items), self.item_cat_)),
            shape=(n_items, len(cats)),
        )
        self.onehot_ = onehot

    def _user_category_share(self, user_idx: np.ndarray) -> np.ndarray:
        uc = np.asarray((self.train_[user_idx] @ self.onehot_).todense(), dtype=np.float64)
        tot = uc.sum(axis=1, keepdims=True)
        return np.divide(uc, tot, out=np.zeros_like(uc), where=tot > 0)

    def _score_warm(self, user_idx: np.ndarray) -> np.ndarray:
        share = self._user_category_share(user_idx)
        pop = self.counts_ / max(self.counts_.max(), 1.0)
        return (share[:, self.item_cat_] + 1e-3 * pop[None, :]).astype(np.float32)

    def _score_cold(self, context: np.ndarray) -> np.ndarray:
        if len(context) == 0:
            return self.counts_.astype(np.float32)
        cats = np.bincount(self.item_cat_[context], minlength=len(self.categories_)).astype(
            np.float64
        )
        share = cats / cats.sum()
        pop = self.counts_ / max(self.counts_.max(), 1.0)
        return (share[self.item_cat_] + 1e-3 * pop).astype(np.float32)

    def _explain(self, user_idx: int, item_idx: int) -> tuple[list[Evidence], str]:
        cat = str(self.categories_[self.item_cat_[item_idx]])
        share = float(self._user_category_share(np.array([user_idx]))[0, self.item_cat_[item_idx]])
        return [
            Evidence("feature", f"category={cat}", share)
        ], f"Popular in {cat}" if cat else "Popular"

    def _state(self) -> tuple[dict[str, Any], dict[str, Any]]:
        return {
            "counts": self.counts_,
            "categories": self.categories_.astype(str),
            "item_cat": self.item_cat_,
        }, {"dp_release": self.dp_release_}

    def _set_state(self, arrays: Mapping[str, Any], meta: Mapping[str, Any]) -> None:
        self.counts_ = np.asarray(arrays["counts"], dtype=np.float64)
        self.categories_ = np.asarray(arrays["categories"])
        self.item_cat_ = np.asarray(arrays["item_cat"], dtype=np.int64)
        self.dp_release_ = meta.get("dp_release")
        n = len(self.item_cat_)
        self.onehot_ = sp.csr_matrix(
            (np.ones(n, np.float32), (np.arange(n), self.item_cat_)),
            shape=(n, len(self.categories_)),
        )


class RandomRecommender(Recommender[ModelConfig]):
    """Uniformly random scores, reproducible per (seed, user): the floor any model must beat."""

    name = "random"
    family = "baselines"
    description = "Uniformly random unseen items (a floor)."

    def _fit(self, dataset: Dataset) -> None:
        pass

    def _score_warm(self, user_idx: np.ndarray) -> np.ndarray:
        n = len(self.items_)
        out = np.empty((len(user_idx), n), np.float32)
        for r, u in enumerate(user_idx):
            out[r] = np.random.default_rng((self.config.seed, int(u))).random(n, dtype=np.float32)
        return out

    def _score_cold(self, context: np.ndarray) -> np.ndarray:
        return np.random.default_rng((self.config.seed, 2**32 - 1)).random(
            len(self.items_), dtype=np.float32
        )


def _fold_in_seen(model: Recommender, events: pd.DataFrame) -> None:
    """Mark the events' (known user, known item) pairs as seen so they are not recommended again."""
    u = model.users_.indices(events["user"].astype(str).to_numpy())
    i = model.items_.indices(events["item"].astype(str).to_numpy())
    ok = (u >= 0) & (i >= 0)
    if not ok.any():
        return
    add = sp.csr_matrix(
        (np.ones(int(ok.sum()), np.float32), (u[ok], i[ok])), shape=model.train_.shape
    )
    merged = (model.train_ + add).tocsr()
    merged.data[:] = 1.0
    model.train_ = merged
