"""What the hybrids share: member specs, member fitting, fold-in updates, per-user score
normalisation, and saving members as whole artifacts in subdirectories of the hybrid's."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
import scipy.sparse as sp

from serendip.data.dataset import Dataset
from serendip.errors import ConfigError, SerendipError
from serendip.models.base import Evidence, ModelConfigT, Recommender

__all__ = [
    "NORMALISATIONS",
    "HybridBase",
    "MemberSpec",
    "members_of",
    "normalise",
    "parse_members",
]

#: How a member's scores are put on one scale per user: "minmax" and "zscore" keep the score
#: shape; "rank" (reciprocal rank, 1 / (c + rank), as in reciprocal rank fusion) and "borda"
#: (1 - (rank - 1) / n, linear in the rank) keep only the order, so a member with a heavy score
#: tail cannot dominate the blend.
Normalisation = Literal["minmax", "zscore", "rank", "borda"]
NORMALISATIONS: tuple[str, ...] = ("minmax", "zscore", "rank", "borda")


@dataclass(frozen=True, slots=True)
class MemberSpec:
    """One member: `key` names it inside the hybrid (weights, quotas, explanations); `model` is
    its registry name; `params` its hyperparameters. A key is a registry name, optionally with
    "@label" so one model can join twice with different parameters ("item-knn@bm25")."""

    key: str
    model: str
    params: Mapping[str, Any]


def members_of(*names: str) -> dict[str, dict[str, Any]]:
    """{name: {}} for config defaults: each member with its own default parameters."""
    return {n: {} for n in names}


def parse_members(spec: Mapping[str, Mapping[str, Any]], field: str) -> list[MemberSpec]:
    """Member specs from a config mapping {key: params}, in the mapping's order."""
    from serendip.models.registry import MODELS

    out = []
    for key, params in spec.items():
        model = key.split("@", 1)[0]
        if model not in MODELS:
            raise ConfigError(
                f"{field}: unknown model '{model}' (from key '{key}'); valid: {', '.join(MODELS)}"
            )
        if not isinstance(params, Mapping):
            raise ConfigError(f"{field}.{key}: parameters must be a mapping, got {params!r}")
        out.append(MemberSpec(key, model, dict(params)))
    return out


def normalise(
    scores: np.ndarray,
    exclude: sp.csr_matrix | None,
    method: Normalisation,
    *,
    rank_constant: float = 60.0,
) -> np.ndarray:
    """Per-row normalised scores (float64, same shape as `scores` (n, n_items)).

    Statistics (min/max, mean/std, or ranks) come from the row's finite scores outside `exclude`
    (a bool-like CSR (n, n_items) of items that will not be recommended anyway, e.g. the user's
    history, whose extreme scores would otherwise set the scale). Non-finite scores become the
    row's minimum; a constant row becomes 0 (minmax, zscore).

    rank: 1 / (rank_constant + r), r the 1-based rank among the row's valid items (ties share
    their average rank); borda: 1 - (r - 1) / n_valid. Excluded and non-finite items rank below
    every valid item.
    """
    if method not in NORMALISATIONS:
        raise ConfigError(f"unknown normalisation '{method}'; valid: {', '.join(NORMALISATIONS)}")
    s = np.asarray(scores, dtype=np.float64)
    valid = np.isfinite(s)
    if exclude is not None and exclude.nnz:
        r, c = exclude.nonzero()
        valid[r, c] = False
    if method in ("rank", "borda"):
        return _rank_normalise(s, valid, method, rank_constant)
    masked = np.where(valid, s, np.nan)
    empty = ~valid.any(axis=1)
    masked[empty] = 0.0  # rows with nothing valid: constant, normalised to 0
    if method == "minmax":
        lo = np.nanmin(masked, axis=1, keepdims=True)
        span = np.nanmax(masked, axis=1, keepdims=True) - lo
        out = np.divide(s - lo, span, out=np.zeros_like(s), where=span > 0)
    else:
        mean = np.nanmean(masked, axis=1, keepdims=True)
        std = np.nanstd(masked, axis=1, keepdims=True)
        out = np.divide(s - mean, std, out=np.zeros_like(s), where=std > 0)
    bad = ~np.isfinite(out)
    if bad.any():
        floor = np.nanmin(np.where(valid, out, np.nan), axis=1, keepdims=True)
        floor = np.nan_to_num(floor, nan=0.0)
        out = np.where(bad, np.broadcast_to(floor, out.shape), out)
    return out


def _rank_normalise(
    s: np.ndarray, valid: np.ndarray, method: Normalisation, rank_constant: float
) -> np.ndarray:
    """Rank-based scores (see `normalise`): invalid items share the ranks after the valid ones."""
    from scipy.stats import rankdata

    if rank_constant < 0:
        raise ConfigError(f"rank_constant must be non-negative, got {rank_constant}")
    ranks = rankdata(-np.where(valid, s, -np.inf), method="average", axis=1)
    if method == "rank":
        return 1.0 / (rank_constant + ranks)
    n_valid = np.maximum(valid.sum(axis=1, keepdims=True), 1)
    return np.maximum(1.0 - (ranks - 1.0) / n_valid, 0.0)


def context_matrix(context: np.ndarray, n_items: int) -> sp.csr_matrix:
    """A (1, n_items) CSR marking the context items (the cold-start analogue of history)."""
    idx = np.unique(np.asarray(context, dtype=np.int64))
    return sp.csr_matrix(
        (np.ones(len(idx), np.float32), (np.zeros(len(idx), np.int64), idx)), shape=(1, n_items)
    )


class HybridBase(Recommender[ModelConfigT]):
    """Members are fitted inside `fit` on the same dataset (so they share its index space) and
    saved as complete artifacts in `member-<j>/` subdirectories of the hybrid's artifact.

    `update` folds events into every member; it needs every member to support updates and says
    which one does not otherwise (nothing is changed then).
    """

    family = "hybrid"
    supports_update = True

    def __init__(self, config: Any = None, **params: Any) -> None:
        super().__init__(config, **params)
        # fail now, not at fit, on an unknown member or a bad member parameter
        for spec in self._specs():
            self._create(spec)

    # -------------------------------------------------------------- members
    def _specs(self) -> list[MemberSpec]:
        raise NotImplementedError

    def _create(self, spec: MemberSpec) -> Recommender:
        from serendip.models.registry import create_model

        params = dict(spec.params)
        # members inherit the hybrid's seed unless given their own
        from serendip.models.registry import get_model_class

        if "seed" not in params and "seed" in get_model_class(spec.model).Config.model_fields:
            params["seed"] = self.config.seed
        try:
            model: Recommender = create_model(spec.model, params)
        except ConfigError as exc:
            raise ConfigError(f"hybrid '{self.name}', member '{spec.key}': {exc}") from None
        return model

    def _fit(self, dataset: Dataset) -> None:
        self.members_: dict[str, Recommender] = {
            spec.key: self._create(spec).fit(dataset) for spec in self._specs()
        }

    def _member_explanation(
        self, key: str, user_idx: int, item_idx: int, weight: float, label: str
    ) -> tuple[list[Evidence], str]:
        """The member's own evidence, led by a "source" entry naming the member."""
        member = self.members_[key]
        ev, text = member._explain(user_idx, item_idx)
        source = Evidence("source", key, float(weight), label)
        return [source, *ev], (f"{text} (via {key})" if text else f"Recommended by {key}")

    # -------------------------------------------------------------- updates
    def _update(self, events: pd.DataFrame) -> None:
        stuck = [k for k, m in self.members_.items() if not m.supports_update]
        if stuck:
            raise SerendipError(
                f"model '{self.name}' cannot fold in events: member(s) {', '.join(stuck)} "
                "cannot; refit the hybrid instead"
            )
        for m in self.members_.values():
            m.update(events)
        u = self.users_.indices(events["user"].astype(str).to_numpy())
        i = self.items_.indices(events["item"].astype(str).to_numpy())
        ok = (u >= 0) & (i >= 0)
        if ok.any():
            add = sp.csr_matrix(
                (np.ones(int(ok.sum()), np.float32), (u[ok], i[ok])), shape=self.train_.shape
            )
            merged = (self.train_ + add).tocsr()
            merged.data[:] = 1.0
            self.train_ = merged
            self.popularity_ = np.asarray(merged.sum(axis=0)).ravel().astype(np.float32)

    # -------------------------------------------------------------- persistence
    def _state(self) -> tuple[dict[str, Any], dict[str, Any]]:
        members = [
            {"key": k, "model": m.name, "dir": f"member-{j}"}
            for j, (k, m) in enumerate(self.members_.items())
        ]
        return {}, {"members": members}

    def _set_state(self, arrays: Mapping[str, Any], meta: Mapping[str, Any]) -> None:
        self._member_dirs = [(str(e["key"]), str(e["dir"])) for e in meta["members"]]

    def _save_extra(self, directory: Path) -> None:
        for j, m in enumerate(self.members_.values()):
            m.save(directory / f"member-{j}")

    def _load_extra(self, directory: Path) -> None:
        self.members_ = {key: Recommender.load(directory / d) for key, d in self._member_dirs}
