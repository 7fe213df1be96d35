"""What every latent-factor model of the family shares.

A factor model scores user u and item i as `user_factors_[u] @ item_factors_[i] + item_bias_[i]`
(float32, shapes (n_users, k), (n_items, k), (n_items,)). The shared base does the scoring, the
cold-start and update fold-ins (a subclass says how one user's factors follow from their history
with the item side fixed), similarity in factor space, explanations, and save/load.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar, Literal, TypeVar

import numpy as np
import pandas as pd
import scipy.sparse as sp
from pydantic import Field

from serendip.data.dataset import Dataset, MatrixConfig
from serendip.errors import CapacityError, DataError
from serendip.models.base import Evidence, ModelConfig, Recommender, history_of

__all__ = ["FactorConfig", "FactorModel", "Weighting", "bpr_fold_in", "weighting_config"]

#: How interactions weigh in a model's matrix: "binary" (every pair 1), "events" (summed event
#: weights, e.g. a share counts more than a view), "log1p" (event weight x log(1 + value), for
#: listen or play counts), "linear" (event weight x value).
Weighting = Literal["binary", "events", "log1p", "linear"]


def weighting_config(weighting: str) -> MatrixConfig:
    """The `MatrixConfig` of a weighting name."""
    if weighting == "binary":
        return MatrixConfig(binary=True)
    if weighting == "events":
        return MatrixConfig()
    return MatrixConfig(value_transform=weighting)  # type: ignore[arg-type]


class FactorConfig(ModelConfig):
    """Shared by the family: the latent dimension and the memory a fit may use."""

    factors: int = Field(default=64, ge=1, le=4096)
    #: A fit whose estimated working set exceeds this refuses to start (`CapacityError`).
    memory_limit_gb: float = Field(default=8.0, gt=0)


FactorConfigT = TypeVar("FactorConfigT", bound=FactorConfig)


class FactorModel(Recommender[FactorConfigT]):
    """Base of the latent-factor models: scores are inner products of user and item factors.

    Subclasses implement `_fit_factors(dataset, weights)` (set `user_factors_`, `item_factors_`
    and optionally `item_bias_`) and `_fold_in(rows, user_idx)` (factors of users from their
    weighted history rows with the item side fixed), and may extend `_extra_state`.
    """

    family = "factorization"
    supports_update = True
    Config: ClassVar[type[ModelConfig]] = FactorConfig
    #: Users without any training interaction score by popularity (their factors say nothing).
    popular_for_empty_users: ClassVar[bool] = True
    #: Bytes per (user + item) x factor of the working set, for the capacity check.
    bytes_per_factor: ClassVar[float] = 16.0

    user_factors_: np.ndarray
    item_factors_: np.ndarray
    item_bias_: np.ndarray
    weights_: sp.csr_matrix

    # ------------------------------------------------------------------ fitting
    def weights_config(self) -> MatrixConfig:
        """How interactions weigh in the matrix this model learns from (binary by default)."""
        weighting = getattr(self.config, "weighting", "binary")
        return weighting_config(weighting)

    def _fit(self, dataset: Dataset) -> None:
        self._check_capacity(dataset.n_users, dataset.n_items)
        weights = dataset.matrix(self.weights_config()).astype(np.float32)
        self.weights_ = weights
        self.item_bias_ = np.zeros(dataset.n_items, np.float32)
        self._fit_factors(dataset, weights)
        self.user_factors_ = np.ascontiguousarray(self.user_factors_, dtype=np.float32)
        self.item_factors_ = np.ascontiguousarray(self.item_factors_, dtype=np.float32)
        self.item_bias_ = np.ascontiguousarray(self.item_bias_, dtype=np.float32)

    def _fit_factors(self, dataset: Dataset, weights: sp.csr_matrix) -> None:
        raise NotImplementedError

    def _fold_in(self, rows: sp.csr_matrix, user_idx: np.ndarray | None) -> np.ndarray:
        """float32 (n, k) factors for n users from their weighted history `rows` (n, n_items),
        with the item side fixed. `user_idx`: their indices when known users, else None."""
        raise NotImplementedError

    def estimated_bytes(self, n_users: int, n_items: int) -> float:
        """Working-set estimate of a fit, in bytes (factors, their optimiser/solver state)."""
        k = int(getattr(self.config, "factors", 64))
        return float(n_users + n_items) * k * self.bytes_per_factor

    def _check_capacity(self, n_users: int, n_items: int) -> None:
        need = self.estimated_bytes(n_users, n_items)
        limit = float(getattr(self.config, "memory_limit_gb", 8.0)) * 1e9
        if need > limit:
            raise CapacityError(
                f"model '{self.name}' would need about {need / 1e9:.1f} GB for {n_users} users x "
                f"{n_items} items at {getattr(self.config, 'factors', '?')} factors, above its "
                f"memory_limit_gb={limit / 1e9:g}; lower `factors` or raise `memory_limit_gb`"
            )

    # ------------------------------------------------------------------ scoring
    def _empty_users(self, user_idx: np.ndarray) -> np.ndarray:
        indptr = self.train_.indptr
        return np.asarray(indptr[user_idx + 1] == indptr[user_idx])

    def _score_warm(self, user_idx: np.ndarray) -> np.ndarray:
        scores = self.user_factors_[user_idx] @ self.item_factors_.T
        scores += self.item_bias_[None, :]
        if self.popular_for_empty_users:
            empty = self._empty_users(user_idx)
            if empty.any():
                scores[empty] = self._score_cold(np.zeros(0, np.int64))
        return scores.astype(np.float32, copy=False)

    def _score_cold(self, context: np.ndarray) -> np.ndarray:
        """An unknown user: fold their context history in (weight 1 per item); none: popular."""
        context = np.unique(np.asarray(context, dtype=np.int64))
        if len(context) == 0:
            return self.popularity_.astype(np.float32)
        row = sp.csr_matrix(
            (np.ones(len(context), np.float32), (np.zeros(len(context), np.int64), context)),
            shape=(1, len(self.items_)),
        )
        user = self._fold_in(row, None)[0]
        return (self.item_factors_ @ user + self.item_bias_).astype(np.float32)

    def _similar(self, item_idx: int) -> np.ndarray:
        """Cosine similarity of every item to `item_idx` in item-factor space."""
        v = self.item_factors_
        norms = np.linalg.norm(v, axis=1)
        norms[norms == 0] = 1.0
        return (v @ v[item_idx]) / (norms * norms[item_idx])

    # ------------------------------------------------------------------ explanations
    def _history_contributions(self, user_idx: int, item_idx: int, hist: np.ndarray) -> np.ndarray:
        """How much each history item supports `item_idx` for this user. Default: cosine
        similarity in item-factor space; models with an exact decomposition override."""
        return np.asarray(self._similar(item_idx), dtype=np.float64)[hist]

    def _explain(self, user_idx: int, item_idx: int) -> tuple[list[Evidence], str]:
        hist = history_of(self.train_, user_idx)
        evidence: list[Evidence] = []
        if len(hist):
            contrib = self._history_contributions(user_idx, item_idx, hist)
            for j in np.argsort(-contrib, kind="stable")[:3]:
                if contrib[j] > 0:
                    evidence.append(
                        Evidence("item", self.items_.id(int(hist[j])), float(contrib[j]))
                    )
        per_factor = self.user_factors_[user_idx] * self.item_factors_[item_idx]
        top = np.argsort(-per_factor, kind="stable")[:3]
        factors = [
            Evidence("factor", f"factor-{int(f)}", float(per_factor[f]), f"latent factor {int(f)}")
            for f in top
            if per_factor[f] > 0
        ]
        if self.item_bias_[item_idx] != 0:
            factors.append(
                Evidence("feature", "item-bias", float(self.item_bias_[item_idx]), "item bias")
            )
        evidence += factors
        items = [e.id for e in evidence if e.kind == "item"]
        if items:
            text = f"Because you interacted with {', '.join(items[:2])}"
        elif factors:
            text = f"Matches your taste profile ({factors[0].label})"
        else:
            text = "Popular with everyone"
        return evidence, text

    # ------------------------------------------------------------------ updates
    def _update(self, events: pd.DataFrame) -> None:
        """Fold new events in: their users' factors are recomputed from their whole (old + new)
        history with the item side fixed; unknown users join the user vocabulary; events on
        items the model never saw are dropped (items need a refit)."""
        missing = [c for c in ("user", "item") if c not in events.columns]
        if missing:
            raise DataError(
                f"update events lack column(s) {', '.join(missing)}; "
                f"got {', '.join(map(str, events.columns))}"
            )
        frame = events.copy()
        frame["user"] = frame["user"].astype(str)
        frame["item"] = frame["item"].astype(str)
        frame = frame[self.items_.indices(frame["item"].to_numpy()) >= 0]
        if frame.empty:
            return
        cols = [c for c in ("user", "item", "timestamp", "event", "value") if c in frame]
        small = Dataset.from_frames(frame[cols].reset_index(drop=True))
        new_users = small.users.ids[self.users_.indices(small.users.ids) < 0]
        if len(new_users):
            self.users_ = self.users_.extend(new_users)
            n_new = len(self.users_) - self.train_.shape[0]
            self.train_ = sp.vstack([self.train_, _empty_rows(n_new, len(self.items_))]).tocsr()
            self.weights_ = sp.vstack([self.weights_, _empty_rows(n_new, len(self.items_))]).tocsr()
            self.user_factors_ = np.vstack(
                [self.user_factors_, np.zeros((n_new, self.user_factors_.shape[1]), np.float32)]
            )
            self._grow_users(n_new)
        user_map = self.users_.indices(small.users.ids)
        item_map = self.items_.indices(small.items.ids)
        shape = self.weights_.shape
        pairs = small.seen().tocoo()  # every new pair is seen, whatever its weight
        seen = sp.csr_matrix(
            (np.ones(pairs.nnz, np.float32), (user_map[pairs.row], item_map[pairs.col])),
            shape=shape,
        )
        self.train_ = (self.train_ + seen).tocsr()
        self.train_.data[:] = 1.0
        self.popularity_ = np.asarray(self.train_.sum(axis=0)).ravel().astype(np.float32)
        add = small.matrix(self.weights_config()).tocoo()
        delta = sp.csr_matrix(
            (add.data, (user_map[add.row], item_map[add.col])), shape=shape, dtype=np.float32
        )
        weights = (self.weights_ + delta).tocsr()
        if self.weights_config().binary:
            weights.data[:] = 1.0
        weights.sort_indices()
        self.weights_ = weights.astype(np.float32)
        touched = np.unique(user_map[pairs.row])
        self.user_factors_[touched] = self._fold_in(self.weights_[touched], touched)

    def _grow_users(self, n_new: int) -> None:
        """Hook: per-user state beyond the factors grows by `n_new` rows."""

    # ------------------------------------------------------------------ persistence
    def _extra_state(self) -> dict[str, Any]:
        return {}

    def _set_extra_state(self, arrays: Mapping[str, Any], meta: Mapping[str, Any]) -> None:
        return None

    def _state(self) -> tuple[dict[str, Any], dict[str, Any]]:
        arrays: dict[str, Any] = {
            "user_factors": self.user_factors_,
            "item_factors": self.item_factors_,
            "item_bias": self.item_bias_,
            "weights": self.weights_,
            **self._extra_state(),
        }
        return arrays, {}

    def _set_state(self, arrays: Mapping[str, Any], meta: Mapping[str, Any]) -> None:
        self.user_factors_ = np.asarray(arrays["user_factors"], dtype=np.float32)
        self.item_factors_ = np.asarray(arrays["item_factors"], dtype=np.float32)
        self.item_bias_ = np.asarray(arrays["item_bias"], dtype=np.float32)
        self.weights_ = sp.csr_matrix(arrays["weights"], dtype=np.float32)
        self._set_extra_state(arrays, meta)


def _empty_rows(n: int, n_cols: int) -> sp.csr_matrix:
    """An all-zero float32 CSR of shape (n, n_cols)."""
    return sp.csr_matrix(
        (np.zeros(0, np.float32), np.zeros(0, np.int32), np.zeros(n + 1, np.int32)),
        shape=(n, n_cols),
    )


# ---------------------------------------------------------------------- BPR fold-in
def bpr_fold_in(
    item_vecs: np.ndarray,
    item_bias: np.ndarray,
    positives: np.ndarray,
    *,
    reg: float,
    offset: np.ndarray | None = None,
    seed: int = 0,
    max_negatives: int = 2048,
    iterations: int = 25,
) -> np.ndarray:
    """The user vector `w` (k,) that a BPR model would learn from `positives` with the item side
    fixed: the minimiser of

        sum_{i in P} mean_{j not in P} softplus(-(s_i - s_j)) + reg * |P| * |offset + w|^2,
        s = item_vecs @ (offset + w) + item_bias,

    i.e. L2-regularised logistic regression on item differences, solved by damped Newton steps
    (convex, k x k systems). `offset`: a fixed part of the user vector (e.g. their feature
    embeddings); the returned `w` excludes it. Negatives: all other items, or `max_negatives` of
    them drawn with `seed` on large catalogs.
    """
    n_items, k = item_vecs.shape
    v = item_vecs.astype(np.float64)
    b = item_bias.astype(np.float64)
    o = np.zeros(k) if offset is None else offset.astype(np.float64)
    pos = np.unique(positives)
    w = np.zeros(k)
    if len(pos) == 0:
        return w.astype(np.float32)
    mask = np.ones(n_items, bool)
    mask[pos] = False
    neg = np.flatnonzero(mask)
    if len(neg) == 0:
        return w.astype(np.float32)
    if len(neg) > max_negatives:
        neg = np.sort(np.random.default_rng(seed).choice(neg, max_negatives, replace=False))
    vp, vn = v[pos], v[neg]
    lam = 2.0 * reg * len(pos)
    m = float(len(neg))

    def loss(w_: np.ndarray) -> float:
        u = o + w_
        x = (vp @ u + b[pos])[:, None] - (vn @ u + b[neg])[None, :]
        return float(np.logaddexp(0.0, -x).sum() / m + 0.5 * lam * u @ u)

    current = loss(w)
    for _ in range(iterations):
        u = o + w
        x = (vp @ u + b[pos])[:, None] - (vn @ u + b[neg])[None, :]
        sig = 1.0 / (1.0 + np.exp(x))  # sigmoid(-x)
        g = -sig / m
        h = sig * (1.0 - sig) / m
        grad = vp.T @ g.sum(axis=1) - vn.T @ g.sum(axis=0) + lam * u
        cross = vp.T @ h @ vn
        hess = (
            (vp * h.sum(axis=1)[:, None]).T @ vp
            + (vn * h.sum(axis=0)[:, None]).T @ vn
            - cross
            - cross.T
            + lam * np.eye(k)
        )
        step = np.linalg.solve(hess, grad)
        t = 1.0
        while t > 1e-4:  # backtracking: Newton from far away can overshoot the logistic loss
            trial = loss(w - t * step)
            if trial <= current:
                break
            t *= 0.5
        else:
            break
        w = w - t * step
        improvement = current - trial
        current = trial
        if improvement < 1e-9 * max(1.0, abs(current)):
            break
    return w.astype(np.float32)
