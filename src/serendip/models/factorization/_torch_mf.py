"""One pairwise-ranking trainer for feature-based factorization (torch, CPU, seeded).

Users and items are rows of sparse feature matrices; a row's vector is the weighted sum of its
features' embeddings (LightFM's model). Plain BPR-MF is the special case where every row has
exactly its own identity feature. torch is imported lazily inside `train_feature_mf`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import scipy.sparse as sp

__all__ = ["TrainedFeatureMF", "train_feature_mf"]


@dataclass(frozen=True, slots=True)
class TrainedFeatureMF:
    """Learned embeddings: user_embeddings float32 (n_user_features, k), item_embeddings float32
    (n_item_features, k), item_biases float32 (n_item_features,) (a bias per item feature)."""

    user_embeddings: np.ndarray
    item_embeddings: np.ndarray
    item_biases: np.ndarray


def _is_identity(m: sp.csr_matrix) -> bool:
    n, f = m.shape
    return bool(
        n == f
        and m.nnz == n
        and np.array_equal(m.indices, np.arange(n))
        and np.array_equal(m.indptr, np.arange(n + 1))
        and np.all(m.data == 1.0)
    )


def train_feature_mf(
    user_features: sp.csr_matrix,
    item_features: sp.csr_matrix,
    positives: sp.csr_matrix,
    *,
    factors: int,
    learning_rate: float,
    regularization: float,
    epochs: int,
    batch_size: int,
    negatives: int,
    loss: Literal["bpr", "warp"] = "bpr",
    seed: int = 42,
    init_std: float = 0.1,
    num_threads: int = 1,
    progress: Callable[[int, int], None] | None = None,
) -> TrainedFeatureMF:
    """Learn feature embeddings from positive (user, item) pairs by sampled pairwise ranking.

    user_features: float32 (n_users, n_user_features) weights; item_features: float32
    (n_items, n_item_features); positives: (n_users, n_items), every stored entry one positive
    pair. Each epoch visits every positive once in a seeded random order; each positive draws
    `negatives` items uniformly from the catalog. Losses: "bpr" (mean of -log sigmoid(s_ui - s_uj)
    over the drawn negatives) or "warp" (LightFM's WARP, sampled: hinge on the hardest drawn
    negative, weighted by log(1 + estimated rank) from the share of violating negatives).
    L2 on the batch's user and item vectors with weight `regularization`; Adam. Deterministic
    under `seed` (own torch.Generator). `progress(epoch, epochs)` is called after every epoch.

    num_threads: torch intra-op threads while training (0 = leave torch's setting). The ops here
    are small (a batch of embedding rows); splitting them over threads costs more in barriers
    than it gains, and on a busy 2-core machine it is ~15x slower than one thread. The previous
    setting is restored on return.
    """
    import torch

    previous = torch.get_num_threads()
    if num_threads > 0:
        torch.set_num_threads(num_threads)
    try:
        return _train(
            torch,
            user_features,
            item_features,
            positives,
            factors=factors,
            learning_rate=learning_rate,
            regularization=regularization,
            epochs=epochs,
            batch_size=batch_size,
            negatives=negatives,
            loss=loss,
            seed=seed,
            init_std=init_std,
            progress=progress,
        )
    finally:
        torch.set_num_threads(previous)


def _train(
    torch: Any,
    user_features: sp.csr_matrix,
    item_features: sp.csr_matrix,
    positives: sp.csr_matrix,
    *,
    factors: int,
    learning_rate: float,
    regularization: float,
    epochs: int,
    batch_size: int,
    negatives: int,
    loss: str,
    seed: int,
    init_std: float,
    progress: Callable[[int, int], None] | None,
) -> TrainedFeatureMF:
    F = torch.nn.functional

    gen = torch.Generator().manual_seed(int(seed))
    n_items = item_features.shape[0]
    coo = positives.tocoo()
    pos_u = torch.from_numpy(coo.row.astype(np.int64))
    pos_i = torch.from_numpy(coo.col.astype(np.int64))
    n_pos = len(pos_u)

    def tensors(m: sp.csr_matrix) -> tuple[Any, Any, Any] | None:
        if _is_identity(m):
            return None
        return (
            torch.from_numpy(m.indptr.astype(np.int64)),
            torch.from_numpy(m.indices.astype(np.int64)),
            torch.from_numpy(m.data.astype(np.float32)),
        )

    u_csr, i_csr = tensors(user_features), tensors(item_features)
    user_emb = torch.empty(user_features.shape[1], factors)
    item_emb = torch.empty(item_features.shape[1], factors)
    user_emb.normal_(0.0, init_std, generator=gen)
    item_emb.normal_(0.0, init_std, generator=gen)
    item_bias = torch.zeros(item_features.shape[1], 1)
    params = [torch.nn.Parameter(t) for t in (user_emb, item_emb, item_bias)]
    user_emb, item_emb, item_bias = params
    opt = torch.optim.Adam(params, lr=learning_rate)

    def bag(table: Any, csr: tuple[Any, Any, Any] | None, rows: Any) -> Any:
        """Weighted sum of the feature embeddings of `rows` (one vector per row)."""
        if csr is None:  # identity features: row r is feature r
            return F.embedding(rows, table)
        indptr, indices, data = csr
        starts = indptr[rows]
        lens = indptr[rows + 1] - starts
        offsets = torch.cumsum(lens, 0) - lens
        flat = torch.repeat_interleave(starts - offsets, lens) + torch.arange(int(lens.sum()))
        vals = F.embedding(indices[flat], table) * data[flat][:, None]
        seg = torch.repeat_interleave(torch.arange(len(rows)), lens)
        return torch.zeros(len(rows), table.shape[1]).index_add(0, seg, vals)

    for epoch in range(epochs):
        order = torch.randperm(n_pos, generator=gen)
        for start in range(0, n_pos, batch_size):
            idx = order[start : start + batch_size]
            u, i = pos_u[idx], pos_i[idx]
            b = len(idx)
            j = torch.randint(0, n_items, (b * negatives,), generator=gen)
            eu = bag(user_emb, u_csr, u)
            ei = bag(item_emb, i_csr, i)
            ej = bag(item_emb, i_csr, j).view(b, negatives, factors)
            si = (eu * ei).sum(-1) + bag(item_bias, i_csr, i).view(b)
            sj = (eu[:, None, :] * ej).sum(-1) + bag(item_bias, i_csr, j).view(b, negatives)
            if loss == "bpr":
                rank_loss = F.softplus(sj - si[:, None]).mean()
            else:
                with torch.no_grad():
                    violating = (sj > si[:, None] - 1.0).sum(1).float()
                    weight = torch.log1p(torch.floor(violating * (n_items - 1) / negatives))
                hardest = sj.max(1).values
                rank_loss = (weight * torch.relu(1.0 - si + hardest)).mean()
            penalty = (
                (eu * eu).sum(-1) + (ei * ei).sum(-1) + (ej * ej).sum(-1).mean(-1)
            ).mean() * regularization
            opt.zero_grad()
            (rank_loss + penalty).backward()
            opt.step()
        if progress is not None:
            progress(epoch + 1, epochs)
    return TrainedFeatureMF(
        user_embeddings=user_emb.detach().numpy().astype(np.float32),
        item_embeddings=item_emb.detach().numpy().astype(np.float32),
        item_biases=item_bias.detach().numpy()[:, 0].astype(np.float32),
    )
