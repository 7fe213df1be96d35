"""How personal a fitted model's lists are: what `serendip fit` reports and writes into the
manifest's `lists` entry.

No single item should fill everyone's top k unless the data says so (issue 16). On a seeded
sample of the fitted users (those with training interactions) the model's top-k lists give:
the share of those users whose list holds the single most-listed item, catalog coverage@k
(distinct items listed / catalog size; a sample lists fewer distinct items than all users
would, so coverage on a sample is a lower bound) and novelty@k (mean self-information of the
listed items in bits, popularity = training users per item), with `evaluation.metrics`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from serendip.errors import ConfigError
from serendip.evaluation.metrics import catalog_coverage, exposure, novelty
from serendip.models.base import Recommender

__all__ = ["DEFAULT_MAX_USERS", "ListProfile", "profile_lists"]

#: Users whose lists are computed (a seeded sample above it): what the summary costs.
DEFAULT_MAX_USERS = 500


@dataclass(frozen=True, slots=True)
class ListProfile:
    """The lists of `n_users` users (`sampled`: a seeded sample of the fitted users)."""

    k: int
    n_users: int
    sampled: bool
    top_item: str | None
    top_item_share: float
    coverage: float
    novelty: float
    seconds: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "k": self.k,
            "users": self.n_users,
            "sampled": self.sampled,
            "top_item": self.top_item,
            f"top_item_share@{self.k}": round(self.top_item_share, 6),
            f"coverage@{self.k}": round(self.coverage, 6),
            f"novelty@{self.k}": round(self.novelty, 6),
            "seconds": round(self.seconds, 3),
        }


def profile_lists(
    model: Recommender, *, k: int = 10, max_users: int = DEFAULT_MAX_USERS, seed: int = 0
) -> ListProfile:
    """The module docstring's numbers for a fitted `model`."""
    if k < 1 or max_users < 1:
        raise ConfigError(f"k and max_users must be at least 1, got {k} and {max_users}")
    t0 = time.perf_counter()
    train = model.train_.tocsr()
    active = np.flatnonzero(np.diff(train.indptr) > 0)
    sampled = len(active) > max_users
    if sampled:
        active = np.sort(np.random.default_rng(seed).choice(active, max_users, replace=False))
    n_items = len(model.items_)
    if len(active) == 0:
        return ListProfile(k, 0, False, None, 0.0, 0.0, 0.0, time.perf_counter() - t0)
    recs = np.asarray(model.recommend(model.users_.lookup(active), k).items, np.int64)
    shown = exposure(recs, n_items)
    top = int(np.argmax(shown))
    popularity = np.bincount(train.indices, minlength=n_items)
    n_population = int((np.diff(train.indptr) > 0).sum())
    return ListProfile(
        k=k,
        n_users=len(active),
        sampled=sampled,
        top_item=str(model.items_.id(top)) if shown[top] > 0 else None,
        top_item_share=float(shown[top]) / len(active),
        coverage=catalog_coverage(recs, n_items),
        novelty=float(np.mean(novelty(recs, popularity, n_population))),
        seconds=time.perf_counter() - t0,
    )
