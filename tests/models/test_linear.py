"""EASE against its closed form computed with numpy, its capacity guard and its explanations."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from serendip.data.dataset import Dataset
from serendip.errors import CapacityError, ConfigError
from serendip.models import Recommender
from serendip.models.linear import EASE
from serendip.models.linear._ease import _inverse_gram
from tests.conftest import shared_data


def dataset_of(x: np.ndarray) -> Dataset:
    rows, cols = np.nonzero(x)
    inter = pd.DataFrame(
        {"user": [f"u{r}" for r in rows], "item": [f"i{c}" for c in cols], "value": x[rows, cols]}
    )
    items = pd.DataFrame({"item": [f"i{c}" for c in range(x.shape[1])]})
    users = pd.DataFrame({"user": [f"u{r}" for r in range(x.shape[0])]})
    return Dataset.from_frames(inter, items, users)


def random_binary(n_users: int, n_items: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x = (rng.random((n_users, n_items)) < 0.3).astype(float)
    x[np.arange(n_users), rng.integers(0, n_items, n_users)] = 1.0
    return x


def closed_form(x: np.ndarray, l2: float, dropout: float = 0.0) -> np.ndarray:
    """B = I - P diag(1/diag(P)), P = (X^T X + D)^-1 solved with numpy."""
    g = x.T @ x
    d = l2 + dropout / (1.0 - dropout) * np.diag(g)
    p = np.linalg.solve(g + np.diag(d), np.eye(len(g)))
    b = -p / np.diag(p)[None, :]
    np.fill_diagonal(b, 0.0)
    return b


@pytest.mark.parametrize("shape", [(40, 12), (6, 30)])  # Cholesky path, Woodbury path
@pytest.mark.parametrize("dropout", [0.0, 0.4])
def test_weights_match_the_numpy_closed_form(shape: tuple[int, int], dropout: float) -> None:
    x = random_binary(*shape)
    model = EASE(l2=3.0, dropout=dropout).fit(dataset_of(x))
    np.testing.assert_allclose(model.W_, closed_form(x, 3.0, dropout), atol=1e-5, rtol=1e-4)
    assert np.all(np.diag(model.W_) == 0.0)
    scores = model.score("u0", [f"i{c}" for c in range(shape[1])])
    np.testing.assert_allclose(scores, x[0] @ closed_form(x, 3.0, dropout), atol=1e-5, rtol=1e-4)


def test_inverse_gram_both_paths_agree_in_float32_too() -> None:
    x = sp.csr_matrix(random_binary(20, 50, seed=3))
    ref = np.linalg.inv((x.T @ x).toarray() + 5.0 * np.eye(50))
    np.testing.assert_allclose(_inverse_gram(x.astype(np.float64), 5.0, 0.0), ref, atol=1e-12)
    p32 = _inverse_gram(x.astype(np.float32), 5.0, 0.0, block=7)
    assert p32.dtype == np.float32 and p32.flags["C_CONTIGUOUS"]
    np.testing.assert_allclose(p32, ref, atol=1e-5)
    wide = sp.csr_matrix(random_binary(60, 50, seed=4))  # more users than items: Cholesky
    ref = np.linalg.inv((wide.T @ wide).toarray() + 5.0 * np.eye(50))
    np.testing.assert_allclose(_inverse_gram(wide.astype(np.float64), 5.0, 0.0, block=7), ref)


def test_catalog_above_the_cap_is_refused_before_anything_is_allocated(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import serendip.models.linear._ease as ease_module

    def boom(*args: object, **kwargs: object) -> None:
        raise AssertionError("allocated the dense matrix")

    monkeypatch.setattr(ease_module, "_inverse_gram", boom)
    x = random_binary(10, 25)
    with pytest.raises(CapacityError, match=r"25 x 25 item matrix.*max_items=20"):
        EASE(max_items=20).fit(dataset_of(x))
    with pytest.raises(CapacityError, match="max_memory_mb"):
        EASE(max_memory_mb=1e-3).fit(dataset_of(x))


def test_invalid_regularisation_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="l2"):
        EASE(l2=0.0)
    with pytest.raises(ConfigError, match="dropout"):
        EASE(dropout=1.0)


def test_explanation_is_the_history_items_with_largest_contributions() -> None:
    x = random_binary(30, 10, seed=1)
    model = EASE(l2=2.0).fit(dataset_of(x))
    b = closed_form(x, 2.0)
    u = 0
    target = int(np.flatnonzero(x[u] == 0)[0])
    exp = model.explain("u0", f"i{target}")
    hist = np.flatnonzero(x[u])
    contrib = b[hist, target]
    order = [int(hist[j]) for j in np.argsort(-contrib) if contrib[j] > 0][:3]
    assert [e.id for e in exp.evidence] == [f"i{j}" for j in order]
    for e in exp.evidence:
        assert e.kind == "item"
        assert e.weight == pytest.approx(b[int(e.id[1:]), target], rel=1e-4)


def test_cold_context_and_update_use_the_item_weights(tmp_path: Path) -> None:
    x = random_binary(30, 10, seed=2)
    model = EASE(l2=2.0).fit(dataset_of(x))
    b = closed_form(x, 2.0)
    recs = model.recommend(["new"], 3, context={"new": ["i1", "i4"]})
    expected = b[1] + b[4]
    expected[[1, 4]] = -np.inf
    assert recs.item_ids(0) == [f"i{j}" for j in np.argsort(-expected, kind="stable")[:3]]

    unseen = int(np.flatnonzero(x[3] == 0)[0])
    model.update(pd.DataFrame({"user": ["u3"], "item": [f"i{unseen}"]}))
    x2 = x.copy()
    x2[3, unseen] = 1.0
    np.testing.assert_allclose(model.score("u3", ["i0"]), [x2[3] @ b[:, 0]], rtol=1e-4, atol=1e-6)
    assert f"i{unseen}" not in model.recommend(["u3"], 5).item_ids(0)

    model.save(tmp_path / "m")
    loaded = Recommender.load(tmp_path / "m")
    np.testing.assert_allclose(loaded.W_, model.W_)  # type: ignore[attr-defined]
    np.testing.assert_array_equal(
        loaded.recommend(["u3"], 5).items, model.recommend(["u3"], 5).items
    )


@pytest.mark.realdata
def test_movielens_accuracy_floor() -> None:
    """The tuned defaults on the MovieLens 100K protocol (random 80/20, seed 42)."""
    from serendip.data.loaders import load_movielens
    from serendip.evaluation.metrics import hit_matrix, ndcg
    from serendip.evaluation.splits import random_split

    split = random_split(load_movielens(shared_data("ml-100k")), seed=42)
    model = EASE().fit(split.train)
    truth = split.test.seen()
    users = np.flatnonzero(np.diff(truth.indptr) > 0)
    recs = model.recommend(split.train.users.lookup(users), 10)
    score = ndcg(hit_matrix(recs.items, truth[users]), np.diff(truth[users].indptr)).mean()
    assert score >= 0.445
