"""One pairwise-ranking trainer for feature-based factorization (numpy, CPU, seeded).

Users and items are rows of sparse feature matrices; a row's vector is the weighted sum of its
features' embeddings (LightFM's model). Plain BPR-MF is the special case where every row has
exactly its own identity feature (rows are then gathered, not multiplied).

The trainer is vectorised minibatch Adam with hand-written gradients (`_gradients`, checked
against finite differences in the tests): a batch of positive (user, item) pairs is cut into
small groups of positives and each group shares its draw of `negatives` items, so a group's
scores against its negatives are one small matrix product. Gradients of rows or features that
occur several times in a batch are summed (sparse products), as autograd would. It replaced a
torch autograd loop with the same losses and optimiser (a draw per positive) that was 10-15x
slower on MovieLens 100K; the module keeps its old name, which its importers use.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import scipy.sparse as sp

__all__ = ["TrainedFeatureMF", "group_size_for", "train_feature_mf"]


def group_size_for(negatives: int) -> int:
    """Positives of a batch that share one draw of `negatives` items: negatives // 2, from 1 to
    16, so a batch still draws two negatives per positive. Sharing makes the scores a batched
    matrix product, but a small draw shared widely adds variance. MovieLens 100K validation
    (bench_models' carve, NDCG@10, mean over seeds 42, 1, 2): BPR's defaults (16 negatives)
    0.2608 with a draw per positive, 0.2620 with groups of 8, 0.2610 of 16, at ~13, 3.3 and
    3.0 CPU s; the LightFM-style model's defaults (8 negatives) 0.2614 with a draw per positive,
    0.2592 with groups of 4 (0.2597 over four seeds), 0.2568 of 16.
    """
    return max(1, min(16, negatives // 2))


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


class _Side:
    """Users or items: row r's vector is features[r] @ table. Identity features (every row its
    own feature) are kept as None: rows are then gathered and gradients scattered directly."""

    def __init__(self, features: sp.csr_matrix) -> None:
        m = sp.csr_matrix(features, dtype=np.float32)
        self.features: sp.csr_matrix | None = None if _is_identity(m) else m
        self.n_rows, self.n_features = int(m.shape[0]), int(m.shape[1])

    def pick(self, rows: np.ndarray) -> sp.csr_matrix | None:
        """The feature rows of `rows`, (len(rows), n_features); None for identity features."""
        return None if self.features is None else self.features[rows]

    @staticmethod
    def vectors(
        rows: np.ndarray, picked: sp.csr_matrix | None, table: np.ndarray, out: np.ndarray
    ) -> np.ndarray:
        """`out` (len(rows), ...) set to the vectors of `rows` (`picked`: their `pick(rows)`)."""
        if picked is None:
            return np.take(table, rows, axis=0, out=out)
        out[:] = picked @ table
        return out

    def gradient(
        self, rows: np.ndarray, picked: sp.csr_matrix | None, grads: np.ndarray
    ) -> np.ndarray:
        """(n_features, ...) gradient of the table from per-row gradients (len(rows), ...): each
        feature gets the weighted sum over the rows that carry it (duplicates accumulate)."""
        if picked is not None:
            return np.asarray(picked.T @ grads, dtype=grads.dtype)
        if grads.ndim == 1:
            return np.bincount(rows, grads, self.n_features).astype(grads.dtype)
        onehot = sp.csc_matrix(  # a sparse product: far faster than np.add.at
            (np.ones(len(rows), grads.dtype), rows, np.arange(len(rows) + 1)),
            shape=(self.n_features, len(rows)),
        )
        return np.asarray(onehot @ grads, dtype=grads.dtype)


class _Adam:
    """Adam (Kingma & Ba) on float32 parameters that are views into one flat buffer, updated in
    place: every row moves every step (as torch's dense Adam does), its moments decaying where
    the gradient is zero. Gradients are written into `grads` (same layout) before `step`."""

    def __init__(self, shapes: list[tuple[int, ...]], lr: float) -> None:
        sizes = [int(np.prod(s)) for s in shapes]
        starts = np.cumsum([0, *sizes])
        self.flat = np.zeros(int(starts[-1]), np.float32)
        self.grad = np.zeros_like(self.flat)
        cuts = [(int(starts[n]), int(starts[n + 1]), shape) for n, shape in enumerate(shapes)]
        self.params = [self.flat[a:b].reshape(shape) for a, b, shape in cuts]
        self.grads = [self.grad[a:b].reshape(shape) for a, b, shape in cuts]
        self.m = np.zeros_like(self.flat)
        self.v = np.zeros_like(self.flat)
        self.tmp = np.zeros_like(self.flat)
        self.lr, self.b1, self.b2, self.eps = lr, 0.9, 0.999, 1e-8
        self.t = 0

    def step(self) -> None:
        """p -= lr m_hat / (sqrt(v_hat) + eps), computed in place as
        p -= (lr c2 / c1) m / (sqrt(v) + eps c2), c1 = 1 - b1^t, c2 = sqrt(1 - b2^t)."""
        self.t += 1
        b1, b2, g, tmp = self.b1, self.b2, self.grad, self.tmp
        c1, c2 = 1.0 - b1**self.t, float(np.sqrt(1.0 - b2**self.t))
        np.multiply(g, 1.0 - b1, out=tmp)
        self.m *= b1
        self.m += tmp
        np.multiply(g, g, out=tmp)
        tmp *= 1.0 - b2
        self.v *= b2
        self.v += tmp
        np.sqrt(self.v, out=tmp)
        tmp += self.eps * c2
        np.divide(self.m, tmp, out=tmp)
        tmp *= self.lr * c2 / c1
        self.flat -= tmp


class _Buffers:
    """The large per-step arrays of `_gradients`, allocated once. Fresh temporaries of a few
    hundred KB every step can make glibc's malloc hand memory back to the OS and fault it in
    again the next step (measured: 4.3 million page faults and twice the time for BPR on
    MovieLens 100K with groups of 8)."""

    def __init__(self, batch: int, drawn: int, k: int, dtype: np.dtype[Any]) -> None:
        self.eu = np.empty((batch, k), dtype)
        self.g_user = np.empty((batch, k), dtype)
        self.e_items = np.empty((batch + drawn, k), dtype)  # positives' items, then negatives
        self.b_items = np.empty(batch + drawn, dtype)
        self.g_items = np.empty((batch + drawn, k), dtype)
        self.tmp = np.empty((batch + drawn, k), dtype)


def _gradients(
    users: _Side,
    items: _Side,
    params: list[np.ndarray],
    u: np.ndarray,
    i: np.ndarray,
    j: np.ndarray,
    *,
    loss: str,
    regularization: float,
    out: list[np.ndarray],
    work: _Buffers | None = None,
) -> None:
    """Write into `out` the gradients, with respect to `params` (user table, item table, item
    bias per feature), of one batch's objective. u, i: (G * P,) positives, positive b in group
    b // P; j: (G, N) the negatives each group shares. s = e_u . e_i + b_i; the objective is

    - "bpr": mean over positives b and their group's negatives n of softplus(s_bn - s_b);
    - "warp": mean over b of w_b relu(1 - s_b + max_n s_bn), w_b = log(1 + floor(V_b (I - 1) /
      N)), V_b the negatives with s_bn > s_b - 1, I the catalogue size (held constant);

    plus `regularization` x (mean_b |e_u|^2 + mean_b |e_i|^2 + mean_{g,n} |e_j|^2).
    `work`: scratch arrays of this batch's shape and the tables' dtype (None: allocated here).
    """
    user_t, item_t, bias_t = params
    groups, negatives = j.shape
    batch, k = len(u), user_t.shape[1]
    per_group = batch // groups
    rows_i = np.concatenate([i, j.reshape(-1)])
    drawn = groups * negatives
    w = _Buffers(batch, drawn, k, user_t.dtype) if work is None else work
    picked_u, picked_i = users.pick(u), items.pick(rows_i)
    eu = users.vectors(u, picked_u, user_t, w.eu)
    e_items = items.vectors(rows_i, picked_i, item_t, w.e_items)
    b_items = items.vectors(rows_i, picked_i, bias_t, w.b_items)
    ei, ej = e_items[:batch], e_items[batch:].reshape(groups, negatives, k)
    eu_g = eu.reshape(groups, per_group, k)
    s_pos = np.einsum("bk,bk->b", eu, ei) + b_items[:batch]
    s_neg = np.matmul(eu_g, ej.transpose(0, 2, 1)) + b_items[batch:].reshape(groups, 1, negatives)
    diff = s_neg - s_pos.reshape(groups, per_group, 1)  # (G, P, N)
    if loss == "bpr":
        # d softplus(x)/dx = sigmoid(x), x the 1/(B N) of the mean
        g = (1.0 / (batch * negatives)) / (1.0 + np.exp(-np.clip(diff, -30.0, 30.0)))
    else:
        violating = (diff > -1.0).sum(axis=2)
        weight = np.log1p(np.floor(violating * (items.n_rows - 1) / negatives))
        hardest = diff.argmax(axis=2)  # (G, P)
        active = 1.0 + np.take_along_axis(diff, hardest[:, :, None], 2)[:, :, 0] > 0.0
        g = np.zeros_like(diff)
        np.put_along_axis(
            g, hardest[:, :, None], (weight * active / batch)[:, :, None].astype(g.dtype), 2
        )
    g_pos = g.sum(axis=2).reshape(batch, 1)  # -d/ds_b
    g_drawn = g.sum(axis=1).reshape(-1)  # d/ds of each drawn negative
    reg_rows = 2.0 * regularization / batch  # d/de of reg x mean_b |e|^2
    reg_drawn = 2.0 * regularization / drawn  # ... of reg x mean_{g,n} |e_j|^2
    tmp_b, tmp_d = w.tmp[:batch], w.tmp[batch:]
    # users: sum_n g_bn e_jn - g_b e_i + reg' e_u
    g_user = np.matmul(g, ej, out=w.g_user.reshape(groups, per_group, k)).reshape(batch, k)
    g_user -= np.multiply(ei, g_pos, out=tmp_b)
    g_user += np.multiply(eu, reg_rows, out=tmp_b)
    # positives' items: -g_b e_u + reg' e_i; drawn negatives: sum_p g_pn e_up + reg'' e_j
    g_items = w.g_items
    np.multiply(ei, reg_rows, out=g_items[:batch])
    np.multiply(e_items[batch:], reg_drawn, out=g_items[batch:])
    g_items[:batch] -= np.multiply(eu, g_pos, out=tmp_b)
    g_items[batch:] += np.matmul(
        g.transpose(0, 2, 1), eu_g, out=tmp_d.reshape(groups, negatives, k)
    ).reshape(drawn, k)
    grad_u, grad_i, grad_b = out
    grad_u[:] = users.gradient(u, picked_u, g_user)
    grad_i[:] = items.gradient(rows_i, picked_i, g_items)
    grad_b[:] = items.gradient(rows_i, picked_i, np.concatenate([-g_pos[:, 0], g_drawn]))


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
    group_size: int | None = None,
) -> TrainedFeatureMF:
    """Learn feature embeddings from positive (user, item) pairs by sampled pairwise ranking.

    user_features: float32 (n_users, n_user_features) weights; item_features: float32
    (n_items, n_item_features); positives: (n_users, n_items), every stored entry one positive
    pair. Each epoch visits every positive once in a seeded random order (the last batch wraps
    around to fill its groups); each positive is ranked against `negatives` items drawn
    uniformly from the catalog, shared by its group of `group_size` positives in the batch
    (None: `group_size_for(negatives)`).
    Losses: "bpr" (mean of -log sigmoid(s_ui - s_uj) over the drawn negatives) or "warp"
    (LightFM's WARP, sampled: hinge on the hardest drawn negative, weighted by
    log(1 + estimated rank) from the share of violating negatives). L2 on the batch's user and
    item vectors with weight `regularization`; Adam. Deterministic under `seed` (numpy's
    generator). `progress(epoch, epochs)` is called after every epoch.

    num_threads: BLAS threads while training (0 = leave the setting as it is). The products
    are small; splitting them over threads costs more in barriers than it gains.
    """
    from threadpoolctl import threadpool_limits

    if loss not in ("bpr", "warp"):
        raise ValueError(f"unknown loss {loss!r}; expected 'bpr' or 'warp'")
    rng = np.random.default_rng(int(seed))
    users, items = _Side(user_features), _Side(item_features)
    n_items = items.n_rows
    adam = _Adam(
        [(users.n_features, factors), (items.n_features, factors), (items.n_features,)],
        learning_rate,
    )
    user_t, item_t, bias_t = adam.params
    user_t[:] = rng.normal(0.0, init_std, user_t.shape)
    item_t[:] = rng.normal(0.0, init_std, item_t.shape)
    pos = sp.csr_matrix(positives)
    pos_u = np.repeat(np.arange(pos.shape[0], dtype=np.int64), np.diff(pos.indptr))
    pos_i = pos.indices.astype(np.int64)
    n_pos = len(pos_u)
    per_group = group_size_for(negatives) if group_size is None else group_size
    per_group = max(1, min(per_group, batch_size, n_pos))
    groups = max(1, min(batch_size, n_pos) // per_group)
    batch = groups * per_group
    steps = -(-n_pos // batch) if n_items else 0
    work = _Buffers(batch, groups * negatives, factors, user_t.dtype)
    with threadpool_limits(num_threads or None, "blas"):
        for epoch in range(epochs):
            if steps:
                order = np.resize(rng.permutation(n_pos), steps * batch)
            for s in range(steps):
                take = order[s * batch : (s + 1) * batch]
                _gradients(
                    users,
                    items,
                    adam.params,
                    pos_u[take],
                    pos_i[take],
                    rng.integers(0, n_items, (groups, negatives)),
                    loss=loss,
                    regularization=regularization,
                    out=adam.grads,
                    work=work,
                )
                adam.step()
            if progress is not None:
                progress(epoch + 1, epochs)
    return TrainedFeatureMF(
        user_embeddings=user_t.copy(), item_embeddings=item_t.copy(), item_biases=bias_t.copy()
    )
