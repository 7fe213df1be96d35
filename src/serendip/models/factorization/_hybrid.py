"""LightFM-style hybrid factorization (Kula, 2015), trained by the numpy pairwise trainer of
`_feature_mf`.

A user's vector is the weighted sum of the embeddings of their features (their identity, declared
interests, attributes such as age band or occupation, and optionally whom they follow); an item's
vector the sum over its identity, category, tags and author. Metadata features are shared, so an
item nobody has touched yet, or a user with no history but declared interests, still gets a
meaningful vector and real scores.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import numpy as np
import scipy.sparse as sp
from pydantic import Field

from serendip.data.dataset import Dataset
from serendip.models.base import (
    Choice,
    Evidence,
    FloatRange,
    IntRange,
    ModelConfig,
    SearchSpace,
    history_of,
)
from serendip.models.factorization._base import FactorConfig, FactorModel, bpr_fold_in
from serendip.models.factorization._feature_mf import train_feature_mf

__all__ = ["FeatureSpace", "HybridMF", "item_feature_space", "user_feature_space"]


@dataclass(frozen=True, slots=True, eq=False)
class FeatureSpace:
    """Features of n entities (users or items).

    matrix: float32 CSR (n, n + len(names)); column e < n is entity e's own identity feature
    (weight 1), column n + f is metadata feature `names[f]` (e.g. "tag=rock", "age=q2");
    the metadata weights of a row sum to `feature_weight`.
    """

    matrix: sp.csr_matrix
    names: np.ndarray

    @property
    def n_entities(self) -> int:
        return int(self.matrix.shape[0])


def _build_space(tokens: Sequence[Sequence[str]], min_count: int, weight: float) -> FeatureSpace:
    """Identity columns + the metadata tokens that at least `min_count` entities carry."""
    n = len(tokens)
    counts = Counter(t for row in tokens for t in set(row))
    names = sorted(t for t, c in counts.items() if c >= min_count)
    col = {t: n + f for f, t in enumerate(names)}
    rows: list[int] = []
    cols: list[int] = []
    vals: list[float] = []
    for e, row in enumerate(tokens):
        rows.append(e)
        cols.append(e)
        vals.append(1.0)
        kept = sorted({col[t] for t in row if t in col})
        for c in kept:
            rows.append(e)
            cols.append(c)
            vals.append(weight / len(kept))
    matrix = sp.csr_matrix(
        (np.asarray(vals, np.float32), (np.asarray(rows), np.asarray(cols))),
        shape=(n, n + len(names)),
    )
    return FeatureSpace(matrix, np.asarray(names, dtype=str))


def user_feature_space(
    dataset: Dataset,
    *,
    min_count: int = 2,
    weight: float = 1.0,
    numeric_bins: int = 5,
    social: bool = True,
) -> FeatureSpace:
    """Features of every user: "interest=<x>" per declared interest; "<attr>=<value>" per
    categorical attribute (e.g. "gender=F"); "<attr>=q<b>" for numeric attributes cut into
    `numeric_bins` quantile bands; "follows=<user>" per followee when `social`."""
    n = dataset.n_users
    tokens: list[list[str]] = [[] for _ in range(n)]
    meta = dataset.user_meta
    for u, interests in enumerate(meta.interests):
        tokens[u].extend(f"interest={x}" for x in interests)
    for key, values in meta.attributes.items():
        arr = np.asarray(values)
        if arr.dtype.kind in "iuf":
            num = arr.astype(np.float64)
            ok = np.isfinite(num)
            if ok.sum() == 0:
                continue
            edges = np.unique(np.quantile(num[ok], np.linspace(0, 1, numeric_bins + 1)[1:-1]))
            bands = np.searchsorted(edges, num, side="right")
            for row in np.flatnonzero(ok):
                tokens[int(row)].append(f"{key}=q{int(bands[row])}")
        else:
            for u, v in enumerate(arr):
                s = "" if v is None or (isinstance(v, float) and np.isnan(v)) else str(v).strip()
                if s:
                    tokens[u].append(f"{key}={s}")
    if social and dataset.has_social:
        g = dataset.social
        for a, b in zip(g.follower, g.followee, strict=True):
            tokens[int(a)].append(f"follows={dataset.users.id(int(b))}")
    return _build_space(tokens, min_count, weight)


def item_feature_space(
    dataset: Dataset, *, min_count: int = 2, weight: float = 1.0
) -> FeatureSpace:
    """Features of every item: "category=<c>", "tag=<t>" per tag, "author=<user>"."""
    meta = dataset.item_meta
    tokens: list[list[str]] = []
    for i in range(dataset.n_items):
        row = [f"tag={t}" for t in meta.tags[i]]
        if meta.category[i]:
            row.append(f"category={meta.category[i]}")
        if meta.author[i]:
            row.append(f"author={meta.author[i]}")
        tokens.append(row)
    return _build_space(tokens, min_count, weight)


class HybridMFConfig(FactorConfig):
    # defaults: tuned on MovieLens 100K validation (random 80/20 seed 42, binary interactions,
    # genres as item tags, age/gender/occupation/zip as user attributes)
    factors: int = Field(default=64, ge=1, le=4096)
    loss: Literal["bpr", "warp"] = "bpr"
    learning_rate: float = Field(default=5e-3, gt=0.0)
    regularization: float = Field(default=1e-2, ge=0.0)
    epochs: int = Field(default=50, ge=1, le=2000)
    negatives: int = Field(default=8, ge=1, le=256)
    batch_size: int = Field(default=1024, ge=1)
    #: Total weight of a row's metadata features (its identity feature weighs 1).
    feature_weight: float = Field(default=1.0, ge=0.0)
    #: A metadata feature is used when at least this many users (items) carry it.
    min_feature_count: int = Field(default=2, ge=1)
    user_features: bool = True
    item_features: bool = True
    #: Followees as user features (the "community" a user belongs to).
    social_features: bool = True
    numeric_bins: int = Field(default=5, ge=1, le=100)


class HybridMF(FactorModel[HybridMFConfig]):
    """Users and items as sums of feature embeddings, trained on a pairwise ranking loss
    (BPR, or sampled WARP) on CPU; LightFM's model, written here because the
    `lightfm` package does not build reliably on Python 3.11.

    After training, identity embeddings of users and items without a single training
    interaction are zeroed: they were only ever pushed around as sampled negatives, so such an
    item (or user) is represented by its metadata alone -- a brand-new item with tags a user
    likes scores high for that user. Explanations cite the item's metadata features that match
    the user, the user's own features, and history items close in factor space.
    """

    name = "lightfm"
    description = "Hybrid factorization: users/items as sums of feature embeddings (LightFM-style, cold start)."
    Config: ClassVar[type[ModelConfig]] = HybridMFConfig
    popular_for_empty_users = False
    search_space: ClassVar[SearchSpace] = {
        "factors": IntRange(16, 256, log=True),
        "loss": Choice(("bpr", "warp")),
        "learning_rate": FloatRange(1e-3, 3e-2, log=True),
        "regularization": FloatRange(1e-4, 1e-1, log=True),
        "epochs": IntRange(10, 100),
        "feature_weight": FloatRange(0.1, 2.0, log=True),
    }
    quick_params: ClassVar[Mapping[str, Any]] = {
        "factors": 8,
        "epochs": 5,
        "batch_size": 128,
        "learning_rate": 0.02,
    }
    bytes_per_factor = 16.0

    user_space_: FeatureSpace
    item_space_: FeatureSpace
    user_embeddings_: np.ndarray
    item_embeddings_: np.ndarray
    item_feature_bias_: np.ndarray
    #: float32 (n_users, k): the part of each user's vector that comes from metadata features.
    user_feature_part_: np.ndarray

    def estimated_bytes(self, n_users: int, n_items: int) -> float:
        # the identity features double nothing, but metadata adds rows; 2x is a safe margin
        return 2.0 * super().estimated_bytes(n_users, n_items)

    def _fit_factors(self, dataset: Dataset, weights: sp.csr_matrix) -> None:
        cfg = self.config
        fw_u = cfg.feature_weight if cfg.user_features else 0.0
        fw_i = cfg.feature_weight if cfg.item_features else 0.0
        self.user_space_ = user_feature_space(
            dataset,
            min_count=cfg.min_feature_count,
            weight=fw_u,
            numeric_bins=cfg.numeric_bins,
            social=cfg.social_features,
        )
        self.item_space_ = item_feature_space(dataset, min_count=cfg.min_feature_count, weight=fw_i)
        if fw_u == 0.0:
            self.user_space_ = _identity_only(self.user_space_)
        if fw_i == 0.0:
            self.item_space_ = _identity_only(self.item_space_)
        positives = self.train_
        trained = train_feature_mf(
            self.user_space_.matrix,
            self.item_space_.matrix,
            positives,
            factors=cfg.factors,
            learning_rate=cfg.learning_rate,
            regularization=cfg.regularization,
            epochs=cfg.epochs,
            batch_size=cfg.batch_size,
            negatives=cfg.negatives,
            loss=cfg.loss,
            seed=cfg.seed,
        )
        user_emb, item_emb = trained.user_embeddings, trained.item_embeddings
        item_b = trained.item_biases
        cold_users = np.flatnonzero(np.diff(positives.indptr) == 0)
        cold_items = np.flatnonzero(np.asarray(positives.getnnz(axis=0)) == 0)
        user_emb[cold_users] = 0.0  # identity columns come first: column e = entity e
        item_emb[cold_items] = 0.0
        item_b[cold_items] = 0.0
        self.user_embeddings_ = user_emb
        self.item_embeddings_ = item_emb
        self.item_feature_bias_ = item_b
        self._derive_factors()
        self.user_factors_ = np.asarray(self.user_space_.matrix @ user_emb, dtype=np.float32)

    def _derive_factors(self) -> None:
        """Item factors and biases from the item features; the users' metadata part."""
        self.item_factors_ = np.asarray(
            self.item_space_.matrix @ self.item_embeddings_, dtype=np.float32
        )
        self.item_bias_ = np.asarray(
            self.item_space_.matrix @ self.item_feature_bias_, dtype=np.float32
        )
        n = self.user_space_.n_entities
        meta = self.user_space_.matrix[:, n:]
        self.user_feature_part_ = np.asarray(meta @ self.user_embeddings_[n:], dtype=np.float32)

    def _grow_users(self, n_new: int) -> None:
        self.user_feature_part_ = np.vstack(
            [
                self.user_feature_part_,
                np.zeros((n_new, self.user_feature_part_.shape[1]), np.float32),
            ]
        )

    def _fold_in(self, rows: sp.csr_matrix, user_idx: np.ndarray | None) -> np.ndarray:
        """The user's metadata part stays; their identity part is re-solved from the history."""
        cfg = self.config
        rows = sp.csr_matrix(rows)
        k = self.item_factors_.shape[1]
        out = np.zeros((rows.shape[0], k), np.float32)
        for r in range(rows.shape[0]):
            offset = (
                self.user_feature_part_[user_idx[r]]
                if user_idx is not None
                else np.zeros(k, np.float32)
            )
            hist = rows.indices[rows.indptr[r] : rows.indptr[r + 1]]
            w = bpr_fold_in(
                self.item_factors_,
                self.item_bias_,
                hist,
                reg=cfg.regularization,
                offset=offset,
                seed=cfg.seed,
            )
            out[r] = offset + w
        return out

    def _explain(self, user_idx: int, item_idx: int) -> tuple[list[Evidence], str]:
        u = self.user_factors_[user_idx]
        evidence: list[Evidence] = []
        # the item's metadata features: weight * (u . e_f + b_f)
        n_items = self.item_space_.n_entities
        row = self.item_space_.matrix[item_idx]
        feats = [(c, w) for c, w in zip(row.indices, row.data, strict=True) if c >= n_items]
        item_ev = []
        for c, w in feats:
            contrib = float(w * (self.item_embeddings_[c] @ u + self.item_feature_bias_[c]))
            name = str(self.item_space_.names[c - n_items])
            item_ev.append(Evidence("feature", name, contrib, f"item {name}"))
        item_ev = [e for e in sorted(item_ev, key=lambda e: -e.weight) if e.weight > 0][:3]
        # the user's own metadata features: weight * (e_g . v_i)
        n_users = self.user_space_.n_entities
        urow = self.user_space_.matrix[user_idx] if user_idx < n_users else sp.csr_matrix((1, 1))
        user_ev = []
        for c, w in zip(urow.indices, urow.data, strict=True):
            if c < n_users:
                continue
            contrib = float(w * (self.user_embeddings_[c] @ self.item_factors_[item_idx]))
            name = str(self.user_space_.names[c - n_users])
            user_ev.append(Evidence("feature", f"user:{name}", contrib, f"your {name}"))
        user_ev = [e for e in sorted(user_ev, key=lambda e: -e.weight) if e.weight > 0][:2]
        hist = history_of(self.train_, user_idx)
        hist_ev: list[Evidence] = []
        if len(hist):
            sims = self._similar(item_idx)[hist]
            for j in np.argsort(-sims, kind="stable")[:3]:
                if sims[j] > 0:
                    hist_ev.append(Evidence("item", self.items_.id(int(hist[j])), float(sims[j])))
        evidence = hist_ev + item_ev + user_ev
        parts = []
        if hist_ev:
            parts.append(f"you interacted with {', '.join(e.id for e in hist_ev[:2])}")
        if item_ev:
            parts.append(f"it has {', '.join(e.id for e in item_ev[:2])}")
        if user_ev:
            parts.append(f"it suits {', '.join(e.label for e in user_ev[:1])}")
        text = ("Because " + " and ".join(parts)) if parts else "Matches your taste profile"
        return evidence, text

    def _extra_state(self) -> dict[str, Any]:
        return {
            "user_features": self.user_space_.matrix,
            "user_feature_names": self.user_space_.names,
            "item_features": self.item_space_.matrix,
            "item_feature_names": self.item_space_.names,
            "user_embeddings": self.user_embeddings_,
            "item_embeddings": self.item_embeddings_,
            "item_feature_bias": self.item_feature_bias_,
            "user_feature_part": self.user_feature_part_,
        }

    def _set_extra_state(self, arrays: Mapping[str, Any], meta: Mapping[str, Any]) -> None:
        self.user_space_ = FeatureSpace(
            sp.csr_matrix(arrays["user_features"], dtype=np.float32),
            np.asarray(arrays["user_feature_names"], dtype=str),
        )
        self.item_space_ = FeatureSpace(
            sp.csr_matrix(arrays["item_features"], dtype=np.float32),
            np.asarray(arrays["item_feature_names"], dtype=str),
        )
        self.user_embeddings_ = np.asarray(arrays["user_embeddings"], dtype=np.float32)
        self.item_embeddings_ = np.asarray(arrays["item_embeddings"], dtype=np.float32)
        self.item_feature_bias_ = np.asarray(arrays["item_feature_bias"], dtype=np.float32)
        self.user_feature_part_ = np.asarray(arrays["user_feature_part"], dtype=np.float32)


def _identity_only(space: FeatureSpace) -> FeatureSpace:
    n = space.n_entities
    return FeatureSpace(sp.identity(n, np.float32, format="csr"), np.zeros(0, dtype=str))
