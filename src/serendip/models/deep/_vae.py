"""Mult-VAE: variational autoencoder with a multinomial likelihood (Liang et al. 2018).

A user is their bag of items: the encoder maps it to a Gaussian, the decoder to a softmax over the
catalog. Because the model encodes a history vector, an unknown user's context and a known user's
new events are scored by encoding them; no refit needed.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

import numpy as np
import pandas as pd
import scipy.sparse as sp
from pydantic import Field

from serendip.data.dataset import Dataset
from serendip.models.base import (
    Evidence,
    FloatRange,
    IntRange,
    ModelConfig,
    SearchSpace,
    history_of,
)
from serendip.models.deep._common import (
    ADAM_BYTES,
    DeepConfig,
    TorchRecommender,
    batched,
    chunk_rows,
    fold_in_seen,
)

if TYPE_CHECKING:
    import torch

__all__ = ["MultVAE", "MultVAEConfig", "VAEModel"]


class MultVAEConfig(DeepConfig):
    """hidden: encoder layer sizes (the decoder mirrors them); latent: size of z; dropout: on the
    normalised input (the paper's 0.5); anneal_cap: the largest KL weight beta; anneal_epochs:
    epochs over which beta rises linearly from 0 to the cap (0 = the cap from the start).

    Defaults: the paper's architecture and dropout (Liang et al. 2018); a tuning on ML100K
    validation gained no more than one carving's noise (docs/research-log.md, Mult-VAE tuning)."""

    hidden: tuple[int, ...] = (600,)
    latent: int = Field(default=200, ge=1)
    dropout: float = Field(default=0.5, ge=0, lt=1)
    anneal_cap: float = Field(default=0.5, ge=0)
    anneal_epochs: int = Field(default=20, ge=0)
    epochs: int = Field(default=150, ge=1)
    batch_size: int = Field(default=100, ge=1)
    lr: float = Field(default=3e-3, gt=0)
    weight_decay: float = Field(default=0.0, ge=0)
    patience: int = Field(default=15, ge=1)
    ema_decay: float = Field(default=0.95, ge=0, lt=1)


VAEConfigT = TypeVar("VAEConfigT", bound=DeepConfig)


class VAEModel(TorchRecommender[VAEConfigT]):
    """What Mult-VAE and RecVAE share; they differ in their nets and training.

    Scores of a user = decoder(mean of the encoded history) over the full catalog.
    Cold users: their context items are encoded the same way (empty -> popularity).
    `update` folds new events into the history matrix; they count at the next score.
    Explanations: the history items with the largest input x gradient attribution.
    """

    supports_update = True

    def _score_users_with(
        self, module: torch.nn.Module, data: Any, user_idx: np.ndarray
    ) -> np.ndarray:
        return self._score_rows(module, data[user_idx])

    def _score_rows(self, module: Any, rows: sp.csr_matrix) -> np.ndarray:
        import torch

        n_items = rows.shape[1]
        out = np.empty(rows.shape, np.float32)
        with torch.no_grad():
            for sl in batched(rows.shape[0], chunk_rows(rows.shape[0], n_items)):
                x = torch.from_numpy(rows[sl].toarray()).to(self.device_)
                logits, _, _ = module(x)
                out[sl] = logits.cpu().numpy()
        return out

    # -------------------------------------------------------------- the contract
    def _score_warm(self, user_idx: np.ndarray) -> np.ndarray:
        return self._score_rows(self.module_, self.train_[user_idx])

    def _score_cold(self, context: np.ndarray) -> np.ndarray:
        if len(context) == 0:
            return self.popularity_.astype(np.float32)
        return self._score_rows(self.module_, self._context_row(context))[0]

    def _context_row(self, context: np.ndarray) -> sp.csr_matrix:
        idx = np.unique(context)
        return sp.csr_matrix(
            (np.ones(len(idx), np.float32), (np.zeros(len(idx), np.int64), idx)),
            shape=(1, len(self.items_)),
        )

    def _explain(self, user_idx: int, item_idx: int) -> tuple[list[Evidence], str]:
        import torch

        hist = history_of(self.train_, user_idx)
        if len(hist) == 0:
            return [], ""
        x = torch.from_numpy(self.train_[user_idx].toarray()).to(self.device_)
        x.requires_grad_(True)
        with torch.enable_grad():
            logits, _, _ = self.module_(x)
            (grad,) = torch.autograd.grad(logits[0, item_idx], [x])
        attribution = (grad * x)[0].detach().cpu().numpy()[hist].astype(np.float64)
        order = np.argsort(-attribution, kind="stable")[:3]
        ev = [
            Evidence("item", self.items_.id(int(hist[j])), float(attribution[j]))
            for j in order
            if attribution[j] > 0
        ]
        return ev, (f"Because you interacted with {ev[0].id}" if ev else "")

    def _item_vectors(self) -> torch.Tensor:
        return self.module_.to_items.weight

    def _update(self, events: pd.DataFrame) -> None:
        fold_in_seen(self, events)

    # -------------------------------------------------------------- persistence
    def _state(self) -> tuple[dict[str, Any], dict[str, Any]]:
        return self._weights_state(), self._fit_meta()

    def _set_state(self, arrays: Mapping[str, Any], meta: Mapping[str, Any]) -> None:
        self._restore_module(arrays)
        self._restore_fit_meta(meta)


class MultVAE(VAEModel[MultVAEConfig]):
    """Mult-VAE with KL annealing (beta capped at `anneal_cap`) and input dropout; scoring,
    cold start, updates and explanations as `VAEModel`."""

    name = "multvae"
    description = "Variational autoencoder with multinomial likelihood, torch."
    Config: ClassVar[type[ModelConfig]] = MultVAEConfig
    search_space: ClassVar[SearchSpace] = {
        "latent": IntRange(32, 400, log=True),
        "dropout": FloatRange(0.2, 0.8),
        "anneal_cap": FloatRange(0.05, 1.0, log=True),
        "lr": FloatRange(3e-4, 3e-3, log=True),
        "weight_decay": FloatRange(1e-7, 1e-3, log=True),
    }
    quick_params: ClassVar[Mapping[str, Any]] = {
        "hidden": (32,),
        "latent": 8,
        "epochs": 5,
        "batch_size": 32,
        "anneal_epochs": 2,
    }

    # -------------------------------------------------------------- hooks
    def _build(self) -> torch.nn.Module:
        from serendip.models.deep._nets import VAENet

        c = self.config
        return VAENet(len(self.items_), c.hidden, c.latent, c.dropout)

    def _estimate_bytes(self, dataset: Dataset) -> tuple[float, str]:
        c = self.config
        n_items = dataset.n_items
        width = c.hidden[0] if c.hidden else c.latent
        params = 2 * n_items * width * ADAM_BYTES * (2 if c.ema_decay > 0 else 1)
        activations = c.batch_size * n_items * 4.0 * 6  # dense input, logits, their gradients
        return params + activations, f"{n_items} items x {width} hidden units"

    def _train_epoch(
        self,
        module: torch.nn.Module,
        optimizer: torch.optim.Optimizer,
        data: Any,
        epoch: int,
        rng: np.random.Generator,
    ) -> float:
        import torch

        c = self.config
        m: sp.csr_matrix = data
        users = np.flatnonzero(np.diff(m.indptr) > 0)
        users = users[rng.permutation(len(users))]
        steps = -(-len(users) // c.batch_size)
        total, n = 0.0, 0
        for b, sl in enumerate(batched(len(users), c.batch_size)):
            progress = (epoch * steps + b) / max(c.anneal_epochs * steps, 1)
            beta = c.anneal_cap * min(1.0, progress) if c.anneal_epochs else c.anneal_cap
            x = torch.from_numpy(m[users[sl]].toarray()).to(self.device_)
            logits, mu, logvar = module(x)
            nll = -(torch.log_softmax(logits, dim=1) * x).sum(1).mean()
            kl = -0.5 * (1 + logvar - mu.pow(2) - logvar.exp()).sum(1).mean()
            loss = nll + beta * kl
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total += float(loss.detach()) * (sl.stop - sl.start)
            n += sl.stop - sl.start
        return total / max(n, 1)
