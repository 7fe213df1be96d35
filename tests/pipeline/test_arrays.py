"""`among`: `np.isin` for the integer arrays of the request path."""

from __future__ import annotations

import numpy as np
import pytest

from serendip.pipeline._arrays import among


@pytest.mark.parametrize("seed", range(5))
def test_among_is_isin(seed: int) -> None:
    rng = np.random.default_rng(seed)
    items = rng.integers(-2, 50, int(rng.integers(0, 40)))
    values = rng.integers(-2, 50, int(rng.integers(0, 20)))
    got = among(items, values)
    assert got.dtype == bool and got.shape == items.shape
    np.testing.assert_array_equal(got, np.isin(items, values))


def test_among_edges() -> None:
    assert among(np.array([1, 2]), np.zeros(0, np.int64)).tolist() == [False, False]
    assert among(np.zeros(0, np.int64), np.array([1])).tolist() == []
    # values of another integer width (CSR indices are int32)
    assert among(np.array([3, 9], np.int64), np.array([9, 9], np.int32)).tolist() == [False, True]
