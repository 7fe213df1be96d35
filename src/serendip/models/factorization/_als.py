"""Implicit ALS (Hu, Koren & Volinsky, 2008) through the `implicit` library, CPU."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np
import scipy.sparse as sp
from pydantic import Field

from serendip.data.dataset import Dataset
from serendip.models.ann import AnnOptions, AnnRetrieval, Metric
from serendip.models.base import FloatRange, IntRange, ModelConfig, SearchSpace
from serendip.models.factorization._base import FactorConfig, FactorModel, Weighting

__all__ = ["IALS"]


class IALSConfig(FactorConfig, AnnOptions):
    # defaults: tuned on MovieLens 100K validation (random 80/20 seed 42, binary interactions)
    factors: int = Field(default=24, ge=1, le=4096)
    #: L2 weight on every factor vector (implicit's `regularization`, not scaled by counts).
    regularization: float = Field(default=45.0, ge=0.0)
    #: Confidence of an observed pair = alpha * weight (implicit's convention; unobserved = 1).
    alpha: float = Field(default=7.0, gt=0.0)
    iterations: int = Field(default=15, ge=1, le=500)
    #: "log1p" turns listen/play counts into confidence (Last.fm); "events" weighs event types.
    weighting: Weighting = "events"


class IALS(AnnRetrieval, FactorModel[IALSConfig]):
    """Weighted matrix factorization for implicit feedback, fitted by alternating least squares
    with conjugate-gradient steps (`implicit.als.AlternatingLeastSquares`, CPU).

    Loss: sum_ui c_ui (p_ui - x_u . y_i)^2 + reg (|X|^2 + |Y|^2) with p_ui = 1 for observed pairs
    (else 0) and c_ui = alpha * weight_ui for observed pairs (else 1). A user's factors given Y
    have a closed form, x_u = (Y^T C_u Y + reg I)^-1 Y^T C_u p_u, used to fold in unknown and
    updated users exactly, and to split a score over the user's history items (the explanation).

    With `ann` on (by default for catalogs of 50K+ items), warm users retrieve through an HNSW
    index of the item factors (inner product) and `similar_items` through one of the normalised
    factors (cosine); both are built at fit and saved with the model.
    """

    name = "ials"
    description = "Implicit ALS with confidence weighting (implicit)."
    Config: ClassVar[type[ModelConfig]] = IALSConfig
    search_space: ClassVar[SearchSpace] = {
        "factors": IntRange(16, 256, log=True),
        "regularization": FloatRange(0.1, 300.0, log=True),
        "alpha": FloatRange(0.5, 50.0, log=True),
        "iterations": IntRange(5, 30),
    }
    quick_params: ClassVar[Mapping[str, Any]] = {
        "factors": 8,
        "iterations": 5,
        "regularization": 1.0,
    }
    bytes_per_factor = 12.0

    def _fit_factors(self, dataset: Dataset, weights: sp.csr_matrix) -> None:
        from implicit.als import AlternatingLeastSquares
        from threadpoolctl import threadpool_limits

        cfg = self.config
        # implicit parallelises over users itself; a BLAS thread pool on top only oversubscribes
        # the cores (implicit warns and recommends exactly this limit).
        with threadpool_limits(1, "blas"):
            model = AlternatingLeastSquares(
                factors=cfg.factors,
                regularization=cfg.regularization,
                alpha=cfg.alpha,
                iterations=cfg.iterations,
                random_state=cfg.seed,
                use_gpu=False,
                num_threads=0,
                calculate_training_loss=False,
            )
            model.fit(weights, show_progress=False)
        self.user_factors_ = np.asarray(model.user_factors, dtype=np.float32)
        self.item_factors_ = np.asarray(model.item_factors, dtype=np.float32)

    # ANN retrieval hooks (see serendip.models.ann.AnnRetrieval)
    def _ann_vectors(self, purpose: str) -> np.ndarray:
        return self.item_factors_

    def _ann_metric(self, purpose: str) -> Metric:
        return "ip" if purpose == "recommend" else "cosine"

    def _ann_queries(self, user_idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        # users without history score by popularity in `_score_warm`: they go the exact way
        return self.user_factors_[user_idx], ~self._empty_users(user_idx)

    def _ann_offset(self) -> np.ndarray | None:
        return self.item_bias_ if np.any(self.item_bias_) else None

    def _ann_cold_query(self, history: np.ndarray) -> np.ndarray | None:
        row = sp.csr_matrix(
            (np.ones(len(history), np.float32), (np.zeros(len(history), np.int64), history)),
            shape=(1, len(self.items_)),
        )
        return self._fold_in(row, None)[0]  # as `_score_cold` folds a context in

    def _user_system(self, row: sp.csr_matrix) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(A, b, confidences) of one user's normal equations A x = b; float64."""
        cfg = self.config
        hist = row.indices
        conf = cfg.alpha * row.data.astype(np.float64)
        # only the history's factors in float64 (not the catalog's: 512 MB at 1M items)
        yh = self.item_factors_[hist].astype(np.float64)
        a = self._gram() + (yh * (conf - 1.0)[:, None]).T @ yh
        a[np.diag_indices_from(a)] += cfg.regularization
        return a, yh.T @ conf, conf

    def _gram(self) -> np.ndarray:
        cached = getattr(self, "_gram_cache", None)
        if cached is None or cached[0] is not self.item_factors_:
            y = self.item_factors_.astype(np.float64)
            cached = (self.item_factors_, y.T @ y)
            self._gram_cache = cached
        return cached[1]

    def _fold_in(self, rows: sp.csr_matrix, user_idx: np.ndarray | None) -> np.ndarray:
        rows = sp.csr_matrix(rows)
        out = np.zeros((rows.shape[0], self.item_factors_.shape[1]), np.float32)
        for r in range(rows.shape[0]):
            row = rows[r]
            if row.nnz == 0:
                continue
            a, b, _ = self._user_system(row)
            out[r] = np.linalg.solve(a, b)
        return out

    def _history_contributions(self, user_idx: int, item_idx: int, hist: np.ndarray) -> np.ndarray:
        """score_ui = y_i^T A_u^-1 sum_j c_j y_j: item j contributes c_j y_i^T A_u^-1 y_j."""
        row = self.weights_[user_idx]
        out = np.zeros(len(hist))
        if row.nnz == 0:
            return out
        a, _, conf = self._user_system(row)
        wy = np.linalg.solve(a, self.item_factors_[item_idx].astype(np.float64))
        contrib = conf * (self.item_factors_[row.indices].astype(np.float64) @ wy)
        pos = {int(j): c for j, c in zip(row.indices, contrib, strict=True)}
        return np.array([pos.get(int(j), 0.0) for j in hist])
