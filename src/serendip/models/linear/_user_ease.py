"""User-EASE: EASE's closed form on the transposed matrix, a user x user linear autoencoder.

EASE reconstructs each item column from the other items; User-EASE reconstructs each user's row
from the other users' rows. It is the linear, dense counterpart of user-kNN, and it ranks
differently enough from item-side EASE that the two blend well (docs/research-log.md, member
probes).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np
import scipy.sparse as sp
from pydantic import Field

from serendip.data.dataset import Dataset
from serendip.errors import CapacityError
from serendip.models.base import Evidence, FloatRange, ModelConfig, Recommender, SearchSpace
from serendip.models.linear._ease import _FLOAT64_UP_TO, EASE, _inverse_gram
from serendip.models.neighborhood import (
    ProfileConfig,
    check_memory,
    neighbour_explanation,
    profile_config,
)

__all__ = ["UserEASE", "UserEASEConfig"]


class UserEASEConfig(ProfileConfig):
    """Defaults tuned on MovieLens 100K (binary, random 80/20 seed 42, validation NDCG@10); on
    listen counts use confidence="log1p" (Last.fm's tuned values: benchmarks/model_params.json)."""

    l2: float = Field(default=320.0, gt=0.0, description="ridge lambda added to the Gram diagonal")
    dropout: float = Field(
        default=0.62,
        ge=0.0,
        lt=1.0,
        description="EDLAE emphasised dropout p: adds p / (1 - p) * G_vv to user v's ridge",
    )
    max_users: int = Field(default=30_000, ge=1, description="refuse more users than this")
    max_memory_mb: float = Field(default=16_384.0, gt=0.0)


class UserEASE(Recommender[UserEASEConfig]):
    """W = argmin ||X^T - X^T W||^2 + ||D^(1/2) W||^2 subject to diag(W) = 0, over users:
    P = (X X^T + D)^-1 (users x users), W = -P / diag(P) column-wise, zero diagonal;
    score(u, .) = sum over users v of W[v, u] * x_v. D as EASE's (ridge, EDLAE dropout).

    A user unknown to the fit with a fold-in history x is the ridge regression of x on the
    training users' rows, w = P X x, scored w @ X (no refit; P comes back from W and diag(P)).
    Explanations cite the users whose rows carry the item, by weight; private users are counted,
    never named. Dense n_users x n_users: more users than `max_users` are refused with a
    `CapacityError` before anything is allocated (the model is for small communities or as a
    member of a hybrid, not for a 100K-user platform).
    """

    name = "user-ease"
    family = "linear"
    description = "User-side EASE: closed-form user x user autoencoder (dense, capped users)."
    Config: ClassVar[type[ModelConfig]] = UserEASEConfig
    search_space: ClassVar[SearchSpace] = {
        "l2": FloatRange(1.0, 5000.0, log=True),
        "dropout": FloatRange(0.0, 0.9),
    }
    quick_params: ClassVar[Mapping[str, Any]] = {"l2": 50.0, "dropout": 0.0}

    #: Wt_[u, v] = W[v, u]: how much user v's row counts in user u's scores (row u, C order)
    Wt_: np.ndarray
    pdiag_: np.ndarray
    profile_: sp.csr_matrix
    private_: np.ndarray

    @classmethod
    def fit_bytes(cls, n_users: int, n_items: int) -> int:
        """Peak bytes of a fit: EASE's on the transposed matrix (items play the users)."""
        return EASE.fit_bytes(n_users, n_items)

    def _fit(self, dataset: Dataset) -> None:
        cfg = self.config
        m = dataset.n_users
        need = self.fit_bytes(m, dataset.n_items)
        if m > cfg.max_users:
            mib = need / 2**20
            size = f"{mib / 1024:,.1f} GiB" if mib >= 1024 else f"{mib:.3g} MiB"
            raise CapacityError(
                f"user-ease needs a dense {m:,} x {m:,} user matrix (about {size} to fit); "
                f"the data has more users than max_users={cfg.max_users:,}. Use ease or "
                f"user-knn, sample the users, or raise max_users if the memory is there"
            )
        check_memory(self.name, need, cfg.max_memory_mb, f"a dense {m:,} x {m:,} user matrix")
        self.profile_ = sp.csr_matrix(
            dataset.matrix(profile_config(cfg.confidence)), dtype=np.float32
        )
        dtype = np.float64 if m <= _FLOAT64_UP_TO else np.float32
        p = _inverse_gram(self.profile_.T.tocsr().astype(dtype), cfg.l2, cfg.dropout)
        self.pdiag_ = np.diag(p).astype(np.float64)
        # P is symmetric: row u of W^T is -P[u, :] / P[u, u]
        p /= -self.pdiag_[:, None]
        p[np.diag_indices(m)] = 0.0
        self.Wt_ = np.ascontiguousarray(p, dtype=np.float32)
        self.private_ = np.asarray(dataset.user_meta.private, dtype=bool)

    def _score_warm(self, user_idx: np.ndarray) -> np.ndarray:
        rows = self.Wt_[np.asarray(user_idx)]
        return np.asarray((self.profile_.T @ rows.T).T, dtype=np.float32)

    def _score_cold(self, context: np.ndarray) -> np.ndarray:
        ctx = np.unique(np.asarray(context, dtype=np.int64))
        if len(ctx) == 0:
            return self.popularity_.astype(np.float32)
        y = np.asarray(self.profile_[:, ctx].sum(axis=1), dtype=np.float64).ravel()  # X x
        # P y = diag(P) * (y - W^T y): P's off-diagonal is -W^T scaled by its row's diagonal
        # float32 product: a float64 copy of the dense users x users matrix per call is not needed
        w = self.pdiag_ * (y - self.Wt_ @ y.astype(np.float32))
        return np.asarray(self.profile_.T @ w, dtype=np.float32)

    def _explain(self, user_idx: int, item_idx: int) -> tuple[list[Evidence], str]:
        """The users who have the item, by W[v, u] * x_vi; private ones only counted."""
        col = sp.csc_matrix(self.profile_[:, item_idx])
        others = col.indices != user_idx
        neigh, values = col.indices[others], col.data[others].astype(np.float64)
        contrib = self.Wt_[user_idx, neigh].astype(np.float64) * values
        return neighbour_explanation(self, item_idx, neigh, contrib, self.private_)

    def _state(self) -> tuple[dict[str, Any], dict[str, Any]]:
        arrays: dict[str, Any] = {"Wt": self.Wt_, "pdiag": self.pdiag_, "private": self.private_}
        if self.config.confidence != "binary":
            arrays["profile"] = self.profile_
        return arrays, {}

    def _set_state(self, arrays: Mapping[str, Any], meta: Mapping[str, Any]) -> None:
        self.Wt_ = np.ascontiguousarray(arrays["Wt"], dtype=np.float32)
        self.pdiag_ = np.asarray(arrays["pdiag"], dtype=np.float64)
        self.private_ = np.asarray(arrays["private"], dtype=bool)
        src = arrays["profile"] if "profile" in arrays else arrays["_train"]
        self.profile_ = sp.csr_matrix(src, dtype=np.float32)
