"""Fresh-followed source: the newest items by the authors a user follows."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np
import scipy.sparse as sp
from pydantic import Field

from serendip.data.dataset import Dataset
from serendip.models.base import Evidence
from serendip.pipeline.candidates import Proposal, UserContext
from serendip.pipeline.sources._base import SourceBase, SourceConfig, per_context
from serendip.pipeline.sources._social import row_slices

__all__ = ["FreshFollowedConfig", "FreshFollowedSource"]

_DAY = 86_400.0


class FreshFollowedConfig(SourceConfig):
    """window_days: only items created within this many days before `ctx.now` (and not after).
    include_private_authors: whether items of authors whose activity is private are proposed to
    their followers (off by default, and their name never appears in evidence either way)."""

    window_days: float = Field(default=7.0, gt=0)
    include_private_authors: bool = False


class FreshFollowedSource(SourceBase[FreshFollowedConfig]):
    """Items authored by followed users, created in [now - window, now], newest first
    (score = 1 / (1 + age in days)). Works for items nobody has interacted with yet: only
    authorship and creation time are used. Evidence: kind "author", the followed author."""

    name = "fresh-followed"
    kind = "author"
    Config: ClassVar[type[SourceConfig]] = FreshFollowedConfig

    def _fit(self, dataset: Dataset) -> None:
        author = dataset.item_author_index().astype(np.int64)
        ok = np.flatnonzero(author >= 0)
        self.author_ = author
        self.authored_ = sp.csr_matrix(
            (np.ones(len(ok), np.float32), (author[ok], ok)),
            shape=(dataset.n_users, dataset.n_items),
        )
        self.private_ = np.asarray(dataset.user_meta.private, dtype=bool)

    def _authors(self, ctx: UserContext) -> np.ndarray:
        f = np.unique(np.asarray(ctx.followees, np.int64))
        f = f[(f >= 0) & (f < len(self.private_))]
        if not self.config.include_private_authors:
            f = f[~self.private_[f]]
        return f

    def propose(self, ctx: UserContext, n: int) -> Proposal:
        self._check_fitted()
        if not np.isfinite(ctx.now):
            return Proposal.empty()
        _, items, _ = row_slices(self.authored_, self._authors(ctx))
        if len(items) == 0:
            return Proposal.empty()
        age = (ctx.now - self.created_at_[items]) / _DAY
        keep = (age >= 0) & (age <= self.config.window_days)
        items, age = items[keep], age[keep]
        return self._finish(ctx, items, 1.0 / (1.0 + age), n)

    def evidence(self, ctx: UserContext, item: int) -> list[Evidence]:
        self._check_fitted()
        a = int(self.author_[item])
        if a < 0 or self.private_[a]:
            return []
        # the followed authors, once per context (a list's items are explained one by one)
        authors = per_context(self, ctx, (self.private_,), lambda: self._authors(ctx))
        if not (authors == a).any():
            return []
        age = (ctx.now - self.created_at_[item]) / _DAY if np.isfinite(ctx.now) else np.nan
        return [
            Evidence("author", self.users_.id(a), float(1.0 / (1.0 + max(age, 0.0))), "new from")
        ]

    def _state(self) -> tuple[dict[str, Any], dict[str, Any]]:
        arrays, meta = self._base_state()
        arrays.update(
            {"author": self.author_, "authored": self.authored_, "private": self.private_}
        )
        return arrays, meta

    def _set_state(self, arrays: Mapping[str, Any], meta: Mapping[str, Any]) -> None:
        self._set_base_state(arrays, meta)
        self.author_ = np.asarray(arrays["author"], np.int64)
        self.authored_ = sp.csr_matrix(arrays["authored"], dtype=np.float32)
        self.private_ = np.asarray(arrays["private"], bool)
