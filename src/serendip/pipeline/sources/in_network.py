"""In-network source: what the people you follow authored, liked or shared, recently."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np
import scipy.sparse as sp
from pydantic import Field

from serendip.data.dataset import Dataset
from serendip.models.base import Evidence
from serendip.pipeline.candidates import Proposal, UserContext
from serendip.pipeline.sources._base import (
    SourceBase,
    SourceConfig,
    half_life_decay,
    per_context,
)
from serendip.pipeline.sources._social import (
    SOCIAL_EVENT_WEIGHTS,
    ActionMatrix,
    SocialStats,
    action_matrix,
    row_slices,
    social_stats,
)

__all__ = ["InNetworkConfig", "InNetworkSource"]


class InNetworkConfig(SourceConfig):
    """event_weights: how much each followee action counts (views little). author_weight: an item
    a followee authored counts like an action of this weight, at its creation time.
    half_life_days: recency decay of each action relative to `ctx.now` (None = off).
    tie_prior: smoothing mass of the tie strength (see `SocialStats`).

    Defaults: the 3-day half-life was chosen on a validation window of the synthetic `small`
    platform (docs/research-log.md, source defaults)."""

    event_weights: dict[str, float] = Field(default_factory=lambda: dict(SOCIAL_EVENT_WEIGHTS))
    author_weight: float = Field(default=2.0, ge=0)
    half_life_days: float | None = Field(default=3.0, gt=0)
    tie_prior: float = Field(default=2.0, gt=0)


class InNetworkSource(SourceBase[InNetworkConfig]):
    """score(u, i) = sum over u's public followees v of tie(u, v) * sum of v's actions on i
    (event weight, and `author_weight` if v authored i) * 0.5 ** (age / half-life).

    Privacy: a private followee's activity (and authorship) is never used, neither for the
    candidates nor for the evidence: proposing an item because a private user liked it would
    reveal that like to whoever sees the list. Actions after `ctx.now` are ignored.
    Evidence: the public followees who acted (kind "followee", weight = their contribution) and
    the item's author when the user follows them (kind "author").
    """

    name = "in-network"
    kind = "followee"
    Config: ClassVar[type[SourceConfig]] = InNetworkConfig

    def _fit(self, dataset: Dataset) -> None:
        cfg = self.config
        acts = action_matrix(dataset, cfg.event_weights)
        self.social_ = social_stats(dataset, acts, cfg.tie_prior)
        # authorship as actions at creation time, so fresh posts by followees enter too
        author = self.social_.author
        ok = np.flatnonzero(author >= 0)
        if cfg.author_weight > 0 and len(ok):
            auth = sp.csr_matrix(
                (np.full(len(ok), cfg.author_weight, np.float32), (author[ok], ok)),
                shape=acts.weights.shape,
            )
            created = sp.csr_matrix(
                (np.nan_to_num(self.created_at_[ok], nan=-np.inf), (author[ok], ok)),
                shape=acts.weights.shape,
            )
            combined = (acts.weights + auth).tocsr()
            combined.sort_indices()
            # latest time of each pair: max(action time, creation time where authored)
            t_act = sp.csr_matrix(
                (
                    np.nan_to_num(acts.time, nan=-np.inf) + 0.0,
                    acts.weights.indices,
                    acts.weights.indptr,
                ),
                shape=acts.weights.shape,
            )
            time = _aligned_max(combined, t_act, created)
            self.actions_ = ActionMatrix(sp.csr_matrix(combined, dtype=np.float32), time, time)
        else:
            self.actions_ = acts

    # ------------------------------------------------------------------ proposing
    def _contributions(self, ctx: UserContext) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(followee, item, contribution) of every usable action of the user's followees."""
        f, tie = self.social_.followee_ties(ctx)
        owner, items, pos = row_slices(self.actions_.weights, f)
        if len(items) == 0:
            z = np.zeros(0, np.int64)
            return z, z, np.zeros(0)
        w = self.actions_.weights.data[pos].astype(np.float64) * tie[owner]
        t = self.actions_.time[pos]
        if np.isfinite(ctx.now):
            w = np.where(t > ctx.now, 0.0, w)
            w = w * half_life_decay(ctx.now - t, self.config.half_life_days)
        return f[owner], items, w

    def propose(self, ctx: UserContext, n: int) -> Proposal:
        self._check_fitted()
        _, items, w = self._contributions(ctx)
        if len(items) == 0:
            return Proposal.empty()
        uniq, inv = np.unique(items, return_inverse=True)
        scores = np.bincount(inv, weights=w)
        return self._finish(ctx, uniq, scores, n)

    def evidence(self, ctx: UserContext, item: int) -> list[Evidence]:
        self._check_fitted()
        key = (self.social_, self.actions_)
        who, items, w = per_context(self, ctx, key, lambda: self._contributions(ctx))
        sel = (items == item) & (w > 0)
        ev: list[Evidence] = []
        author = int(self.social_.author[item]) if 0 <= item < len(self.social_.author) else -1
        order = np.lexsort((who[sel], -w[sel]))
        for v, wt in zip(who[sel][order], w[sel][order], strict=True):
            ev.append(Evidence("followee", self.users_.id(int(v)), float(wt), "followee"))
        followed = set(np.asarray(ctx.followees, np.int64).tolist())
        if author >= 0 and author in followed and not self.social_.private[author]:
            ev.append(
                Evidence(
                    "author",
                    self.users_.id(author),
                    float(self.config.author_weight),
                    "you follow the author",
                )
            )
        return ev

    # ------------------------------------------------------------------ state
    def _state(self) -> tuple[dict[str, Any], dict[str, Any]]:
        arrays, meta = self._base_state()
        arrays.update(self.social_.to_arrays())
        arrays.update(self.actions_.to_arrays("actions"))
        return arrays, meta

    def _set_state(self, arrays: Mapping[str, Any], meta: Mapping[str, Any]) -> None:
        self._set_base_state(arrays, meta)
        self.social_ = SocialStats.from_arrays(arrays)
        self.actions_ = ActionMatrix.from_arrays(arrays, "actions")


def _aligned_max(pattern: sp.csr_matrix, a: sp.csr_matrix, b: sp.csr_matrix) -> np.ndarray:
    """For each stored entry of `pattern` (sorted CSR), the max of a's and b's values at that
    position (entries absent in both -> NaN); -inf values mean unknown. Aligned with
    pattern.data."""
    out = np.full(pattern.nnz, -np.inf)
    rows = np.repeat(np.arange(pattern.shape[0]), np.diff(pattern.indptr))
    key = rows.astype(np.int64) * pattern.shape[1] + pattern.indices
    for m in (a, b):
        m = sp.csr_matrix(m)
        m.sort_indices()
        r = np.repeat(np.arange(m.shape[0]), np.diff(m.indptr))
        k = r.astype(np.int64) * m.shape[1] + m.indices
        pos = np.searchsorted(key, k)
        np.maximum.at(out, pos, m.data.astype(np.float64))
    return np.where(np.isneginf(out), np.nan, out)
