"""Sparse rows gathered on the request path (`serendip.pipeline.sources._rows`): scipy's
results to the last bit, on matrices stored as the pipeline's are (float32, unsorted
columns), and scipy itself where a row stores a column twice."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from serendip.pipeline.sources._rows import (
    columns_sum,
    gathers,
    gathers_columns,
    rows_dot,
    rows_dot_row,
    rows_gram,
    rows_mean,
    rows_weighted_sum,
)


def _unsorted(
    seed: int, shape: tuple[int, int] = (300, 80), density: float = 0.15
) -> sp.csr_matrix:
    """A float32 CSR matrix whose rows store their columns out of order (as TF-IDF rows do)."""
    rng = np.random.default_rng(seed)
    m = sp.random(*shape, density=density, format="csr", dtype=np.float32, random_state=seed)
    m.data = rng.random(m.nnz).astype(np.float32) ** 3  # values across magnitudes
    for r in range(m.shape[0]):
        s, e = m.indptr[r], m.indptr[r + 1]
        perm = s + rng.permutation(e - s)
        m.indices[s:e], m.data[s:e] = m.indices[perm].copy(), m.data[perm].copy()
    m.has_sorted_indices = False
    return m


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_gathered_products_equal_scipy_s_bitwise(seed: int) -> None:
    m = _unsorted(seed)
    assert gathers(m) and not gathers(m.tocsc()) and not gathers(m.astype(np.float64))
    rng = np.random.default_rng(seed + 10)
    for _ in range(30):
        rows = rng.choice(m.shape[0], int(rng.integers(1, 25)), replace=False)
        w = 0.9 ** np.arange(len(rows))
        x = rng.normal(size=m.shape[1])
        item = int(rng.integers(m.shape[0]))
        expected_sum = np.asarray(m[rows].T @ w).ravel()
        np.testing.assert_array_equal(rows_weighted_sum(m, rows, w), expected_sum)
        mean = rows_mean(m, rows)
        assert mean.dtype == np.float32
        np.testing.assert_array_equal(mean, np.asarray(m[rows].mean(axis=0)).ravel())
        np.testing.assert_array_equal(rows_dot(m, rows, x), np.asarray(m[rows] @ x).ravel())
        dot_row = rows_dot_row(m, rows, item)
        assert dot_row is not None and dot_row.dtype == np.float32
        np.testing.assert_array_equal(dot_row, (m[rows] @ m[item].T).toarray().ravel())
        gram = rows_gram(m, rows)
        assert gram is not None
        np.testing.assert_array_equal(gram, (m[rows] @ m[rows].T).toarray())


def test_column_sums_of_a_csc_matrix_equal_scipy_s_bitwise() -> None:
    t = _unsorted(4).tocsc()
    assert gathers_columns(t) and not gathers_columns(t.tocsr())
    rng = np.random.default_rng(4)
    for _ in range(30):
        cols = np.sort(rng.choice(t.shape[1], int(rng.integers(1, 8)), replace=False))
        expected = np.asarray(t[:, cols].sum(axis=1)).ravel()
        np.testing.assert_array_equal(columns_sum(t, cols), expected)


def test_a_row_storing_a_column_twice_is_left_to_scipy() -> None:
    m = sp.csr_matrix(
        (np.array([1.0, 2.0, 3.0], np.float32), np.array([0, 0, 1]), np.array([0, 2, 3])),
        shape=(2, 3),
    )  # row 0 stores column 0 twice
    assert rows_dot_row(m, np.array([1]), 0) is None
    assert rows_gram(m, np.array([0, 1])) is None
    assert rows_dot_row(m, np.array([0]), 1) is not None  # the duplicate row on the other side
