"""SASRec: self-attentive sequential recommendation (Kang & McAuley 2018).

A causal transformer reads each user's items in time order and predicts the next one. Training
uses a full softmax over the catalog (cross-entropy, as in gSASRec's findings) when the catalog
holds at most `full_softmax_max_items` items, else a sampled softmax with `n_negatives` uniform
negatives shared by the batch. Recommendation always ranks the full catalog.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import pandas as pd
from pydantic import Field

from serendip.data.dataset import Dataset
from serendip.models.base import (
    Evidence,
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
    fold_in_seen,
)

if TYPE_CHECKING:
    import torch

__all__ = ["SASRec", "SASRecConfig"]


class SASRecConfig(DeepConfig):
    """dim: embedding and hidden size; blocks, heads: transformer depth and heads (dim % heads
    == 0); max_len: how many of the newest items a user is read by; full_softmax_max_items:
    catalogs up to this size train with a full softmax, larger ones with a sampled softmax over
    `n_negatives` uniform negatives per batch."""

    dim: int = Field(default=64, ge=2)
    blocks: int = Field(default=2, ge=1)
    heads: int = Field(default=1, ge=1)
    max_len: int = Field(default=200, ge=2)
    dropout: float = Field(default=0.5, ge=0, lt=1)
    full_softmax_max_items: int = Field(default=50_000, ge=1)
    n_negatives: int = Field(default=256, ge=1)
    epochs: int = Field(default=100, ge=1)
    batch_size: int = Field(default=128, ge=1)
    lr: float = Field(default=1e-3, gt=0)
    weight_decay: float = Field(default=0.0, ge=0)
    patience: int = Field(default=5, ge=1)
    ema_decay: float = Field(default=0.8, ge=0, lt=1)


@dataclass(frozen=True, slots=True)
class _Windows:
    """Training windows: int64 tokens (n, max_len + 1), item + 1, 0 = left padding; and the
    per-user sequences they came from (for validation scoring)."""

    tokens: np.ndarray
    seqs: list[np.ndarray]


class SASRec(TorchRecommender[SASRecConfig]):
    """Transformer over the user's time-ordered items; score = last hidden state . item embedding.

    Known users are read by their training sequence (plus events folded in by `update`); an
    unknown user by the context items in the order given (empty -> popularity).
    Explanations: the sequence items the last position attends to most (last block, mean over
    heads).
    """

    name = "sasrec"
    description = "Self-attentive sequential transformer, torch."
    Config: ClassVar[type[ModelConfig]] = SASRecConfig
    supports_update = True
    _carve_last = True
    search_space: ClassVar[SearchSpace] = {
        "dim": IntRange(32, 128, log=True),
        "blocks": IntRange(1, 3),
        "max_len": IntRange(20, 200, log=True),
        "dropout": FloatRange(0.0, 0.5),
        "lr": FloatRange(3e-4, 3e-3, log=True),
    }
    quick_params: ClassVar[Mapping[str, Any]] = {
        "dim": 16,
        "blocks": 1,
        "max_len": 20,
        "epochs": 5,
        "batch_size": 32,
    }

    # -------------------------------------------------------------- hooks
    def _build(self) -> torch.nn.Module:
        from serendip.errors import ConfigError
        from serendip.models.deep._nets import SASRecNet

        c = self.config
        if c.dim % c.heads:
            raise ConfigError(f"sasrec: dim ({c.dim}) must be a multiple of heads ({c.heads})")
        return SASRecNet(len(self.items_), c.dim, c.blocks, c.heads, c.max_len, c.dropout)

    def _estimate_bytes(self, dataset: Dataset) -> tuple[float, str]:
        c = self.config
        n_items = dataset.n_items
        width = n_items if n_items <= c.full_softmax_max_items else c.n_negatives
        logits = c.batch_size * c.max_len * width * 4.0 * 3  # logits, softmax, gradient
        attention = c.batch_size * c.heads * c.max_len**2 * 4.0 * 3 * c.blocks
        params = (n_items + 1) * c.dim * ADAM_BYTES
        return params + logits + attention, f"{c.batch_size}x{c.max_len}x{width} logits"

    def _prepare(self, seqs: list[np.ndarray]) -> _Windows:
        L = self.config.max_len + 1
        rows = []
        for s in seqs:
            end = len(s)
            while end >= 2:  # non-overlapping windows from the newest item backwards
                w = s[max(0, end - L) : end] + 1
                rows.append(np.r_[np.zeros(L - len(w), np.int64), w])
                end -= L - 1
        tokens = np.vstack(rows) if rows else np.zeros((0, L), np.int64)
        return _Windows(tokens.astype(np.int64), seqs)

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
        n_items = len(self.items_)
        tokens = data.tokens[rng.permutation(len(data.tokens))]
        net: Any = module
        total, n = 0.0, 0
        for sl in batched(len(tokens), c.batch_size):
            batch = torch.from_numpy(tokens[sl]).to(self.device_)
            inp, tgt = batch[:, :-1], batch[:, 1:]
            hidden, _ = net.encode(inp)
            real = tgt > 0
            h = hidden[real]  # (t, dim): positions with a real next item
            target = tgt[real] - 1
            if n_items <= c.full_softmax_max_items:
                logits = h @ net.item_weights().T
                loss = F.cross_entropy(logits, target)
            else:
                neg = torch.from_numpy(rng.integers(0, n_items, c.n_negatives)).to(self.device_)
                w = net.item_weights()
                pos_logit = (h * w[target]).sum(-1, keepdim=True)
                neg_logit = h @ w[neg].T
                neg_logit = neg_logit.masked_fill(neg[None, :] == target[:, None], float("-inf"))
                logits = torch.cat([pos_logit, neg_logit], dim=1)
                loss = F.cross_entropy(logits, torch.zeros_like(target))
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total += float(loss.detach()) * int(real.sum())
            n += int(real.sum())
        return total / max(n, 1)

    def _score_users_with(
        self, module: torch.nn.Module, data: Any, user_idx: np.ndarray
    ) -> np.ndarray:
        return self._score_sequences(module, [data.seqs[u] for u in user_idx])

    def _score_sequences(self, module: Any, seqs: list[np.ndarray]) -> np.ndarray:
        """float32 (len(seqs), n_items): next-item scores after each sequence; popularity for
        empty ones."""
        import torch

        L = self.config.max_len
        n_items = len(self.items_)
        out = np.empty((len(seqs), n_items), np.float32)
        with torch.no_grad():
            w = module.item_weights().T
            for sl in batched(len(seqs), 256):
                part = seqs[sl]
                tokens = _left_pad([s[-L:] + 1 for s in part])
                hidden, _ = module.encode(torch.from_numpy(tokens).to(self.device_))
                out[sl] = (hidden[:, -1] @ w).cpu().numpy()
                empty = [r for r, s in enumerate(part) if len(s) == 0]
                if empty:
                    out[sl][empty] = self.popularity_
        return out

    def _after_fit(self, dataset: Dataset, seqs: list[np.ndarray]) -> None:
        self.seqs_ = list(seqs)

    # -------------------------------------------------------------- the contract
    def _score_warm(self, user_idx: np.ndarray) -> np.ndarray:
        return self._score_sequences(self.module_, [self.seqs_[u] for u in user_idx])

    def _score_cold(self, context: np.ndarray) -> np.ndarray:
        if len(context) == 0:
            return self.popularity_.astype(np.float32)
        return self._score_sequences(self.module_, [np.asarray(context, np.int64)])[0]

    def _explain(self, user_idx: int, item_idx: int) -> tuple[list[Evidence], str]:
        import torch

        seq = self.seqs_[user_idx][-self.config.max_len :]
        if len(seq) == 0:
            return [], ""
        with torch.no_grad():
            tokens = torch.from_numpy((seq + 1)[None, :]).to(self.device_)
            _, att = self.module_.encode(tokens, want_weights=True)
        weights = att[0, -1].cpu().numpy().astype(np.float64)  # attention of the last position
        # an item seen twice in the window is one piece of evidence: sum its attention
        items, inv = np.unique(seq, return_inverse=True)
        per_item = np.bincount(inv, weights=weights, minlength=len(items))
        order = np.argsort(-per_item, kind="stable")[:3]
        ev = [Evidence("item", self.items_.id(int(items[j])), float(per_item[j])) for j in order]
        return ev, f"Because you recently interacted with {ev[0].id}"

    def _item_vectors(self) -> torch.Tensor:
        return self.module_.item_weights()

    def _update(self, events: pd.DataFrame) -> None:
        """Append the events of known users to their sequences in time order (items already in
        a sequence stay where they are)."""
        ts = (
            pd.to_numeric(events["timestamp"], errors="coerce").to_numpy(np.float64)
            if "timestamp" in events
            else np.zeros(len(events))
        )
        u, i = fold_in_seen(self, events)
        known = (self.users_.indices(events["user"].astype(str).to_numpy()) >= 0) & (
            self.items_.indices(events["item"].astype(str).to_numpy()) >= 0
        )
        order = np.lexsort((np.arange(len(u)), np.nan_to_num(ts[known], nan=np.inf)))
        for uu, ii in zip(u[order], i[order], strict=True):
            s = self.seqs_[uu]
            if not (s == ii).any():
                self.seqs_[uu] = np.r_[s, ii].astype(np.int64)

    # -------------------------------------------------------------- persistence
    def _state(self) -> tuple[dict[str, Any], dict[str, Any]]:
        lengths = np.fromiter((len(s) for s in self.seqs_), np.int64, len(self.seqs_))
        arrays = {
            **self._weights_state(),
            "seq_indptr": np.r_[0, np.cumsum(lengths)].astype(np.int64),
            "seq_items": np.concatenate(self.seqs_).astype(np.int64)
            if self.seqs_
            else np.zeros(0, np.int64),
        }
        return arrays, self._fit_meta()

    def _set_state(self, arrays: Mapping[str, Any], meta: Mapping[str, Any]) -> None:
        self._restore_module({k: v for k, v in arrays.items() if k.startswith("w.")})
        self._restore_fit_meta(meta)
        ptr = np.asarray(arrays["seq_indptr"], np.int64)
        items = np.asarray(arrays["seq_items"], np.int64)
        self.seqs_ = [items[ptr[k] : ptr[k + 1]] for k in range(len(ptr) - 1)]


def _left_pad(rows: list[np.ndarray]) -> np.ndarray:
    width = max(1, max((len(r) for r in rows), default=1))
    out = np.zeros((len(rows), width), np.int64)
    for k, r in enumerate(rows):
        if len(r):
            out[k, width - len(r) :] = r
    return out
