"""EASE (Steck 2019): an item x item linear autoencoder with zero diagonal, in closed form."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar, cast

import numpy as np
import scipy.linalg
import scipy.sparse as sp
from pydantic import Field
from scipy.linalg import lapack

from serendip.data.dataset import Dataset
from serendip.errors import CapacityError
from serendip.models.base import FloatRange, ModelConfig, SearchSpace
from serendip.models.neighborhood import ItemToItem, ProfileConfig, check_memory

__all__ = ["EASE", "EASEConfig"]

#: Up to this many items the Gram matrix is inverted in float64, beyond it in float32 (half the
#: memory; the l2 ridge keeps the system well conditioned).
_FLOAT64_UP_TO = 10_000


class EASEConfig(ProfileConfig):
    """Defaults tuned on MovieLens 100K (binary, random 80/20 seed 42, validation NDCG@10); on
    listen counts use confidence="log1p" (Last.fm's tuned values: benchmarks/model_params.json)."""

    l2: float = Field(default=500.0, gt=0.0, description="ridge lambda added to the Gram diagonal")
    dropout: float = Field(
        default=0.0,
        ge=0.0,
        lt=1.0,
        description="EDLAE emphasised dropout p: adds p / (1 - p) * G_jj to item j's ridge",
    )
    max_items: int = Field(default=30_000, ge=1, description="refuse catalogs larger than this")
    max_memory_mb: float = Field(default=16_384.0, gt=0.0)


class EASE(ItemToItem[EASEConfig]):
    """B = argmin ||X - X B||^2 + ||D^(1/2) B||^2 subject to diag(B) = 0, in closed form:
    P = (X^T X + D)^-1, B = -P / diag(P) (column-wise), diag(B) = 0; score = x_u @ B.
    D = diag(l2 + p / (1 - p) * G_jj): plain EASE for dropout p = 0, EDLAE (Steck 2020,
    emphasised denoising) otherwise, which penalises popular items' self-reconstruction more.

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
    def fit_bytes(cls, n_items: int, n_users: int) -> int:
        """Peak bytes of a fit: the dense item x item matrix, plus the dense user x item
        factors of the Woodbury path when there are far fewer users than items."""
        itemsize = 8 if n_items <= _FLOAT64_UP_TO else 4
        total = itemsize * n_items * n_items
        if _use_woodbury(n_users, n_items):
            total += (16 + itemsize) * n_users * n_items + 8 * n_users * n_users
        return total

    def _fit(self, dataset: Dataset) -> None:
        cfg = self.config
        n = dataset.n_items
        if n > cfg.max_items:
            mib = self.fit_bytes(n, dataset.n_users) / 2**20
            size = f"{mib / 1024:,.1f} GiB" if mib >= 1024 else f"{mib:,.0f} MiB"
            raise CapacityError(
                f"EASE needs a dense {n:,} x {n:,} item matrix (about {size} to fit); "
                f"the catalog exceeds max_items={cfg.max_items:,}. Use item-knn or rp3beta "
                f"(sparse), filter the catalog, or raise max_items if the memory is there"
            )
        check_memory(
            self.name,
            self.fit_bytes(n, dataset.n_users),
            cfg.max_memory_mb,
            f"a dense {n:,} x {n:,} item matrix",
        )
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


def _use_woodbury(n_users: int, n_items: int) -> bool:
    # the (m, n) dense factors cost memory; worth it only well below the item count
    return 2 * n_users < n_items


def _inverse_gram(x: sp.csr_matrix, l2: float, dropout: float, block: int = 1024) -> np.ndarray:
    """P = (G + D)^-1 with G = X^T X and D = diag(l2 + p / (1 - p) * G_jj), dense (n, n),
    C-contiguous, in x's dtype.

    With far fewer users than items (m < n / 2) the Woodbury identity is cheaper (O(n^2 m) instead of O(n^3)):
    P = D^-1 - D^-1 X^T (I_m + X D^-1 X^T)^-1 X D^-1. Otherwise the Gram matrix is filled in row
    blocks and inverted in place by Cholesky (LAPACK potrf + potri; valid because G + D is
    symmetric positive definite), and the triangle potri leaves is mirrored blockwise.
    """
    m, n = x.shape
    dtype = x.dtype
    col_sq = np.asarray(x.multiply(x).sum(axis=0)).ravel().astype(np.float64)
    d = l2 + dropout / (1.0 - dropout) * col_sq
    if _use_woodbury(m, n):
        xd = sp.csr_matrix(x @ sp.diags(1.0 / d), dtype=np.float64)  # X D^-1, (m, n)
        k = (xd @ x.T.astype(np.float64)).toarray()
        k[np.diag_indices(m)] += 1.0
        c = scipy.linalg.cho_solve(scipy.linalg.cho_factor(k), xd.toarray())  # (m, n)
        left = np.ascontiguousarray(xd.T.toarray(), dtype=dtype)  # D^-1 X^T, (n, m)
        p = np.empty((n, n), dtype=dtype)
        np.matmul(left, c.astype(dtype), out=p)
        p *= -1.0
        p[np.diag_indices(n)] += (1.0 / d).astype(dtype)
        return p
    xt = x.T.tocsr()
    gram = np.empty((n, n), dtype=dtype, order="F")
    for s in range(0, n, block):
        gram[s : s + block] = (xt[s : s + block] @ x).toarray()
    gram[np.diag_indices(n)] += d.astype(dtype)
    potrf, potri = cast(tuple[Any, Any], lapack.get_lapack_funcs(("potrf", "potri"), (gram,)))
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
    # symmetric, so the transpose is the same matrix as a C-contiguous view (fast row access)
    return np.asarray(inv.T)
