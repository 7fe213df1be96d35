"""User-EASE against EASE's closed form on the transposed matrix, its fold-in ridge for unknown
users, its capacity guard and its explanations (which never name a private user)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from serendip.data.dataset import Dataset
from serendip.errors import CapacityError
from serendip.models import Recommender
from serendip.models.linear import UserEASE
from tests.conftest import shared_data
from tests.models.test_linear import closed_form, dataset_of, random_binary


def with_private(x: np.ndarray, private: list[int]) -> Dataset:
    rows, cols = np.nonzero(x)
    inter = pd.DataFrame({"user": [f"u{r}" for r in rows], "item": [f"i{c}" for c in cols]})
    users = pd.DataFrame(
        {
            "user": [f"u{r}" for r in range(x.shape[0])],
            "private": np.isin(range(x.shape[0]), private),
        }
    )
    return Dataset.from_frames(
        inter, pd.DataFrame({"item": [f"i{c}" for c in range(x.shape[1])]}), users
    )


@pytest.mark.parametrize("shape", [(12, 40), (30, 6)])  # Cholesky path, Woodbury path
@pytest.mark.parametrize("dropout", [0.0, 0.5])
def test_scores_are_ease_of_the_transposed_matrix(shape: tuple[int, int], dropout: float) -> None:
    x = random_binary(*shape, seed=5)
    model = UserEASE(l2=3.0, dropout=dropout).fit(dataset_of(x))
    w = closed_form(x.T, 3.0, dropout)  # users x users, zero diagonal
    np.testing.assert_allclose(model.Wt_, w.T, atol=1e-5, rtol=1e-4)
    items = [f"i{c}" for c in range(shape[1])]
    for u in (0, 3):
        np.testing.assert_allclose(model.score(f"u{u}", items), w[:, u] @ x, atol=1e-5, rtol=1e-4)


def test_unknown_user_is_the_ridge_regression_on_the_training_users() -> None:
    x = random_binary(15, 20, seed=6)
    model = UserEASE(l2=2.0, dropout=0.3).fit(dataset_of(x))
    g = x @ x.T
    d = 2.0 + 0.3 / 0.7 * np.diag(g)
    new = np.zeros(20)
    new[[1, 4, 7]] = 1.0
    w = np.linalg.solve(g + np.diag(d), x @ new)
    expected = w @ x
    expected[[1, 4, 7]] = -np.inf
    recs = model.recommend(["new"], 4, context={"new": ["i1", "i4", "i7"]})
    assert recs.item_ids(0) == [f"i{j}" for j in np.argsort(-expected, kind="stable")[:4]]
    # no history at all: popularity
    pop = x.sum(axis=0)
    assert model.recommend(["nobody"], 1).item_ids(0) == [f"i{int(np.argmax(pop))}"]


def test_more_users_than_the_cap_are_refused_before_anything_is_allocated(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import serendip.models.linear._user_ease as module

    def boom(*args: object, **kwargs: object) -> None:
        raise AssertionError("allocated the dense matrix")

    monkeypatch.setattr(module, "_inverse_gram", boom)
    x = random_binary(25, 10)
    with pytest.raises(CapacityError, match=r"25 x 25 user matrix.*max_users=20"):
        UserEASE(max_users=20).fit(dataset_of(x))
    with pytest.raises(CapacityError, match="max_memory_mb"):
        UserEASE(max_memory_mb=1e-3).fit(dataset_of(x))


def test_explanation_cites_users_who_have_the_item_by_weight_never_private_ones(
    tmp_path: Path,
) -> None:
    x = random_binary(20, 8, seed=7)
    target = int(np.flatnonzero(x[0] == 0)[0])
    holders = [v for v in np.flatnonzero(x[:, target]) if v != 0]
    w = closed_form(x.T, 2.0)
    ranked = sorted((v for v in holders if w[v, 0] > 0), key=lambda v: -w[v, 0])
    assert len(ranked) >= 2
    private = [int(ranked[0])]  # the strongest supporter is private
    model = UserEASE(l2=2.0, dropout=0.0).fit(with_private(x, private))
    exp = model.explain("u0", f"i{target}")
    ids = [e.id for e in exp.evidence]
    assert f"u{private[0]}" not in ids and f"u{private[0]}" not in exp.text
    assert ids == [f"u{v}" for v in ranked[1:4]]
    for e in exp.evidence:
        assert e.kind == "user" and x[int(e.id[1:]), target] == 1
        assert e.weight == pytest.approx(w[int(e.id[1:]), 0], rel=1e-4)
    assert "(1 private)" in exp.text

    model.save(tmp_path / "m")
    loaded = Recommender.load(tmp_path / "m")
    assert loaded.explain("u0", f"i{target}").text == exp.text
    np.testing.assert_array_equal(
        loaded.recommend(["u0"], 5).items, model.recommend(["u0"], 5).items
    )


@pytest.mark.realdata
def test_movielens_accuracy() -> None:
    """The tuned defaults on the MovieLens 100K protocol (random 80/20, seed 42): about EASE's
    level (0.45 NDCG@10)."""
    from serendip.data.loaders import load_movielens
    from serendip.evaluation.metrics import hit_matrix, ndcg
    from serendip.evaluation.splits import random_split

    split = random_split(load_movielens(shared_data("ml-100k")), seed=42)
    model = UserEASE().fit(split.train)
    truth = split.test.seen()
    users = np.flatnonzero(np.diff(truth.indptr) > 0)
    recs = model.recommend(split.train.users.lookup(users), 10)
    score = ndcg(hit_matrix(recs.items, truth[users]), np.diff(truth[users].indptr)).mean()
    assert score >= 0.44
