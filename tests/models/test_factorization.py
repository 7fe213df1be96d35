"""Behaviour of the latent-factor family beyond the shared contract: exact SVD reconstruction,
fold-ins that agree with fitted factors, confidence weighting, cold items and users of the
LightFM-style hybrid, explanations that decompose scores, and capacity limits."""

from __future__ import annotations

from functools import cache
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from serendip.data.dataset import Dataset
from serendip.errors import CapacityError, DataError
from serendip.models import Recommender
from serendip.models.factorization import BPR, IALS, NMF, HybridMF, PureSVD
from tests.conftest import make_toy_platform, shared_data


@cache
def _toy() -> Dataset:
    return make_toy_platform(seed=5)


def _cos(a: np.ndarray, b: np.ndarray) -> float:
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


def _copy_user_events(ds: Dataset, user: str, new_user: str) -> pd.DataFrame:
    """The interactions of `user` as events of `new_user` (same items, events, values)."""
    frame = ds.interactions_frame()
    frame = frame[frame["user"] == user].copy()
    frame["user"] = new_user
    return frame.reset_index(drop=True)


def _user_topics(ds: Dataset) -> np.ndarray:
    return np.array([int(x[0][3:]) for x in ds.user_meta.interests])


def _item_topics(ds: Dataset) -> np.ndarray:
    return np.array([int(c[3:]) for c in ds.item_meta.category])


# ----------------------------------------------------------------------------- PureSVD
def _block_dataset() -> tuple[Dataset, np.ndarray]:
    """A rank-3 binary matrix: three user groups, each liking an overlapping item set."""
    groups = [range(0, 10), range(6, 16), range(12, 24)]
    rows = []
    for u in range(30):
        for i in groups[u % 3]:
            rows.append((f"u{u:02d}", f"i{i:02d}"))
    frame = pd.DataFrame(rows, columns=["user", "item"])
    ds = Dataset.from_frames(frame)
    return ds, ds.seen().toarray()


def test_puresvd_reconstructs_a_low_rank_matrix_exactly() -> None:
    ds, dense = _block_dataset()
    assert np.linalg.matrix_rank(dense) == 3
    model = PureSVD(factors=3, popularity_exponent=0.0).fit(ds)
    for u, user in enumerate(ds.users.ids):
        np.testing.assert_allclose(model.score(user, ds.items.ids), dense[u], atol=1e-4)


def test_puresvd_with_too_few_factors_is_the_best_rank_k_approximation() -> None:
    ds, dense = _block_dataset()
    model = PureSVD(factors=2, popularity_exponent=0.0).fit(ds)
    approx = np.vstack([model.score(u, ds.items.ids) for u in ds.users.ids])
    uu, s, vt = np.linalg.svd(dense)
    best = (uu[:, :2] * s[:2]) @ vt[:2]
    np.testing.assert_allclose(approx, best, atol=1e-3)


def test_puresvd_fold_in_of_a_history_equals_the_fitted_user() -> None:
    ds = _toy()
    model = PureSVD(factors=8, popularity_exponent=0.3).fit(ds)
    user = str(ds.users.ids[7])
    model.update(_copy_user_events(ds, user, "copy"))
    np.testing.assert_allclose(
        model.user_factors_[model.users_.index("copy")],
        model.user_factors_[model.users_.index(user)],
        rtol=1e-5,
        atol=1e-5,
    )
    np.testing.assert_array_equal(
        model.recommend(["copy"], 10).items, model.recommend([user], 10).items
    )


def test_puresvd_history_contributions_sum_to_the_score() -> None:
    ds = _toy()
    model = PureSVD(factors=8, popularity_exponent=0.3).fit(ds)
    u = 3
    hist = ds.seen()[u].indices
    for i in (0, 17, 55):
        parts = model._history_contributions(u, i, hist)
        assert parts.sum() == pytest.approx(
            float(model.score(ds.users.id(u), [ds.items.id(i)])[0]), abs=1e-5
        )


# ----------------------------------------------------------------------------- iALS
def test_ials_fold_in_matches_the_fitted_user_factors() -> None:
    ds = _toy()
    model = IALS(factors=8, regularization=1.0, alpha=5.0, iterations=30).fit(ds)
    for user in ds.users.ids[:5]:
        model.update(_copy_user_events(ds, str(user), f"copy-{user}"))
        folded = model.user_factors_[model.users_.index(f"copy-{user}")]
        fitted = model.user_factors_[model.users_.index(str(user))]
        assert _cos(folded, fitted) > 0.99
        assert np.linalg.norm(folded - fitted) < 0.1 * np.linalg.norm(fitted)


def test_ials_unknown_user_with_context_ranks_like_the_fitted_user() -> None:
    ds = _toy()
    model = IALS(factors=8, regularization=1.0, iterations=30).fit(ds)
    user = str(ds.users.ids[11])
    hist = list(ds.items.lookup(ds.seen()[11].indices))
    cold = model.recommend(["stranger"], 10, context={"stranger": hist}).item_ids(0)
    warm = model.recommend([user], 10).item_ids(0)
    assert len(set(cold) & set(warm)) >= 8


def test_ials_log1p_weighting_turns_counts_into_confidence() -> None:
    frame = pd.DataFrame(
        {
            "user": ["a", "a", "b", "b", "c"],
            "item": ["x", "y", "x", "z", "y"],
            "value": [1000.0, 1.0, 3.0, 0.0, 7.0],
        }
    )
    ds = Dataset.from_frames(frame)
    model = IALS(factors=2, weighting="log1p", iterations=2).fit(ds)
    w = model.weights_.toarray()
    assert w[ds.users.index("a"), ds.items.index("x")] == pytest.approx(np.log1p(1000.0), rel=1e-5)
    assert w[ds.users.index("a"), ds.items.index("y")] == pytest.approx(np.log1p(1.0), rel=1e-5)
    # a zero count carries no confidence, but the pair still counts as seen
    assert w[ds.users.index("b"), ds.items.index("z")] == 0.0
    assert model.train_[ds.users.index("b"), ds.items.index("z")] == 1.0


def test_ials_history_contributions_explain_a_folded_in_score_exactly() -> None:
    ds = _toy()
    model = IALS(factors=8, regularization=1.0, iterations=10).fit(ds)
    model.update(_copy_user_events(ds, str(ds.users.ids[2]), "copy"))
    u = model.users_.index("copy")
    hist = model.train_[u].indices
    for i in (1, 40):
        total = model._history_contributions(u, i, hist).sum()
        assert total == pytest.approx(float(model.score("copy", [ds.items.id(i)])[0]), abs=1e-4)
    exp = model.explain("copy", ds.items.id(40))
    cited = [e.id for e in exp.evidence if e.kind == "item"]
    assert cited and set(cited) <= set(ds.items.lookup(hist))


def test_ials_refuses_a_fit_beyond_its_memory_limit_before_starting() -> None:
    with pytest.raises(CapacityError, match="memory_limit_gb"):
        IALS(factors=4096, memory_limit_gb=0.001).fit(_toy())


def test_update_of_a_known_user_moves_their_factors_and_hides_the_new_item() -> None:
    ds = _toy()
    model = IALS(factors=8, regularization=1.0, iterations=10).fit(ds)
    user = str(ds.users.ids[0])
    before = model.user_factors_[0].copy()
    top = model.recommend([user], 3).item_ids(0)
    model.update(pd.DataFrame({"user": [user] * 3, "item": top, "event": ["share"] * 3}))
    assert not np.allclose(before, model.user_factors_[0])
    assert not set(top) & set(model.recommend([user], 10).item_ids(0))
    # events on unknown items are dropped, not an error
    model.update(pd.DataFrame({"user": [user], "item": ["never-seen-item"]}))


def test_update_without_an_item_column_is_a_data_error() -> None:
    model = PureSVD(factors=4).fit(_toy())
    with pytest.raises(DataError, match="item"):
        model.update(pd.DataFrame({"user": ["u001"]}))


def test_zero_weight_events_still_count_as_seen() -> None:
    ds = _toy()
    model = IALS(factors=4, iterations=3, weighting="log1p").fit(ds)
    user = str(ds.users.ids[0])
    item = model.recommend([user], 1).item_ids(0)[0]
    model.update(pd.DataFrame({"user": [user], "item": [item], "value": [0.0]}))
    assert item not in model.recommend([user], 20).item_ids(0)


def test_updates_survive_save_and_load(tmp_path: Path) -> None:
    ds = _toy()
    model = IALS(factors=8, regularization=1.0, iterations=10).fit(ds)
    model.update(_copy_user_events(ds, str(ds.users.ids[4]), "newcomer"))
    model.save(tmp_path / "m")
    loaded = Recommender.load(tmp_path / "m")
    assert isinstance(loaded, IALS)
    np.testing.assert_array_equal(
        loaded.recommend(["newcomer"], 10).items, model.recommend(["newcomer"], 10).items
    )
    events = _copy_user_events(ds, str(ds.users.ids[9]), "second")
    model.update(events)
    loaded.update(events)
    np.testing.assert_allclose(
        loaded.user_factors_[-1], model.user_factors_[-1], rtol=1e-5, atol=1e-6
    )


# ----------------------------------------------------------------------------- NMF
def test_nmf_factors_are_non_negative_and_fold_in_is_close() -> None:
    ds = _toy()
    model = NMF(factors=6, max_iter=400).fit(ds)
    assert (model.user_factors_ >= 0).all() and (model.item_factors_ >= 0).all()
    user = str(ds.users.ids[6])
    model.update(_copy_user_events(ds, user, "copy"))
    folded = model.user_factors_[model.users_.index("copy")]
    assert _cos(folded, model.user_factors_[model.users_.index(user)]) > 0.95


# ----------------------------------------------------------------------------- BPR
@cache
def _bpr() -> BPR:
    return BPR(factors=16, epochs=40, batch_size=128, learning_rate=0.01).fit(_toy())


def test_bpr_learns_the_topics_of_the_toy_platform() -> None:
    ds = _toy()
    model = _bpr()
    recs = model.recommend(list(ds.users.ids), 5)
    topics = _item_topics(ds)[recs.items]
    share = (topics == _user_topics(ds)[:, None]).mean()
    assert share > 0.6  # 0.25 by chance with 4 topics


def test_bpr_defaults_beat_popularity_on_held_out_interactions() -> None:
    from serendip.evaluation.splits import random_split
    from serendip.models.baselines import Popularity

    split = random_split(_toy(), seed=0)
    bpr = _ndcg10(BPR().fit(split.train), split.train, split.test)
    popular = _ndcg10(Popularity().fit(split.train), split.train, split.test)
    assert bpr > popular + 0.05  # ~0.16 vs ~0.05: the trainer learns who likes what


def test_bpr_fit_is_deterministic_under_its_seed() -> None:
    ds = _toy()
    params = {"factors": 8, "epochs": 5, "batch_size": 64}
    a, b = BPR(params).fit(ds), BPR(params).fit(ds)
    other = BPR({**params, "seed": 7}).fit(ds)
    for name in ("user_factors_", "item_factors_", "item_bias_"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
    assert not np.allclose(a.item_factors_, other.item_factors_)


@pytest.mark.parametrize("loss", ["bpr", "warp"])
@pytest.mark.parametrize("with_features", [False, True])
def test_pairwise_trainer_gradients_match_finite_differences(
    loss: str, with_features: bool
) -> None:
    """The trainer's hand-written gradients (BPR's and the LightFM-style model's), on a batch
    whose users and items repeat (their gradients must accumulate) and whose groups share
    negatives, against central differences of the objective it documents; with identity
    features (BPR) and with weighted metadata features besides."""
    import scipy.sparse as sp

    from serendip.models.factorization._feature_mf import _gradients, _Side

    rng = np.random.default_rng(0)
    n_users, n_items, k, reg = 5, 7, 3, 0.1
    fu, fi = np.eye(n_users), np.eye(n_items)
    if with_features:  # two shared metadata features per side, weights summing to 0.8
        fu = np.hstack([fu, rng.dirichlet([1.0, 1.0], n_users) * 0.8])
        fi = np.hstack([fi, rng.dirichlet([1.0, 1.0], n_items) * 0.8])
    user_t = rng.normal(0, 0.5, (fu.shape[1], k))
    item_t = rng.normal(0, 0.5, (fi.shape[1], k))
    bias_t = rng.normal(0, 0.5, fi.shape[1])
    u = np.array([0, 0, 1, 2, 2, 2])  # two groups of three positives
    i = np.array([1, 1, 2, 3, 4, 1])
    j = np.array([[0, 5, 5, 6], [1, 6, 2, 2]])  # shared by each group; items repeat

    def scores(ut: np.ndarray, it: np.ndarray, bt: np.ndarray) -> tuple[np.ndarray, ...]:
        eu, ei, ej = fu[u] @ ut, fi[i] @ it, fi[j] @ it
        s_pos = (eu * ei).sum(1) + fi[i] @ bt
        s_neg = np.einsum("gpk,gnk->gpn", eu.reshape(2, 3, k), ej) + (fi[j] @ bt)[:, None, :]
        return eu, ei, ej, s_pos.reshape(2, 3, 1), s_neg

    *_, s_pos0, s_neg0 = scores(user_t, item_t, bias_t)
    # WARP's rank weight is piecewise constant: held at its value here
    weight = np.log1p(np.floor((s_neg0 > s_pos0 - 1.0).sum(2) * (n_items - 1) / 4))

    def objective(ut: np.ndarray, it: np.ndarray, bt: np.ndarray) -> float:
        eu, ei, ej, s_pos, s_neg = scores(ut, it, bt)
        if loss == "bpr":
            rank = np.logaddexp(0.0, s_neg - s_pos).mean()
        else:
            rank = (weight * np.maximum(0.0, 1.0 - s_pos[:, :, 0] + s_neg.max(2))).mean()
        norms = (eu**2).sum(1).mean() + (ei**2).sum(1).mean() + (ej**2).sum(-1).mean()
        return float(rank + reg * norms)

    params = [user_t, item_t, bias_t]
    grads = [np.zeros_like(p) for p in params]
    users, items = _Side(sp.csr_matrix(fu)), _Side(sp.csr_matrix(fi))
    assert (users.features is None) is not with_features
    _gradients(users, items, params, u, i, j, loss=loss, regularization=reg, out=grads)
    for p, g in zip(params, grads, strict=True):
        numeric = np.zeros_like(p)
        for idx in np.ndindex(p.shape):
            saved = p[idx]
            p[idx] = saved + 1e-6
            up = objective(*params)
            p[idx] = saved - 1e-6
            down = objective(*params)
            p[idx] = saved
            numeric[idx] = (up - down) / 2e-6
        np.testing.assert_allclose(g, numeric, atol=1e-6)


def test_bpr_fold_in_agrees_with_the_fitted_user() -> None:
    ds = _toy()
    model = _bpr()
    user = str(ds.users.ids[8])
    hist = list(ds.items.lookup(ds.seen()[8].indices))
    cold = model.recommend(["stranger"], 10, context={"stranger": hist}).item_ids(0)
    warm = model.recommend([user], 10).item_ids(0)
    assert len(set(cold) & set(warm)) >= 5


# ----------------------------------------------------------------------------- HybridMF
def _with_new_items_and_user() -> Dataset:
    """The toy platform plus one item per topic that nobody touched ("fresh-<t>", with topic-t
    category and tags) and a user with declared interest cat0 and no history."""
    ds = _toy()
    new = pd.DataFrame(
        {
            "item": [f"fresh-{t}" for t in range(4)],
            "tags": [f"w{t}_0|w{t}_1" for t in range(4)],
            "category": [f"cat{t}" for t in range(4)],
        }
    )
    users = pd.DataFrame(
        {
            "user": [*ds.users.ids, "newbie"],
            "interests": [*("|".join(x) for x in ds.user_meta.interests), "cat0"],
        }
    )
    return Dataset.from_frames(
        ds.interactions_frame(),
        pd.concat([ds.items_frame(), new]),
        users,
        ds.social_frame(),
        name="toy+",
    )


@cache
def _hybrid() -> tuple[HybridMF, Dataset]:
    ds = _with_new_items_and_user()
    model = HybridMF(factors=16, epochs=30, batch_size=128, learning_rate=0.01).fit(ds)
    return model, ds


def test_hybrid_scores_a_brand_new_item_by_its_metadata() -> None:
    model, ds = _hybrid()
    old_users = ds.users.ids[: ds.n_users - 1]
    user_topic = _user_topics(ds)[: ds.n_users - 1]
    item_topic = _item_topics(ds)
    fresh = [f"fresh-{t}" for t in range(4)]
    warm = ~np.isin(ds.items.ids, fresh)
    for t in range(4):
        fans = old_users[user_topic == t]
        assert len(fans) >= 5
        # among the new items, the one whose metadata matches the fans' topic comes first
        top = model.recommend(list(fans), 1, candidates=fresh)
        assert np.mean([top.item_ids(r)[0] == f"fresh-{t}" for r in range(len(fans))]) >= 0.9
        # and it outscores most established items of the other topics
        others = ds.items.ids[warm & (item_topic != t)]
        beaten = [(model.score(u, others) < model.score(u, [f"fresh-{t}"])[0]).mean() for u in fans]
        assert np.mean(beaten) >= 0.75


def test_hybrid_new_user_with_interests_gets_recommendations_in_them() -> None:
    model, ds = _hybrid()
    recs = model.recommend(["newbie"], 10)
    topics = _item_topics(ds)[recs.items[0]]
    assert (topics == 0).mean() >= 0.6
    exp = model.explain("newbie", recs.item_ids(0)[0])
    assert any(e.kind == "feature" for e in exp.evidence)
    assert not any(e.kind == "item" for e in exp.evidence)  # no history to cite


def test_hybrid_explanation_cites_matching_item_metadata() -> None:
    model, ds = _hybrid()
    fan = str(ds.users.ids[int(np.flatnonzero(_user_topics(ds)[: ds.n_users - 1] == 0)[0])])
    exp = model.explain(fan, "fresh-0")
    names = {e.id for e in exp.evidence if e.kind == "feature"}
    assert names & {"tag=w0_0", "tag=w0_1", "category=cat0", "user:interest=cat0"}
    assert exp.text


def test_hybrid_without_features_is_plain_matrix_factorization() -> None:
    ds = _toy()
    model = HybridMF(
        factors=8, epochs=3, batch_size=128, user_features=False, item_features=False
    ).fit(ds)
    assert model.user_space_.matrix.shape == (ds.n_users, ds.n_users)
    assert model.item_space_.matrix.shape == (ds.n_items, ds.n_items)


# ----------------------------------------------------------------------------- real data
def _movielens_split() -> tuple[Dataset, Dataset]:
    from serendip.evaluation.splits import random_split

    root = shared_data("ml-100k")
    frame = pd.read_csv(root / "u.data", sep="\t", names=["user", "item", "value", "timestamp"])
    frame = frame.astype({"user": str, "item": str})
    split = random_split(Dataset.from_frames(frame, name="ml-100k"), seed=42)
    return split.train, split.test


def _ndcg10(model: Recommender, train: Dataset, test: Dataset) -> float:
    from serendip.evaluation.metrics import hit_matrix, ndcg

    truth = test.seen()
    users = np.flatnonzero(np.diff(truth.indptr) > 0)
    recs = model.recommend(train.users.ids[users], 10)
    hits = hit_matrix(recs.items, truth[users])
    return float(ndcg(hits, np.diff(truth[users].indptr)).mean())


@pytest.mark.realdata
def test_ials_defaults_reach_the_movielens_floor() -> None:
    train, test = _movielens_split()
    assert _ndcg10(IALS().fit(train), train, test) >= 0.40
