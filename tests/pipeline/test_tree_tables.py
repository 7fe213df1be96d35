"""The ranker's trees as lookup tables: LightGBM's predictions, including rows exactly on a
threshold and NaN, and LightGBM itself where a model cannot be compiled."""

from __future__ import annotations

import numpy as np
import pytest

from serendip.pipeline.config import RankerParams
from serendip.pipeline.ranker import LambdaRanker
from serendip.pipeline.tree_tables import TreeTables


def _data(seed: int, n_groups: int = 60, size: int = 20) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n_groups * size, 6)).astype(np.float32)
    X[:, 5] = rng.integers(0, 4, len(X))  # a few distinct values: many rows on a threshold
    y = np.clip((X[:, 0] + 0.5 * X[:, 1] * X[:, 2] + X[:, 5] > 1.0).astype(int), 0, 3)
    return X, y


def _ranker(num_leaves: int, n_models: int = 2) -> LambdaRanker:
    params = RankerParams(
        n_estimators=40, num_leaves=num_leaves, min_child_samples=5, colsample_bytree=1.0
    )
    X, y = _data(0)
    groups = np.full(60, 20)
    ranker = LambdaRanker(params, seed=3).fit(X, y, groups)
    for _ in range(n_models - 1):
        ranker.add(X, y, groups)
    return ranker


def _lightgbm(ranker: LambdaRanker, X: np.ndarray) -> np.ndarray:
    out = np.zeros(len(X))
    for booster, best in ranker.members_:
        out += booster.predict(X, num_iteration=best, num_threads=1)
    return out


def _rows_on_thresholds(tables: TreeTables, seed: int) -> np.ndarray:
    """Rows whose values sit on a threshold of their column, just below or above it."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(600, len(tables.thresholds)))
    for f, thr in enumerate(tables.thresholds):
        if len(thr):
            at = thr[rng.integers(0, len(thr), 200)]
            X[:200, f] = at
            X[200:400, f] = np.nextafter(at, -np.inf)
            X[400:, f] = np.nextafter(at, np.inf)
    return X


def test_tables_give_lightgbm_s_scores_on_and_around_every_threshold() -> None:
    ranker = _ranker(num_leaves=3)
    texts = [b.model_to_string(num_iteration=best) for b, best in ranker.members_]
    tables = TreeTables.compile(texts, 6)
    assert tables is not None
    assert sum(len(t) for t in tables.thresholds) > 10
    X = _rows_on_thresholds(tables, 1)
    X[::7, 2] = np.nan  # LightGBM reads NaN as 0 without missing-value handling
    X[::11, 3] = 0.0
    np.testing.assert_allclose(tables.predict(X), _lightgbm(ranker, X), rtol=0, atol=1e-12)
    Xf = _data(5)[0]
    np.testing.assert_allclose(tables.predict(Xf), _lightgbm(ranker, Xf), rtol=0, atol=1e-12)


def test_the_ranker_predicts_from_the_tables_as_lightgbm_does() -> None:
    ranker = _ranker(num_leaves=3, n_models=3)
    X = _data(7)[0]
    scores = ranker.predict(X)
    assert ranker._compiled() is not None
    expected = np.asarray(_lightgbm(ranker, X) / 3, np.float32)
    np.testing.assert_allclose(scores, expected, rtol=1e-6, atol=1e-6)
    # the same order: what the request path serves
    np.testing.assert_array_equal(
        np.lexsort((np.arange(len(X)), -scores)), np.lexsort((np.arange(len(X)), -expected))
    )
    # a reloaded ranker compiles the same tables
    again = LambdaRanker.from_string(ranker.to_string(), ranker.params)
    np.testing.assert_array_equal(again.predict(X), scores)


def test_a_model_with_deeper_trees_is_left_to_lightgbm() -> None:
    ranker = _ranker(num_leaves=7, n_models=1)
    texts = [b.model_to_string(num_iteration=best) for b, best in ranker.members_]
    assert TreeTables.compile(texts, 6) is None  # some tree reads three or more features
    X = _data(9)[0]
    assert ranker._compiled() is None
    np.testing.assert_array_equal(ranker.predict(X), np.asarray(_lightgbm(ranker, X), np.float32))


def test_a_model_with_missing_value_handling_is_not_compiled() -> None:
    ranker = _ranker(num_leaves=3, n_models=1)
    text = ranker.members_[0][0].model_to_string()
    # decision_type 2 = default left, no missing handling; 10 = default left, missing NaN
    nan_text = text.replace("decision_type=2", "decision_type=10", 1)
    assert "decision_type=10" in nan_text
    assert TreeTables.compile([nan_text], 6) is None
    assert TreeTables.compile([text], 6) is not None


def test_a_model_whose_tables_would_be_too_large_is_not_compiled(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import serendip.pipeline.tree_tables as tt

    ranker = _ranker(num_leaves=3, n_models=1)
    texts = [b.model_to_string(num_iteration=best) for b, best in ranker.members_]
    tables = TreeTables.compile(texts, 6)
    assert tables is not None
    monkeypatch.setattr(tt, "_MAX_CELLS", len(tables.values) - 1)
    assert TreeTables.compile(texts, 6) is None
    monkeypatch.setattr(tt, "_MAX_CELLS", len(tables.values))
    assert TreeTables.compile(texts, 6) is not None
