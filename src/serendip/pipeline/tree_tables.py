"""The ranker's trees as lookup tables: LightGBM's prediction without its per-call cost.

A serving request scores a couple of hundred candidates with every member of the ranker, and
LightGBM's `predict` walks each of the ~1,000 trees of the default recipe (3 leaves) for each
row, per member call. A tree that reads at most two features is a step function of those
features' bins (the intervals between the model's thresholds on each feature), so all the trees
that read the same pair of features -- or the same single feature -- sum into one table over
their bins. A prediction is then one `searchsorted` per feature and one table lookup per row and
table: a few dozen NumPy calls whatever the number of trees and members.

The result is LightGBM's: a row falls in the same leaf of every tree (`x <= threshold` decided
on the bins, a NaN read as 0 as LightGBM does without missing-value handling); only the order in
which the leaf values are added differs (the last bits of a float64). A model LightGBM treats
otherwise -- a tree reading more than two features, categorical splits, missing-value handling
(`missing_type` Zero or NaN), linear trees -- is not compiled (`TreeTables.compile` gives None)
and its caller keeps LightGBM; nor is one whose tables would hold more than `_MAX_CELLS`.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np

__all__ = ["TreeTables"]

#: Rows scored per chunk: bounds the (rows x tables) index matrix of a large batch.
_CHUNK = 4096
#: Most table cells compiled (32 MB of float64); a model needing more is left to LightGBM.
_MAX_CELLS = 1 << 22


@dataclass(frozen=True, slots=True)
class _Tree:
    """One tree of LightGBM's text model. Children: >= 0 an internal node, < 0 the leaf ~c."""

    feature: np.ndarray  # int64 per internal node
    threshold: np.ndarray  # float64 per internal node
    decision: np.ndarray  # int64 per internal node (LightGBM's decision_type bits)
    left: np.ndarray
    right: np.ndarray
    leaf_value: np.ndarray  # float64 per leaf
    n_cat: int
    linear: bool


def _parse(text: str) -> Iterator[_Tree]:
    """The trees of one LightGBM text model, in order."""
    body = text.split("\nend of trees", 1)[0]
    for block in body.split("\nTree=")[1:]:
        fields = dict(line.split("=", 1) for line in block.splitlines()[1:] if "=" in line)

        def ints(key: str, f: dict[str, str] = fields) -> np.ndarray:
            return np.array(f.get(key, "").split(), dtype=np.int64)

        yield _Tree(
            feature=ints("split_feature"),
            threshold=np.array(fields.get("threshold", "").split(), dtype=np.float64),
            decision=ints("decision_type"),
            left=ints("left_child"),
            right=ints("right_child"),
            leaf_value=np.array(fields["leaf_value"].split(), dtype=np.float64),
            n_cat=int(fields.get("num_cat", "0")),
            linear=fields.get("is_linear", "0") not in ("0", ""),
        )


def _plain(tree: _Tree) -> bool:
    """Numerical `<=` splits only, no missing-value handling (decision_type bit 0: categorical,
    bits 2-3: missing type), no linear leaves, at most two features."""
    categorical = (tree.decision & 1).astype(bool)
    missing = (tree.decision >> 2) & 3
    return (
        tree.n_cat == 0
        and not tree.linear
        and not categorical.any()
        and not missing.any()
        and len(set(tree.feature.tolist())) <= 2
    )


@dataclass(frozen=True, slots=True, eq=False)
class TreeTables:
    """The sum of an ensemble's trees as one table per feature pair.

    thresholds: per feature column, the sorted distinct thresholds of the model on it (empty:
    unused); a value's bin is `searchsorted(thresholds, x, "left")`, so `x <= t_k` holds exactly
    when bin <= k. Table j reads columns `first[j]` and `second[j]` (`second` = the last, always
    0 bin for a one-feature table) at `offset[j] + bin_first * stride[j] + bin_second` in
    `values`. bias: the sum of the trees without a split.
    """

    thresholds: tuple[np.ndarray, ...]
    first: np.ndarray
    second: np.ndarray
    stride: np.ndarray
    offset: np.ndarray
    values: np.ndarray
    bias: float

    @classmethod
    def compile(cls, models: Sequence[str], n_features: int) -> TreeTables | None:
        """Tables of the sum of every tree of `models` (LightGBM text models over the same
        `n_features` columns); None where a tree is not a plain numerical one of at most two
        features (see the module docstring)."""
        trees = [t for text in models for t in _parse(text)]
        if not all(_plain(t) for t in trees):
            return None
        if any(len(t.feature) and int(t.feature.max()) >= n_features for t in trees):
            return None
        cuts: list[set[float]] = [set() for _ in range(n_features)]
        for t in trees:
            for f, thr in zip(t.feature.tolist(), t.threshold.tolist(), strict=True):
                cuts[f].add(thr)
        thresholds = tuple(np.array(sorted(c), np.float64) for c in cuts)
        pairs = {_columns(t, n_features) for t in trees if len(t.feature)}
        cells = sum(
            (len(thresholds[a]) + 1) * (len(thresholds[b]) + 1 if b < n_features else 1)
            for a, b in pairs
        )
        if cells > _MAX_CELLS:
            return None
        tables: dict[tuple[int, int], np.ndarray] = {}
        bias = 0.0
        for t in trees:
            if len(t.feature) == 0:  # a single leaf
                bias += float(t.leaf_value[0])
                continue
            a, b = _columns(t, n_features)
            shape = (len(thresholds[a]) + 1, len(thresholds[b]) + 1 if b < n_features else 1)
            table = tables.setdefault((a, b), np.zeros(shape, np.float64))
            table += _tree_grid(t, thresholds, a, b, shape)
        keys = sorted(tables)
        sizes = [tables[k].size for k in keys]
        return cls(
            thresholds=thresholds,
            first=np.array([k[0] for k in keys], np.int64),
            second=np.array([k[1] for k in keys], np.int64),
            stride=np.array([tables[k].shape[1] for k in keys], np.int64),
            offset=np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)
            if keys
            else np.zeros(0, np.int64),
            values=np.concatenate([tables[k].ravel() for k in keys])
            if keys
            else np.zeros(0, np.float64),
            bias=bias,
        )

    def predict(self, X: np.ndarray) -> np.ndarray:
        """float64 (m,): the sum of every tree's leaf value for each row of X (m, n_features)."""
        X = np.asarray(X)
        out = np.empty(len(X), np.float64)
        for s in range(0, len(X), _CHUNK):
            out[s : s + _CHUNK] = self._predict(X[s : s + _CHUNK])
        return out

    def _predict(self, X: np.ndarray) -> np.ndarray:
        n = len(self.thresholds)
        x = np.asarray(X, np.float64)
        # LightGBM reads NaN as 0 on a split without missing-value handling
        x = np.where(np.isnan(x), 0.0, x)
        bins = np.zeros((len(x), n + 1), np.int64)  # column n: the 0 bin of one-feature tables
        for f in np.unique(self.first).tolist() + np.unique(self.second).tolist():
            if f < n:
                bins[:, f] = np.searchsorted(self.thresholds[f], x[:, f], side="left")
        at = self.offset + bins[:, self.first] * self.stride + bins[:, self.second]
        return np.asarray(self.values[at].sum(axis=1) + self.bias, np.float64)


def _columns(tree: _Tree, n_features: int) -> tuple[int, int]:
    """The (first, second) columns of the tree's table: its features in order, the second
    `n_features` (the always-0 bin) for a tree reading one feature."""
    used = sorted(set(tree.feature.tolist()))
    return used[0], used[-1] if len(used) == 2 else n_features


def _tree_grid(
    tree: _Tree, thresholds: Sequence[np.ndarray], a: int, b: int, shape: tuple[int, int]
) -> np.ndarray:
    """The tree's leaf value at every (bin of column a, bin of column b) cell."""
    bin_a = np.arange(shape[0])[:, None]
    bin_b = np.arange(shape[1])[None, :]
    # each split's threshold as its index among the feature's thresholds
    k = np.array(
        [
            int(np.searchsorted(thresholds[f], thr))
            for f, thr in zip(tree.feature.tolist(), tree.threshold.tolist(), strict=True)
        ],
        np.int64,
    )
    node = np.zeros(shape, np.int64)
    while (node >= 0).any():
        inner = node >= 0
        at = np.where(inner, node, 0)
        cell_bin = np.where(tree.feature[at] == a, bin_a, bin_b)
        goes_left = cell_bin <= k[at]
        step = np.where(goes_left, tree.left[at], tree.right[at])
        node = np.where(inner, step, node)
    return np.asarray(tree.leaf_value[~node], np.float64)
