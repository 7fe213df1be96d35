"""A few sparse rows against a vector or one another: scipy's arithmetic without its setup.

A request reads a handful of rows of a sparse matrix (a user's recent items' content vectors, a
couple of hundred candidates'): `m[rows] @ x`, `m[rows].T @ w`, `m[rows].mean(axis=0)`,
`m[rows] @ m[i].T`, `m[rows] @ m[rows].T`, `m[:, cols].sum(axis=1)`. scipy builds a new matrix
for each step (index and format checks, copies), which costs more than the arithmetic on a few
thousand stored values. These functions gather the rows' stored values (`row_slices`) and add
them with `np.add.at`, which adds in order, one value at a time: the order and precision of
scipy's kernels for these products (each row's values in stored order; float64 where a float32
matrix meets a float64 vector, the matrix's dtype between two matrices), so the results are
scipy's to the last bit (the tests compare them bitwise). Only for a float32 CSR matrix
(`gathers`; CSC for `columns_sum`); callers keep scipy for any other.
"""

from __future__ import annotations

from typing import TypeGuard

import numpy as np
import scipy.sparse as sp

from serendip.pipeline.sources._social import row_slices

__all__ = [
    "columns_sum",
    "gathers",
    "gathers_columns",
    "rows_dot",
    "rows_dot_row",
    "rows_gram",
    "rows_mean",
    "rows_weighted_sum",
]


def gathers(m: object) -> TypeGuard[sp.csr_matrix]:
    """Do these functions reproduce scipy's products for `m` (a float32 CSR matrix)?"""
    return isinstance(m, sp.csr_matrix) and m.dtype == np.float32


def gathers_columns(m: object) -> TypeGuard[sp.csc_matrix]:
    """Does `columns_sum` reproduce scipy's sum for `m` (a float32 CSC matrix)?"""
    return isinstance(m, sp.csc_matrix) and m.dtype == np.float32


def columns_sum(m: sp.csc_matrix, cols: np.ndarray) -> np.ndarray:
    """float32 (n_rows,): `m[:, cols].sum(axis=1)` for a CSC `m` as scipy computes it -- each
    row's values added in the order of `cols`, in float32."""
    _, rows, pos = row_slices(m, cols)  # a CSC matrix's columns, gathered as CSR rows are
    out = np.zeros(m.shape[0], np.float32)
    np.add.at(out, rows, m.data[pos])
    return out


def rows_dot(m: sp.csr_matrix, rows: np.ndarray, x: np.ndarray) -> np.ndarray:
    """float64 (len(rows),): `m[rows] @ x` for a float64 vector `x` (each row's products
    summed in its stored order, in float64)."""
    owner, cols, pos = row_slices(m, rows)
    out = np.zeros(len(rows), np.float64)
    np.add.at(out, owner, m.data[pos].astype(np.float64) * x[cols])
    return out


def rows_weighted_sum(m: sp.csr_matrix, rows: np.ndarray, w: np.ndarray) -> np.ndarray:
    """float64 (n_cols,): `m[rows].T @ w` for float64 weights `w`, one per row (each column's
    products added in the order of `rows`, in float64)."""
    owner, cols, pos = row_slices(m, rows)
    out = np.zeros(m.shape[1], np.float64)
    np.add.at(out, cols, m.data[pos].astype(np.float64) * w[owner])
    return out


def rows_mean(m: sp.csr_matrix, rows: np.ndarray) -> np.ndarray:
    """float32 (n_cols,): `m[rows].mean(axis=0)` as scipy computes it -- each value scaled by
    1 / len(rows) in float32, then added column by column in the order of `rows`."""
    _, cols, pos = row_slices(m, rows)
    out = np.zeros(m.shape[1], np.float32)
    scale = np.float32(1.0 / len(rows)) if len(rows) else np.float32(0.0)
    np.add.at(out, cols, m.data[pos] * scale)
    return out


def rows_dot_row(m: sp.csr_matrix, rows: np.ndarray, item: int) -> np.ndarray | None:
    """float32 (len(rows),): `(m[rows] @ m[item].T).toarray().ravel()` -- each row's products
    with row `item` summed in the row's stored order, in float32. None where row `item` stores
    a column twice (scipy would add both; the caller keeps scipy)."""
    s, e = int(m.indptr[item]), int(m.indptr[item + 1])
    item_cols = m.indices[s:e]
    other = np.zeros(m.shape[1], np.float32)
    other[item_cols] = m.data[s:e]
    present = np.zeros(m.shape[1], bool)
    present[item_cols] = True
    if int(present.sum()) != e - s:
        return None
    owner, cols, pos = row_slices(m, rows)
    shared = present[cols]  # scipy adds only the products of the columns both rows store
    out = np.zeros(len(rows), np.float32)
    np.add.at(out, owner[shared], m.data[pos[shared]] * other[cols[shared]])
    return out


def rows_gram(m: sp.csr_matrix, rows: np.ndarray) -> np.ndarray | None:
    """float32 (k, k): `(m[rows] @ m[rows].T).toarray()` -- each pair's products over the
    columns both store, summed in the first row's stored order, in float32. None where a row
    stores a column twice (the caller keeps scipy)."""
    k = len(rows)
    owner, cols, pos = row_slices(m, rows)
    if len(np.unique(owner * m.shape[1] + cols)) != len(cols):
        return None
    vals = m.data[pos]
    # every pair of stored values in the same column: the first of each pair in stored order,
    # so each cell's products are added in its row's order as scipy adds them
    by_col = np.argsort(cols, kind="stable")
    start = np.searchsorted(cols[by_col], cols, side="left")
    count = np.searchsorted(cols[by_col], cols, side="right") - start
    first = np.repeat(np.arange(len(cols)), count)
    offset = np.arange(len(first)) - np.repeat(np.cumsum(count) - count, count)
    second = by_col[np.repeat(start, count) + offset]
    out = np.zeros(k * k, np.float32)
    np.add.at(out, owner[first] * k + owner[second], vals[first] * vals[second])
    return out.reshape(k, k)
