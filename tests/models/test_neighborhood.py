"""Item-kNN, user-kNN and RP3beta against hand-computed similarities, scores and explanations."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from serendip.data.dataset import Dataset
from serendip.errors import CapacityError, SerendipError
from serendip.models import Recommender
from serendip.models.neighborhood import (
    FeatureWeighting,
    ItemKNN,
    RP3beta,
    SimilaritySpec,
    UserKNN,
    all_pairs_knn,
    topk_per_row,
)

# 5 users x 5 items; item i4 is seen by nobody in training.
X = np.array(
    [
        [1, 1, 0, 0, 0],
        [1, 1, 1, 0, 0],
        [0, 1, 1, 1, 0],
        [1, 0, 0, 1, 0],
        [0, 0, 1, 1, 0],
    ],
    dtype=float,
)
USERS = [f"u{u}" for u in range(X.shape[0])]
ITEMS = [f"i{i}" for i in range(X.shape[1])]


def tiny(x: np.ndarray = X, private: list[bool] | None = None) -> Dataset:
    rows, cols = np.nonzero(x)
    inter = pd.DataFrame(
        {"user": [USERS[r] for r in rows], "item": [ITEMS[c] for c in cols], "value": x[rows, cols]}
    )
    users = pd.DataFrame({"user": USERS[: x.shape[0]]})
    if private is not None:
        users["private"] = private
    return Dataset.from_frames(inter, pd.DataFrame({"item": ITEMS}), users)


def dense_cosine(m: np.ndarray, shrink: float = 0.0) -> np.ndarray:
    """Cosine between the rows of m, diagonal zeroed."""
    norms = np.sqrt((m * m).sum(axis=1))
    dot = m @ m.T
    den = np.outer(norms, norms) + shrink
    sim = np.divide(dot, den, out=np.zeros_like(dot), where=den > 0)
    np.fill_diagonal(sim, 0.0)
    return sim


BASE = {"weighting": "none", "shrink": 0.0, "locality": 1.0, "k": 10}


# ----------------------------------------------------------------------------- building blocks
def test_topk_per_row_keeps_the_largest_and_breaks_ties_by_index() -> None:
    m = sp.csr_matrix(np.array([[0.1, 0.5, 0.5, 0.2], [0.0, 0.0, 0.3, 0.0], [0.4, 0.4, 0.4, 0.4]]))
    out = topk_per_row(m, 2).toarray()
    np.testing.assert_allclose(out[0], [0, 0.5, 0.5, 0])
    np.testing.assert_allclose(out[1], [0, 0, 0.3, 0])
    np.testing.assert_allclose(out[2], [0.4, 0.4, 0, 0])


def test_chunked_all_pairs_equals_one_block() -> None:
    rng = np.random.default_rng(0)
    docs = sp.random(40, 30, density=0.2, random_state=1, format="csr", dtype=np.float64)
    docs.data = rng.random(docs.nnz)
    spec = SimilaritySpec("asymmetric", k=7, shrink=0.5, alpha=0.3)
    whole = all_pairs_knn(docs, spec, chunk_nnz=10**9)
    chunked = all_pairs_knn(docs, spec, chunk_nnz=5)
    np.testing.assert_allclose(whole.toarray(), chunked.toarray(), rtol=1e-6)
    assert (np.diff(whole.indptr) <= 7).all()


def test_tfidf_and_bm25_weights_match_their_formulas() -> None:
    docs = sp.csr_matrix(np.array([[1.0, 4.0, 0.0], [1.0, 0.0, 0.0], [0.0, 1.0, 1.0]]))
    idf = np.log(3 / np.array([2.0, 2.0, 1.0]))
    tfidf = FeatureWeighting.fit(docs, "tfidf").apply(docs).toarray()
    np.testing.assert_allclose(tfidf, np.sqrt(docs.toarray()) * idf[None, :], rtol=1e-6)
    bm = FeatureWeighting.fit(docs, "bm25", k1=1.2, b=0.75)
    lengths = np.array([5.0, 1.0, 2.0])
    norm = 0.25 + 0.75 * lengths / lengths.mean()
    tf = docs.toarray()
    expected = tf * 2.2 / (1.2 * norm[:, None] + tf) * idf[None, :]
    np.testing.assert_allclose(bm.apply(docs).toarray(), expected, rtol=1e-6)


# ----------------------------------------------------------------------------- item-kNN
def test_item_knn_cosine_equals_hand_computed_cosine() -> None:
    model = ItemKNN(similarity="cosine", **BASE).fit(tiny())
    expected = dense_cosine(X.T)
    np.testing.assert_allclose(model.sim_.toarray(), expected, rtol=1e-6)
    # e.g. items 0 and 1 share users u0, u1 of 3 and 3 users: 2 / 3
    assert model.sim_[0, 1] == pytest.approx(2 / 3)


def test_item_knn_shrinkage_asymmetric_and_jaccard() -> None:
    shrunk = ItemKNN(similarity="cosine", **{**BASE, "shrink": 2.0}).fit(tiny())
    np.testing.assert_allclose(shrunk.sim_.toarray(), dense_cosine(X.T, 2.0), rtol=1e-6)

    asym = ItemKNN(similarity="asymmetric", alpha=0.8, **BASE).fit(tiny())
    # target 0 (3 users), neighbour 2 (3 users), 1 common; target 3 (3 users) vs 1 (3 users)
    counts = X.sum(axis=0)
    dot = X.T @ X
    t, n = 0, 2
    assert asym.sim_[t, n] == pytest.approx(dot[t, n] / (counts[t] ** 0.2 * counts[n] ** 0.8))

    jac = ItemKNN(similarity="jaccard", **BASE).fit(tiny())
    a, b = set(np.flatnonzero(X[:, 1])), set(np.flatnonzero(X[:, 2]))
    assert jac.sim_[1, 2] == pytest.approx(len(a & b) / len(a | b))


def test_item_knn_keeps_only_the_top_k_neighbours_of_each_target() -> None:
    full = ItemKNN(similarity="cosine", **BASE).fit(tiny())
    pruned = ItemKNN(similarity="cosine", **{**BASE, "k": 1}).fit(tiny())
    dense = full.sim_.toarray()
    for t in range(X.shape[1]):
        row = pruned.sim_[t]
        assert row.nnz <= 1
        if dense[t].max() > 0:
            assert row.data[0] == pytest.approx(dense[t].max())


def test_item_knn_scores_sum_history_similarities() -> None:
    model = ItemKNN(similarity="cosine", **BASE).fit(tiny())
    sim = dense_cosine(X.T)
    u = 0  # history i0, i1
    expected = X[u] @ sim.T  # score(u, t) = sum_j x_uj sim(t, j)
    scores = model.score("u0", ITEMS)
    positive = expected > 0
    np.testing.assert_allclose(scores[positive], expected[positive], rtol=1e-5)
    # an item nothing supports (i4) falls back below every supported item
    assert scores[4] < 0 < scores[2]
    assert model.recommend(["u0"], 3).item_ids(0) == ["i2", "i3", "i4"]


def test_item_knn_cold_user_is_scored_from_the_fold_in_items() -> None:
    model = ItemKNN(similarity="cosine", **BASE).fit(tiny())
    sim = dense_cosine(X.T)
    recs = model.recommend(["new"], 2, context={"new": ["i3"]})
    best = np.argsort(-sim[:, 3], kind="stable")
    best = [ITEMS[j] for j in best if j != 3][:2]
    assert recs.item_ids(0) == best
    assert recs.scores[0][0] == pytest.approx(sim[:, 3].max(), rel=1e-5)


def test_item_knn_explanation_cites_history_items_with_their_contributions() -> None:
    model = ItemKNN(similarity="cosine", **BASE).fit(tiny())
    sim = dense_cosine(X.T)
    exp = model.explain("u1", "i3")  # history i0, i1, i2
    contrib = {ITEMS[j]: sim[3, j] for j in (0, 1, 2) if sim[3, j] > 0}
    assert [e.id for e in exp.evidence] == sorted(contrib, key=lambda k: -contrib[k])
    for e in exp.evidence:
        assert e.kind == "item" and e.weight == pytest.approx(contrib[e.id], rel=1e-5)
    assert exp.evidence[0].id in exp.text
    assert exp.score == pytest.approx(sum(contrib.values()), rel=1e-5)


def test_item_knn_similar_items_are_its_neighbours() -> None:
    model = ItemKNN(similarity="cosine", **{**BASE, "k": 2}).fit(tiny())
    sims = model.similar_items("i0", 5)
    expected = np.argsort(-dense_cosine(X.T)[0], kind="stable")[:2]
    assert sims.item_ids(0) == [ITEMS[j] for j in expected]  # only the 2 kept neighbours


def test_item_knn_update_folds_events_into_the_profile() -> None:
    model = ItemKNN(similarity="cosine", **BASE).fit(tiny())
    before = model.score("u0", ["i3"])[0]
    model.update(pd.DataFrame({"user": ["u0"], "item": ["i2"]}))
    assert "i2" not in model.recommend(["u0"], 3).item_ids(0)
    sim = dense_cosine(X.T)
    assert model.score("u0", ["i3"])[0] == pytest.approx(before + sim[3, 2], rel=1e-5)


def test_weighted_confidence_uses_log1p_values() -> None:
    x = X.copy()
    x[0, 0] = 9.0  # a listen count
    model = ItemKNN(similarity="cosine", confidence="log1p", **BASE).fit(tiny(x))
    assert model.profile_[0, 0] == pytest.approx(np.log1p(9.0))
    sim = dense_cosine(np.log1p(x).T)
    np.testing.assert_allclose(model.sim_.toarray(), sim, rtol=1e-5)


def test_memory_limit_is_checked_before_fitting() -> None:
    with pytest.raises(CapacityError, match="max_memory_mb"):
        ItemKNN(max_memory_mb=1e-6).fit(tiny())


# ----------------------------------------------------------------------------- user-kNN
def test_user_knn_scores_sum_neighbour_rows() -> None:
    model = UserKNN(similarity="cosine", **{**BASE, "k": 2}).fit(tiny())
    sim = dense_cosine(X)
    u = 0
    neigh = np.argsort(-sim[u], kind="stable")[:2]
    expected = sim[u, neigh] @ X[neigh]
    scores = model.score("u0", ITEMS)
    positive = expected > 0
    np.testing.assert_allclose(scores[positive], expected[positive], rtol=1e-5)
    assert set(model.sim_[u].indices) == set(neigh)


def test_user_knn_cold_user_gets_neighbours_on_the_fly() -> None:
    # nearest users to {i0, i1}: u0 (identical, cosine 1), then u1 (i0, i1, i2; 0.82)
    model = UserKNN(similarity="cosine", **{**BASE, "k": 1}).fit(tiny())
    recs = model.recommend(["new"], 2, context={"new": ["i0", "i1"]})
    # with k=1 only u0, who has nothing new: the list is the popularity fallback (i2, i3 tie)
    assert recs.item_ids(0) == ["i2", "i3"]
    assert (recs.scores[0] < 0).all()
    model3 = UserKNN(similarity="cosine", **{**BASE, "k": 2}).fit(tiny())
    recs = model3.recommend(["new"], 1, context={"new": ["i0", "i1"]})
    assert recs.item_ids(0) == ["i2"]  # from u1, the second nearest user


def test_user_knn_update_recomputes_the_users_neighbours() -> None:
    model = UserKNN(similarity="cosine", **{**BASE, "k": 1}).fit(tiny())
    assert list(model.sim_[3].indices) != [4]
    # u3 (i0, i3) gains i2 and loses nothing: u4 (i2, i3) becomes the closest user
    model.update(pd.DataFrame({"user": ["u3"], "item": ["i2"]}))
    sim = dense_cosine(np.vstack([X[:3], [1, 0, 1, 1, 0], X[4:]]))
    assert list(model.sim_[3].indices) == [int(np.argmax(sim[3]))]
    assert "i2" not in model.recommend(["u3"], 3).item_ids(0)


def test_user_knn_explanation_names_neighbours_but_never_private_ones() -> None:
    ds = tiny(private=[False, True, False, False, False])
    model = UserKNN(similarity="cosine", **BASE).fit(ds)
    exp = model.explain("u0", "i2")
    ids = {e.id for e in exp.evidence}
    assert "u1" not in ids and "u1" not in exp.text  # u1 is private
    assert ids and all(e.kind == "user" for e in exp.evidence)
    # every named neighbour really has i2 and really is a neighbour
    for e in exp.evidence:
        assert X[USERS.index(e.id), 2] == 1
    assert "private" in exp.text


def test_user_knn_refuses_item_similarity() -> None:
    model = UserKNN(**BASE).fit(tiny())
    with pytest.raises(SerendipError, match="similarity"):
        model.similar_items("i0")


def test_user_knn_save_load_keeps_weighting_and_neighbours(tmp_path: Path) -> None:
    model = UserKNN(weighting="bm25", similarity="jaccard", k=3).fit(tiny())
    model.save(tmp_path / "m")
    loaded = Recommender.load(tmp_path / "m")
    assert isinstance(loaded, UserKNN)
    np.testing.assert_allclose(loaded.sim_.toarray(), model.sim_.toarray())
    ctx = {"new": ["i2", "i3"]}
    np.testing.assert_array_equal(
        loaded.recommend(["new"], 3, context=ctx).items,
        model.recommend(["new"], 3, context=ctx).items,
    )


# ----------------------------------------------------------------------------- RP3beta
def test_rp3beta_matches_the_three_step_walk() -> None:
    alpha, beta = 1.0, 0.5
    model = RP3beta(k=10, alpha=alpha, beta=beta).fit(tiny())
    p_ui = X / X.sum(axis=1, keepdims=True)
    item_users = X.sum(axis=0)
    p_iu = np.divide(
        X.T, item_users[:, None], out=np.zeros_like(X.T), where=item_users[:, None] > 0
    )
    pop = X.sum(axis=0)
    penalty = np.divide(1.0, pop**beta, out=np.zeros_like(pop), where=pop > 0)
    w = (p_iu @ p_ui) * penalty[None, :]
    np.fill_diagonal(w, 0.0)
    np.testing.assert_allclose(model.W_.toarray(), w, rtol=1e-5)
    expected = X[0] @ w
    scores = model.score("u0", ITEMS)
    positive = expected > 0
    np.testing.assert_allclose(scores[positive], expected[positive], rtol=1e-5)


def test_rp3beta_popularity_penalty_demotes_popular_items() -> None:
    flat = RP3beta(k=10, alpha=1.0, beta=0.0).fit(tiny())
    steep = RP3beta(k=10, alpha=1.0, beta=1.0).fit(tiny())
    pop = X.sum(axis=0)
    # W columns scale by pop^-beta: the ratio between betas is exactly 1 / pop
    ratio = steep.W_.toarray()[0, 1:4] / flat.W_.toarray()[0, 1:4]
    np.testing.assert_allclose(ratio, 1.0 / pop[1:4], rtol=1e-5)


def test_rp3beta_normalize_and_cold_context() -> None:
    model = RP3beta(k=2, alpha=1.0, beta=0.0, normalize=True).fit(tiny())
    sums = np.asarray(model.W_.sum(axis=1)).ravel()
    np.testing.assert_allclose(sums[sums > 0], 1.0, rtol=1e-5)
    assert (np.diff(model.W_.indptr) <= 2).all()
    cold = model.recommend(["new"], 1, context={"new": ["i3"]})
    row = model.W_[3].toarray().ravel()
    assert cold.item_ids(0) == [ITEMS[int(np.argmax(row))]]


@pytest.mark.realdata
def test_item_knn_movielens_accuracy_floor() -> None:
    """The tuned defaults on the MovieLens 100K protocol (random 80/20, seed 42)."""
    from serendip.data.loaders import load_movielens
    from serendip.evaluation.metrics import hit_matrix, ndcg
    from serendip.evaluation.splits import random_split
    from tests.conftest import shared_data

    split = random_split(load_movielens(shared_data("ml-100k")), seed=42)
    model = ItemKNN().fit(split.train)
    truth = split.test.seen()
    users = np.flatnonzero(np.diff(truth.indptr) > 0)
    recs = model.recommend(split.train.users.lookup(users), 10)
    score = ndcg(hit_matrix(recs.items, truth[users]), np.diff(truth[users].indptr)).mean()
    assert score >= 0.39
