"""EASE (Steck 2019): an item x item linear autoencoder with zero diagonal, in closed form."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np
import scipy.sparse as sp
from scipy.linalg import lapack
from pydantic import Field

from serendip.data.dataset import Dataset
from serendip.errors import CapacityError
from serendip.models.base import FloatRange, ModelConfig, SearchSpace
from serendip.models.neighborhood._common import Confidence, check_memory
from serendip.models.neighborhood._item_based import ItemToItem

__all__ = ["EASE", "EASEConfig"]

#: Up to this many items the Gram matrix is inverted in float64, beyond it in float32 (half the
#: memory; the l2 ridge keeps the system well conditioned).
_FLOAT64_UP_TO = 10_000


class EASEConfig(ModelConfig):
    """Defaults tuned on MovieLens 100K (binary, random 80/20, validation NDCG@10)."""

    l2: float = Field(default=500.0, gt=0.0, description="ridge lambda added to the Gram diagonal")
    dropout: float = Field(
        default=0.0,
        ge=0.0,
        lt=1.0,
        description="EDLAE emphasised dropout p: adds p / (1 - p) * G_jj to item j's ridge",
    )
    max_items: int = Field(default=30_000, ge=1, description="refuse catalogs larger than this")
    confidence: Confidence = "binary"
    max_memory_mb: float = Field(default=16_384.0, gt=0.0)


class EASE(ItemToItem):
    """B = argmin ||X - X B||^2 + l2 ||B||^2 subject to diag(B) = 0, in closed form:
    P = (X^T X + l2 I)^-1, B = -P / diag(P) (column-wise), diag(B) = 0; score = x_u @ B.

    Dense n_items x n_items: memory about 2 x 8 bytes x n_items^2 while fitting (4 bytes above
    10,000 items), 4 x n_items^2 after. Catalogs above `max_items` are refused with a
    `CapacityError` before anything is allocated.
    """

    name = "ease"
    family = "linear"
    description = "Embarrassingly shallow autoencoder (closed form; dense item x item, capped)."
    Config: ClassVar[type[ModelConfig]] = EASEConfig
    search_space: ClassVar[SearchSpace] = {"l2": FloatRange(1.0, 5000.0, log=True)}
    quick_params: ClassVar[Mapping[str, Any]] = {"l2": 50.0}

    W_: np.ndarray

    @classmethod
    def fit_bytes(cls, n_items: int) -> int:
        """Peak bytes of a fit on `n_items` items: one dense matrix, inverted in place."""
        itemsize = 8 if n_items <= _FLOAT64_UP_TO else 4
        return itemsize * n_items * n_items

    def _fit(self, dataset: Dataset) -> None:
        cfg: EASEConfig = self.config  # type: ignore[assignment]
        n = dataset.n_items
        if n > cfg.max_items:
            gib = self.fit_bytes(n) / 2**30
            raise CapacityError(
                f"EASE needs a dense {n:,} x {n:,} item matrix (about {gib:,.1f} GiB to fit); "
                f"the catalog exceeds max_items={cfg.max_items:,}. Use item-knn or rp3beta "
                f"(sparse), filter the catalog, or raise max_items if the memory is there"
            )
        check_memory(self.name, self.fit_bytes(n), cfg.max_memory_mb, f"{n:,} x {n:,} items")
        self.profile_ = sp.csr_matrix(dataset.matrix(self._profile_config()), dtype=np.float32)
        dtype = np.float64 if n <= _FLOAT64_UP_TO else np.float32
        p = _inverse_gram(self.profile_.astype(dtype), cfg.l2, cfg.dropout)
        # B = I - P diag(1 / diag(P)): off-diagonal -P_ij / P_jj, zero diagonal
        diag = np.diag(p).copy()
        p /= -diag[None, :]
        p[np.diag_indices(n)] = 0.0
        self.W_ = p.astype(np.float32, copy=False)
        self._init_scoring()

    def _state(self) -> tuple[dict[str, Any], dict[str, Any]]:
        return {"B": self.W_, **self._profile_state()}, {}

    def _set_state(self, arrays: Mapping[str, Any], meta: Mapping[str, Any]) -> None:
        self.W_ = np.asarray(arrays["B"], dtype=np.float32)
        self._restore_profile(arrays)


def _inverse_gram(x: sp.csr_matrix, l2: float, dropout: float, block: int = 1024) -> np.ndarray:
    """(G + l2 I + p / (1 - p) diag(G))^-1 with G = X^T X, as one dense (n, n) array of x's dtype, built and inverted in place.

    The Gram matrix is filled in row blocks (the sparse product never holds more than `block`
    dense rows), then inverted by Cholesky (LAPACK potrf + potri), which is valid because it is
    symmetric positive definite for l2 > 0 and only fills one triangle, mirrored blockwise.
    """
    n = x.shape[1]
    xt = x.T.tocsr()
    gram = np.empty((n, n), dtype=x.dtype, order="F")
    for s in range(0, n, block):
        gram[s : s + block] = (xt[s : s + block] @ x).toarray()
    diag = np.diag_indices(n)
    gram[diag] = gram[diag] * (1.0 + dropout / (1.0 - dropout)) + l2
    potrf, potri = lapack.get_lapack_funcs(("potrf", "potri"), (gram,))
    chol, info = potrf(gram, lower=False, overwrite_a=True, clean=False)
    if info != 0:
        raise np.linalg.LinAlgError(f"Cholesky factorisation failed (info={info})")
    inv, info = potri(chol, lower=False, overwrite_c=True)
    if info != 0:
        raise np.linalg.LinAlgError(f"Cholesky inverse failed (info={info})")
    # potri fills the upper triangle: mirror it into the lower one, a block at a time
    for s in range(0, n, block):
        e = min(s + block, n)
        inv[s:e, :s] = inv[:s, s:e].T
        diag = inv[s:e, s:e]
        inv[s:e, s:e] = np.triu(diag) + np.triu(diag, 1).T
    return inv
