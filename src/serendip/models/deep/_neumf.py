"""NeuMF: neural collaborative filtering (He et al. 2017), trained with sampled negatives.

Negatives are sampled for TRAINING only (binary cross-entropy, `n_negatives` per positive);
recommendation always ranks the full catalog.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import scipy.sparse as sp
from pydantic import Field, field_validator

from serendip.data.dataset import Dataset
from serendip.models.base import (
    Choice,
    FloatRange,
    IntRange,
    ModelConfig,
    SearchSpace,
)
from serendip.models.deep._common import (
    ADAM_BYTES,
    DeepConfig,
    TorchRecommender,
    batched,
    chunk_rows,
)

if TYPE_CHECKING:
    import torch

__all__ = ["NeuMF", "NeuMFConfig"]


class NeuMFConfig(DeepConfig):
    """gmf_dim: GMF factor size; mlp_dims: MLP layer sizes, the first being the concatenated
    user+item embedding (so each is mlp_dims[0] / 2); n_negatives: sampled negatives per positive
    (training only); fold_in_steps: Adam steps that fit an unknown user's vectors to their
    context items (items frozen)."""

    gmf_dim: int = Field(default=32, ge=1)
    mlp_dims: tuple[int, ...] = (64, 32, 16)
    dropout: float = Field(default=0.0, ge=0, lt=1)
    n_negatives: int = Field(default=8, ge=1)
    fold_in_steps: int = Field(default=50, ge=0)
    epochs: int = Field(default=40, ge=1)
    batch_size: int = Field(default=1024, ge=1)
    lr: float = Field(default=2e-3, gt=0)
    weight_decay: float = Field(default=0.0, ge=0)
    patience: int = Field(default=4, ge=1)
    ema_decay: float = Field(default=0.7, ge=0, lt=1)

    @field_validator("mlp_dims")
    @classmethod
    def _even_first(cls, v: tuple[int, ...]) -> tuple[int, ...]:
        if not v or v[0] < 2 or v[0] % 2 or any(d < 1 for d in v):
            raise ValueError("mlp_dims needs a first size >= 2 and even, all sizes positive")
        return v


class NeuMF(TorchRecommender[NeuMFConfig]):
    """GMF + MLP over user and item embeddings, fused into one logit; BCE with sampled negatives.

    Cold users: their vectors are fitted to the context items in a few Adam steps with the item
    side frozen (the fold-in of matrix factorisation); empty context -> popularity.
    Explanations: the user's history items closest to the item in the learned item space.
    """

    name = "neumf"
    description = "Neural collaborative filtering (GMF + MLP), torch."
    Config: ClassVar[type[ModelConfig]] = NeuMFConfig
    search_space: ClassVar[SearchSpace] = {
        "gmf_dim": IntRange(8, 64, log=True),
        "mlp_dims": Choice(((32, 16, 8), (64, 32, 16), (128, 64, 32))),
        "lr": FloatRange(3e-4, 1e-2, log=True),
        "weight_decay": FloatRange(1e-7, 1e-4, log=True),
        "n_negatives": IntRange(1, 8),
    }
    quick_params: ClassVar[Mapping[str, Any]] = {
        "gmf_dim": 8,
        "mlp_dims": (16, 8),
        "epochs": 3,
        "batch_size": 256,
        "fold_in_steps": 10,
    }

    # -------------------------------------------------------------- hooks

    def _build(self) -> torch.nn.Module:
        from serendip.models.deep._nets import NeuMFNet

        c = self.config
        return NeuMFNet(len(self.users_), len(self.items_), c.gmf_dim, c.mlp_dims, c.dropout)

    def _estimate_bytes(self, dataset: Dataset) -> tuple[float, str]:
        c = self.config
        width = c.gmf_dim + c.mlp_dims[0] // 2
        params = (dataset.n_users + dataset.n_items) * width * ADAM_BYTES
        # one epoch's (user, item, label) samples: positives and their negatives
        samples = dataset.n_interactions * (1 + c.n_negatives) * (8 + 8 + 4) * 2.0
        return params + samples, (
            f"{dataset.n_users + dataset.n_items} embeddings of {width}, "
            f"{dataset.n_interactions * (1 + c.n_negatives)} samples per epoch"
        )

    def _train_epoch(
        self,
        module: torch.nn.Module,
        optimizer: torch.optim.Optimizer,
        data: Any,
        epoch: int,
        rng: np.random.Generator,
    ) -> float:
        import torch
        import torch.nn.functional as F

        c = self.config
        m: sp.csr_matrix = data
        n_items = m.shape[1]
        pos_u = np.repeat(np.arange(m.shape[0]), np.diff(m.indptr))
        pos_i = m.indices.astype(np.int64)
        neg_u = np.repeat(pos_u, c.n_negatives)
        neg_i = _sample_negatives(m, neg_u, n_items, rng)
        users = np.concatenate([pos_u, neg_u])
        items = np.concatenate([pos_i, neg_i])
        labels = np.concatenate([np.ones(len(pos_u)), np.zeros(len(neg_u))]).astype(np.float32)
        order = rng.permutation(len(users))
        dev = self.device_
        tu = torch.from_numpy(users[order]).to(dev)
        ti = torch.from_numpy(items[order]).to(dev)
        tl = torch.from_numpy(labels[order]).to(dev)
        total, n = 0.0, 0
        for sl in batched(len(order), c.batch_size):
            logits = module(tu[sl], ti[sl])
            loss = F.binary_cross_entropy_with_logits(logits, tl[sl])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total += float(loss.detach()) * (sl.stop - sl.start)
            n += sl.stop - sl.start
        return total / max(n, 1)

    def _score_users_with(
        self, module: torch.nn.Module, data: Any, user_idx: np.ndarray
    ) -> np.ndarray:
        import torch

        n_items = len(self.items_)
        out = np.empty((len(user_idx), n_items), np.float32)
        with torch.no_grad():
            for sl in batched(len(user_idx), chunk_rows(len(user_idx), n_items, 1 << 18)):
                u = torch.from_numpy(np.asarray(user_idx[sl], dtype=np.int64)).to(self.device_)
                s = module.score_vectors(module.gmf_user(u), module.mlp_user(u), n_items)  # type: ignore[operator]
                out[sl] = s.cpu().numpy()
        return out

    # -------------------------------------------------------------- the contract
    def _score_warm(self, user_idx: np.ndarray) -> np.ndarray:
        return self._score_users_with(self.module_, None, user_idx)

    def _score_cold(self, context: np.ndarray) -> np.ndarray:
        if len(context) == 0 or self.config.fold_in_steps == 0:
            return self.popularity_.astype(np.float32)
        import torch

        gu, mu = self._fold_in(np.unique(context))
        with torch.no_grad():
            s = self.module_.score_vectors(gu, mu, len(self.items_))  # type: ignore[operator]
        return s[0].cpu().numpy().astype(np.float32)

    def _fold_in(self, context: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        """User vectors (1, d) fitted to `context` (positives) against the other items
        (negatives, weighted as in training); deterministic, item side frozen."""
        import torch
        import torch.nn.functional as F

        c = self.config
        net: Any = self.module_
        n_items = len(self.items_)
        dev = self.device_
        neg_mask = np.ones(n_items, bool)
        neg_mask[context] = False
        negatives = np.flatnonzero(neg_mask)
        if len(negatives) > 20_000:  # large catalogs: a fixed, seeded sample of negatives
            rng = np.random.default_rng((c.seed, len(context)))
            negatives = np.sort(rng.choice(negatives, 20_000, replace=False))
        items = torch.from_numpy(np.concatenate([context, negatives]).astype(np.int64)).to(dev)
        labels = torch.zeros(len(items), device=dev)
        labels[: len(context)] = 1.0
        weights = torch.full((len(items),), c.n_negatives * len(context) / max(len(negatives), 1))
        weights[: len(context)] = 1.0
        weights = weights.to(dev) / weights.sum()
        with torch.no_grad():
            gu0 = net.gmf_user.weight.mean(0, keepdim=True)
            mu0 = net.mlp_user.weight.mean(0, keepdim=True)
        gu = gu0.clone().requires_grad_(True)
        mu = mu0.clone().requires_grad_(True)
        opt = torch.optim.Adam([gu, mu], lr=0.05)
        with torch.enable_grad():
            for _ in range(c.fold_in_steps):
                logits = net.forward_vectors(
                    gu.expand(len(items), -1), mu.expand(len(items), -1), items
                )
                loss = (
                    F.binary_cross_entropy_with_logits(logits, labels, reduction="none") * weights
                ).sum()
                g1, g2 = torch.autograd.grad(loss, [gu, mu])
                gu.grad, mu.grad = g1, g2
                opt.step()
        return gu.detach(), mu.detach()

    def _item_vectors(self) -> torch.Tensor:
        return self.module_.item_vectors()  # type: ignore[operator]

    # -------------------------------------------------------------- persistence
    def _state(self) -> tuple[dict[str, Any], dict[str, Any]]:
        return self._weights_state(), self._fit_meta()

    def _set_state(self, arrays: Mapping[str, Any], meta: Mapping[str, Any]) -> None:
        self._restore_module(arrays)
        self._restore_fit_meta(meta)


def _sample_negatives(
    m: sp.csr_matrix, users: np.ndarray, n_items: int, rng: np.random.Generator
) -> np.ndarray:
    """Uniform items for each user in `users`, resampled (a few rounds) where they hit one of the
    user's positives; survivors of the last round are kept (rare on sparse data)."""
    neg = rng.integers(0, n_items, size=len(users))
    coo = m.tocoo()
    keys = np.sort(coo.row.astype(np.int64) * n_items + coo.col)
    for _ in range(5):
        cand = users.astype(np.int64) * n_items + neg
        pos = np.searchsorted(keys, cand)
        hit = (pos < len(keys)) & (keys[np.minimum(pos, len(keys) - 1)] == cand)
        if not hit.any():
            break
        neg[hit] = rng.integers(0, n_items, size=int(hit.sum()))
    return neg.astype(np.int64)
