"""Matrix decompositions: PureSVD (truncated SVD) and non-negative matrix factorization."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np
import scipy.sparse as sp
from pydantic import Field

from serendip.data.dataset import Dataset
from serendip.models.base import Choice, FloatRange, IntRange, ModelConfig, SearchSpace
from serendip.models.factorization._base import FactorConfig, FactorModel, Weighting

__all__ = ["NMF", "PureSVD"]


class PureSVDConfig(FactorConfig):
    # defaults: tuned on MovieLens 100K validation (random 80/20 seed 42, binary interactions)
    factors: int = Field(default=16, ge=1, le=4096)
    #: Column j of the matrix is scaled by norm_j ** -popularity_exponent before the SVD (0 =
    #: plain PureSVD); it lifts long-tail items, as in EigenRec.
    popularity_exponent: float = Field(default=0.1, ge=0.0, le=1.0)
    weighting: Weighting = "events"
    #: Power iterations of the randomized SVD (more = closer to the exact truncated SVD).
    power_iterations: int = Field(default=7, ge=0, le=50)


class PureSVD(FactorModel[PureSVDConfig]):
    """Truncated SVD of the (column-scaled) user x item matrix X ~ U S V^T (Cremonesi et al.,
    2010). Item factors are V (n_items, k); a user's factors are x_u V, so scores are
    x_u V V^T: the projection of the user's history on the top-k item space. That makes the
    fold-in of any history exact (no refit), and the score of item i splits exactly over the
    history items j as x_uj (v_j . v_i)."""

    name = "puresvd"
    description = "Truncated SVD of the interaction matrix."
    Config: ClassVar[type[ModelConfig]] = PureSVDConfig
    search_space: ClassVar[SearchSpace] = {
        "factors": IntRange(8, 256, log=True),
        "popularity_exponent": FloatRange(0.0, 0.6),
    }
    quick_params: ClassVar[Mapping[str, Any]] = {"factors": 8, "power_iterations": 4}
    bytes_per_factor = 24.0

    column_scale_: np.ndarray

    def _fit_factors(self, dataset: Dataset, weights: sp.csr_matrix) -> None:
        from sklearn.utils.extmath import randomized_svd

        cfg = self.config
        norms = np.sqrt(np.asarray(weights.multiply(weights).sum(axis=0)).ravel())
        scale = np.ones_like(norms)
        nz = norms > 0
        scale[nz] = norms[nz] ** -cfg.popularity_exponent
        self.column_scale_ = scale.astype(np.float32)
        x = self._scaled(weights)
        k = max(1, min(cfg.factors, min(x.shape)))
        if x.nnz == 0:
            self.item_factors_ = np.zeros((x.shape[1], k), np.float32)
        else:
            _, _, vt = randomized_svd(
                x.astype(np.float64),
                k,
                n_iter=cfg.power_iterations,
                random_state=cfg.seed,
            )
            self.item_factors_ = vt.T.astype(np.float32)
        self.user_factors_ = np.asarray(x @ self.item_factors_, dtype=np.float32)

    def _scaled(self, rows: sp.csr_matrix) -> sp.csr_matrix:
        return sp.csr_matrix(rows.multiply(self.column_scale_[None, :]), dtype=np.float32)

    def _fold_in(self, rows: sp.csr_matrix, user_idx: np.ndarray | None) -> np.ndarray:
        return np.asarray(self._scaled(rows) @ self.item_factors_, dtype=np.float32)

    def _history_contributions(self, user_idx: int, item_idx: int, hist: np.ndarray) -> np.ndarray:
        x = self._scaled(self.weights_[user_idx]).toarray()[0]
        v = self.item_factors_
        return np.asarray(x[hist] * (v[hist] @ v[item_idx]), dtype=np.float64)

    def _extra_state(self) -> dict[str, Any]:
        return {"column_scale": self.column_scale_}

    def _set_extra_state(self, arrays: Mapping[str, Any], meta: Mapping[str, Any]) -> None:
        self.column_scale_ = np.asarray(arrays["column_scale"], dtype=np.float32)


class NMFConfig(FactorConfig):
    # defaults: tuned on MovieLens 100K validation (random 80/20 seed 42, binary interactions)
    factors: int = Field(default=32, ge=1, le=4096)
    #: Regularisation of both factor matrices (scikit-learn's alpha_W = alpha_H; scikit-learn
    #: scales it by the matrix's other dimension).
    alpha: float = Field(default=0.01, ge=0.0)
    #: Share of L1 in the regularisation (0 = L2 only, 1 = L1 only).
    l1_ratio: float = Field(default=0.0, ge=0.0, le=1.0)
    max_iter: int = Field(default=200, ge=1)
    weighting: Weighting = "events"


class NMF(FactorModel[NMFConfig]):
    """Non-negative matrix factorization X ~ W H (scikit-learn, coordinate descent, NNDSVDa
    initialisation, so deterministic). Unknown and updated users are folded in by solving for
    their W row with H fixed (scikit-learn's `transform`)."""

    name = "nmf"
    description = "Non-negative matrix factorization (scikit-learn)."
    Config: ClassVar[type[ModelConfig]] = NMFConfig
    search_space: ClassVar[SearchSpace] = {
        "factors": IntRange(8, 128, log=True),
        "alpha": FloatRange(1e-4, 1.0, log=True),
        "l1_ratio": Choice((0.0, 0.5, 1.0)),
    }
    quick_params: ClassVar[Mapping[str, Any]] = {"factors": 8, "max_iter": 100}
    bytes_per_factor = 32.0

    def _nmf_args(self) -> dict[str, Any]:
        cfg = self.config
        return {
            "solver": "cd",
            "alpha_W": cfg.alpha,
            "alpha_H": "same",
            "l1_ratio": cfg.l1_ratio,
            "max_iter": cfg.max_iter,
            "random_state": cfg.seed,
        }

    def _fit_factors(self, dataset: Dataset, weights: sp.csr_matrix) -> None:
        import warnings

        from sklearn.decomposition import NMF as SkNMF
        from sklearn.exceptions import ConvergenceWarning

        cfg = self.config
        k = max(1, min(cfg.factors, min(weights.shape)))
        x = weights.astype(np.float64)
        if x.nnz == 0:
            self.user_factors_ = np.zeros((x.shape[0], k), np.float32)
            self.item_factors_ = np.zeros((x.shape[1], k), np.float32)
            return
        model = SkNMF(n_components=k, init="nndsvda", **self._nmf_args())
        with warnings.catch_warnings():
            # max_iter is a tuned budget, not a convergence promise
            warnings.simplefilter("ignore", ConvergenceWarning)
            self.user_factors_ = model.fit_transform(x).astype(np.float32)
        self.item_factors_ = model.components_.T.astype(np.float32)

    def _fold_in(self, rows: sp.csr_matrix, user_idx: np.ndarray | None) -> np.ndarray:
        import warnings

        from sklearn.decomposition import non_negative_factorization
        from sklearn.exceptions import ConvergenceWarning

        h = self.item_factors_.T.astype(np.float64)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            w, _, _ = non_negative_factorization(
                rows.astype(np.float64),
                H=h,
                n_components=h.shape[0],
                update_H=False,
                **self._nmf_args(),
            )
        return np.asarray(w, dtype=np.float32)
