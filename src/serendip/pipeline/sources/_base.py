"""What every candidate source shares: a validated config, the fitted item table (creation times,
authors, categories), and the final filter (history, exclusions, items not yet created at
`ctx.now`) with a deterministic top-n."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, ClassVar, Self, TypeVar

import numpy as np
from pydantic import BaseModel, ConfigDict

from serendip.data.dataset import Dataset
from serendip.data.vocabulary import Vocabulary
from serendip.models.base import Component
from serendip.pipeline._arrays import among
from serendip.pipeline.candidates import CandidateSource, Proposal, UserContext

__all__ = ["SourceBase", "SourceConfig", "top_n"]

_DAY = 86_400.0


class SourceConfig(BaseModel):
    """Base of every source's parameters: frozen, validated, no unknown keys."""

    model_config = ConfigDict(frozen=True, extra="forbid")


def top_n(items: np.ndarray, scores: np.ndarray, n: int) -> Proposal:
    """The n best (item, score) pairs, best first; ties by lower item index. Inputs unique."""
    items = np.asarray(items, dtype=np.int64)
    scores = np.asarray(scores, dtype=np.float32)
    if len(items) == 0 or n <= 0:
        return Proposal.empty()
    if len(items) > n:
        part = np.argpartition(-scores, n - 1)[:n]
        items, scores = items[part], scores[part]
    order = np.lexsort((items, -scores))
    return Proposal(items[order], scores[order])


SourceConfigT = TypeVar("SourceConfigT", bound=SourceConfig)


class SourceBase(Component[SourceConfigT], CandidateSource):
    """A `CandidateSource` with a pydantic `Config` (the models' `Component`: validated frozen
    parameters, `get_params`, the not-fitted error; `self.config` typed by the class's
    parameter, e.g. `SourceBase[TrendingConfig]`), the item table of the fitted dataset, and
    the shared rules every proposal obeys (see `_finish`).

    `fit(dataset)` returns the source, as a model's does. Learned state ends in `_` and is set
    only by `fit` or `_set_state`. `_state` always holds `created_at` (and subclasses' arrays);
    its meta holds the parameters, so a source rebuilt with `make_source(name,
    **meta["params"])` then `_set_state(arrays, meta)` proposes exactly what the fitted one did.
    """

    Config: ClassVar[type[SourceConfig]] = SourceConfig
    role: ClassVar[str] = "source"

    def get_params(self) -> dict[str, Any]:
        """The parameters as JSON values (they go into the artifact's meta)."""
        return self.config.model_dump(mode="json")

    # ------------------------------------------------------------------ fitting
    def fit(self, dataset: Dataset) -> Self:
        """Learn from the training window; returns the source."""
        self._bind(dataset)
        self._fit(dataset)
        self._fitted = True
        return self

    def _bind(self, dataset: Dataset) -> None:
        """The item table every source keeps: the dataset's vocabularies and creation times."""
        self.items_ = dataset.items
        self.users_ = dataset.users
        self.created_at_ = np.asarray(dataset.item_published_at(), dtype=np.float64)

    def _fit(self, dataset: Dataset) -> None:
        raise NotImplementedError

    @property
    def n_items(self) -> int:
        return len(self.created_at_)

    # ------------------------------------------------------------------ shared rules
    def _blocked(self, ctx: UserContext) -> np.ndarray:
        """Item indices this user must never get: history and explicit exclusions."""
        parts = [np.asarray(ctx.history, np.int64), np.asarray(ctx.exclude, np.int64)]
        return np.concatenate(parts)

    def _finish(self, ctx: UserContext, items: np.ndarray, scores: np.ndarray, n: int) -> Proposal:
        """Drop blocked items, items created after `ctx.now` and non-positive or non-finite
        scores, then keep the n best. `items` must be unique."""
        items = np.asarray(items, dtype=np.int64)
        scores = np.asarray(scores, dtype=np.float64)
        keep = np.isfinite(scores) & (items >= 0) & (items < self.n_items)
        items, scores = items[keep], scores[keep]
        blocked = self._blocked(ctx)
        if len(blocked) and len(items):
            keep = ~among(items, blocked)
            items, scores = items[keep], scores[keep]
        if np.isfinite(ctx.now) and len(items):
            created = self.created_at_[items]
            keep = ~(created > ctx.now)  # unknown creation time (NaN) passes
            items, scores = items[keep], scores[keep]
        return top_n(items, scores, n)

    def _dense_finish(self, ctx: UserContext, scores: np.ndarray, n: int) -> Proposal:
        """`_finish` for a dense score vector over every item (-inf = not proposed)."""
        scores = np.array(scores, dtype=np.float64, copy=True)
        blocked = self._blocked(ctx)
        blocked = blocked[(blocked >= 0) & (blocked < len(scores))]
        scores[blocked] = -np.inf
        if np.isfinite(ctx.now):
            scores[self.created_at_ > ctx.now] = -np.inf
        m = int(np.isfinite(scores).sum())
        k = min(n, m)
        if k <= 0:
            return Proposal.empty()
        part = np.argpartition(-scores, k - 1)[:k] if k < len(scores) else np.arange(len(scores))
        part = part[np.isfinite(scores[part])]
        return top_n(part, scores[part], k)

    # ------------------------------------------------------------------ state
    def _base_state(self) -> tuple[dict[str, Any], dict[str, Any]]:
        return (
            {
                "created_at": self.created_at_,
                "item_ids": self.items_.ids.astype(str),
                "user_ids": self.users_.ids.astype(str),
            },
            {"source": self.name, "params": self.get_params()},
        )

    def _set_base_state(self, arrays: Mapping[str, Any], meta: Mapping[str, Any]) -> None:
        self.created_at_ = np.asarray(arrays["created_at"], dtype=np.float64)
        self.items_ = Vocabulary.shared(np.asarray(arrays["item_ids"]).astype(str))
        self.users_ = Vocabulary.shared(np.asarray(arrays["user_ids"]).astype(str))
        self._fitted = True


def half_life_decay(age_seconds: np.ndarray, half_life_days: float | None) -> np.ndarray:
    """0.5 ** (age_days / half_life_days); age clipped at 0; NaN age -> 1 (no decay)."""
    age = np.asarray(age_seconds, dtype=np.float64)
    # NaN -> 0 (np.nan_to_num, which would also turn an infinite age into a finite one that
    # decays to the same 0, costs ten times more on a request's arrays)
    age = np.where(np.isnan(age), 0.0, age).clip(min=0.0)
    if half_life_days is None:
        return np.ones_like(age)
    return np.exp2(-age / _DAY / half_life_days)


_T = TypeVar("_T")


def per_context(
    owner: object, ctx: UserContext, key: tuple[object, ...], compute: Callable[[], _T]
) -> _T:
    """`compute()`, kept on `owner` for the last context and `key` (the fitted state it read,
    e.g. privacy flags), both by identity: explaining a list asks a source for each item's
    evidence with one context, and the per-user part of that evidence is the same for all."""
    memo = getattr(owner, "_per_context", None)
    if (
        memo is not None
        and memo[0] is ctx
        and len(memo[1]) == len(key)
        and all(a is b for a, b in zip(memo[1], key, strict=True))
    ):
        out: _T = memo[2]
        return out
    out = compute()
    owner._per_context = (ctx, key, out)  # type: ignore[attr-defined]  # one atomic store
    return out
