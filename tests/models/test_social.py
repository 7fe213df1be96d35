"""Behaviour of the social family beyond the shared contract: in-network recommendations and
their explanations (never naming a private user), learned tie strengths, personalised PageRank
mass and walks along follow edges, the social regulariser of SocialMF, and graceful degradation
on data without a social graph."""

from __future__ import annotations

from functools import cache

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from serendip.data.dataset import Dataset
from serendip.models import Recommender
from serendip.models.social import (
    InNetwork,
    SocialMF,
    SocialPPR,
    TieConfig,
    authored_matrix,
    follow_matrix,
    similar_users,
    tie_strengths,
)
from serendip.models.social._socialmf import _cg_sweep
from tests.conftest import make_toy_platform


def _network(private: tuple[str, ...] = ()) -> Dataset:
    """alice follows bob, carol and dave; bob and carol liked "gem" (a niche item), dave
    authored "post"; ten other users make "hit" popular. erin follows nobody."""
    rows = [("alice", "a1", "like"), ("alice", "a2", "view")]
    rows += [("bob", "gem", "like"), ("bob", "a1", "view"), ("carol", "gem", "share")]
    rows += [("carol", "a2", "like"), ("erin", "a1", "view")]
    rows += [(f"x{k}", "hit", "view") for k in range(10)]
    rows += [(f"x{k}", "a1", "view") for k in range(3)]
    inter = pd.DataFrame(rows, columns=["user", "item", "event"])
    users = sorted({r[0] for r in rows} | {"dave"})
    users_frame = pd.DataFrame({"user": users, "private": [u in private for u in users]})
    items = pd.DataFrame(
        {
            "item": ["a1", "a2", "gem", "hit", "post"],
            "author": ["", "", "", "", "dave"],
        }
    )
    social = pd.DataFrame({"follower": ["alice"] * 3, "followee": ["bob", "carol", "dave"]})
    return Dataset.from_frames(inter, items, users_frame, social, name="network")


def _without_social(ds: Dataset) -> Dataset:
    return Dataset.from_frames(ds.interactions_frame(), ds.items_frame(), name="no-social")


@cache
def _toy() -> Dataset:
    return make_toy_platform(seed=7)


# ----------------------------------------------------------------------------- in-network
def test_in_network_recommends_what_followees_engaged_with_and_says_who() -> None:
    ds = _network()
    model = InNetwork().fit(ds)
    recs = model.recommend(["alice"], 3)
    assert recs.item_ids(0)[0] == "gem"  # two followees engaged; "hit" is merely popular
    exp = model.explain("alice", "gem")
    followees = [e.id for e in exp.evidence if e.kind == "followee"]
    assert set(followees) == {"bob", "carol"}
    assert exp.text.startswith("2 people you follow liked this")
    assert "bob" in exp.text and "carol" in exp.text


def test_in_network_names_the_author_of_an_item() -> None:
    ds = _network()
    model = InNetwork().fit(ds)
    assert "post" in model.recommend(["alice"], 3).item_ids(0)
    exp = model.explain("alice", "post")
    authors = [e for e in exp.evidence if e.kind == "author"]
    assert [a.id for a in authors] == ["dave"]
    assert "posted by dave, whom you follow" in exp.text


@pytest.mark.parametrize("hidden", [("bob",), ("bob", "carol"), ("dave",)])
def test_explanations_never_name_a_private_user(hidden: tuple[str, ...]) -> None:
    ds = _network(private=hidden)
    for cls in (InNetwork, SocialPPR, SocialMF):
        model = cls().fit(ds)
        for item in ("gem", "post"):
            exp = model.explain("alice", item)
            named = {e.id for e in exp.evidence if e.kind in {"followee", "author", "user"}}
            assert not named & set(hidden), (cls.name, item, exp)
            assert not any(h in exp.text for h in hidden), (cls.name, item, exp.text)
    # Their activity still counts, it is only never attributed to them.
    model = InNetwork().fit(ds)
    assert model.recommend(["alice"], 1).item_ids(0) == ["gem"]


def test_a_silent_network_falls_back_to_popularity() -> None:
    ds = _network()
    model = InNetwork(similar_users=0).fit(ds)
    # erin follows nobody: the most popular unseen item comes first, and says so.
    recs = model.recommend(["erin"], 1)
    assert recs.item_ids(0) == ["hit"]
    exp = model.explain("erin", "hit")
    assert exp.text.startswith("Popular")


def test_without_a_social_graph_similar_users_stand_in_for_followees() -> None:
    ds = _without_social(_toy())
    model = InNetwork().fit(ds)
    assert model.implicit_.all()
    u = str(ds.users.ids[0])
    item = model.recommend([u], 1).item_ids(0)[0]
    exp = model.explain(u, item)
    assert "similar taste" in exp.text
    assert all(e.kind != "followee" for e in exp.evidence)


# ----------------------------------------------------------------------------- tie strengths
def test_tie_strengths_follow_the_formula() -> None:
    follow = sp.csr_matrix(np.array([[0, 1, 1], [1, 0, 0], [0, 0, 0]], dtype=np.float32))
    seen = sp.csr_matrix(np.array([[1, 1, 0, 0], [1, 0, 1, 0], [0, 0, 0, 1]], dtype=np.float32))
    weights = seen * 2.0
    authored = sp.csr_matrix(np.array([[0, 0, 0, 0], [0, 1, 0, 0], [0, 0, 0, 1]], dtype=np.float32))
    cfg = TieConfig(tie_author_weight=1.0, tie_overlap_weight=2.0, reciprocity_weight=0.5)
    ties = tie_strengths(follow, seen, weights, authored, cfg).toarray()
    # 0 -> 1: user 0 engaged with item 1 (authored by 1, weight 2); overlap {0} of 2 x 2 items;
    # 1 follows 0 back.
    assert ties[0, 1] == pytest.approx(1 + np.log1p(2.0) + 2.0 * 1 / 2 + 0.5)
    # 0 -> 2: nothing shared, not reciprocated.
    assert ties[0, 2] == pytest.approx(1.0)
    # 1 -> 0: user 1 never touched user 0's items; overlap 1/2; reciprocated.
    assert ties[1, 0] == pytest.approx(1 + 2.0 * 1 / 2 + 0.5)
    assert ties[2].sum() == 0 and (ties[follow.toarray() == 0] == 0).all()


def test_similar_users_are_the_cosine_nearest_others() -> None:
    seen = sp.csr_matrix(
        np.array([[1, 1, 0, 0], [1, 1, 1, 0], [0, 0, 1, 1], [1, 0, 0, 0]], dtype=np.float32)
    )
    nn = similar_users(seen, np.array([0]), 2).toarray()
    assert nn[0, 0] == 0
    assert nn[0, 1] == pytest.approx(2 / np.sqrt(6))
    assert nn[0, 3] == pytest.approx(1 / np.sqrt(2))
    assert nn[0, 2] == 0 and not nn[1:].any()


def test_follow_and_author_matrices() -> None:
    ds = _network()
    f = follow_matrix(ds)
    alice = ds.users.index("alice")
    assert set(ds.users.lookup(f[alice].indices)) == {"bob", "carol", "dave"}
    a = authored_matrix(ds)
    assert a[ds.users.index("dave"), ds.items.index("post")] == 1 and a.nnz == 1


# ----------------------------------------------------------------------------- PageRank
def test_ppr_distributions_sum_to_one_and_match_the_closed_form() -> None:
    ds = _toy()
    model = SocialPPR(iterations=200).fit(ds)
    users = np.arange(5)
    x = model.walk(model._restart(users, np.arange(5), 5))
    np.testing.assert_allclose(x.sum(axis=0), 1.0, atol=1e-4)
    assert (x >= 0).all()
    # Closed form: x = a (I - (1 - a) P^T)^-1 r, when no node is dangling.
    p = model.transition_.toarray()
    assert (p.sum(axis=1) > 0).all()
    a = model.config.restart
    r = np.zeros((len(p), 5))
    r[users, np.arange(5)] = 1.0
    exact = a * np.linalg.solve(np.eye(len(p)) - (1 - a) * p.T, r)
    np.testing.assert_allclose(x, exact, atol=1e-5)


def test_ppr_walks_along_follow_edges() -> None:
    ds = _network()
    # Someone new who follows carol only and has no history: the walk goes through carol.
    frame = ds.social_frame()
    social = pd.concat(
        [frame, pd.DataFrame({"follower": ["newbie"], "followee": ["carol"]})], ignore_index=True
    )
    users = pd.DataFrame({"user": [*ds.users.ids, "newbie"]})
    data = Dataset.from_frames(ds.interactions_frame(), ds.items_frame(), users, social)
    model = SocialPPR().fit(data)
    recs = model.recommend(["newbie"], 2).item_ids(0)
    assert set(recs) == {"gem", "a2"}  # carol's items, not the popular "hit"
    exp = model.explain("newbie", "gem")
    assert [e.id for e in exp.evidence if e.kind == "followee"] == ["carol"]


def test_ppr_without_a_social_graph_is_a_user_item_walk() -> None:
    ds = _without_social(_toy())
    model = SocialPPR().fit(ds)
    n_u = ds.n_users
    assert model.transition_[:n_u, :n_u].nnz == 0
    recs = model.recommend(list(ds.users.ids[:5]), 5)
    assert (recs.items >= 0).all()


def test_ppr_popularity_penalty_favours_the_tail() -> None:
    ds = _toy()
    users = list(ds.users.ids[:30])
    pop = ds.seen().sum(axis=0).A1
    flat = SocialPPR(beta=0.0).fit(ds).recommend(users, 5).items
    penalised = SocialPPR(beta=1.0).fit(ds).recommend(users, 5).items
    assert pop[penalised].mean() < pop[flat].mean()


# ----------------------------------------------------------------------------- SocialMF
def test_batched_conjugate_gradient_solves_the_normal_equations() -> None:
    rng = np.random.default_rng(0)
    conf = sp.csr_matrix(sp.random(6, 9, density=0.4, random_state=1) * 3.0)
    other = rng.normal(size=(9, 4))
    reg = np.full(6, 0.5)
    extra = rng.normal(size=(6, 4))
    x = _cg_sweep(conf, other, np.zeros((6, 4)), reg, extra, steps=30)
    for r in range(6):
        c = conf[r].toarray().ravel()
        a = other.T @ other + other.T @ np.diag(c) @ other + 0.5 * np.eye(4)
        b = other.T @ ((1 + c) * (c > 0)) + extra[r]
        np.testing.assert_allclose(x[r], np.linalg.solve(a, b), atol=1e-6)


def test_social_regulariser_pulls_friends_together() -> None:
    ds = _toy()
    follow = follow_matrix(ds)
    u, v = follow.nonzero()

    def friend_distance(model: SocialMF) -> float:
        x = model.user_factors_ / np.linalg.norm(model.user_factors_, axis=1, keepdims=True)
        return float(np.linalg.norm(x[u] - x[v], axis=1).mean())

    plain = SocialMF(social_reg=0.0, iterations=8).fit(ds)
    social = SocialMF(social_reg=20.0, iterations=8).fit(ds)
    assert friend_distance(social) < friend_distance(plain)


def test_socialmf_without_a_graph_is_plain_implicit_als() -> None:
    ds = _without_social(_toy())
    a = SocialMF(social_reg=0.0, factors=8, iterations=4).fit(ds)
    b = SocialMF(social_reg=5.0, factors=8, iterations=4).fit(ds)
    np.testing.assert_array_equal(a.user_factors_, b.user_factors_)


def test_socialmf_user_without_history_inherits_from_followees() -> None:
    ds = _network()
    social = pd.concat(
        [ds.social_frame(), pd.DataFrame({"follower": ["newbie"], "followee": ["carol"]})],
        ignore_index=True,
    )
    users = pd.DataFrame({"user": [*ds.users.ids, "newbie"]})
    data = Dataset.from_frames(ds.interactions_frame(), ds.items_frame(), users, social)
    model = SocialMF(factors=4, iterations=10, regularization=0.1, social_reg=5.0).fit(data)
    newbie, carol = data.users.index("newbie"), data.users.index("carol")
    x = model.user_factors_
    assert np.abs(x[newbie]).sum() > 0
    # x_newbie = social_reg (G + (reg + social_reg) I)^-1 x_carol: close to carol's direction.
    assert x[newbie] @ x[carol] / (np.linalg.norm(x[newbie]) * np.linalg.norm(x[carol])) > 0.8
    assert model.recommend(["newbie"], 1).item_ids(0)[0] in {"gem", "a2"}
    # dave follows nobody and has no history: nothing to go on, popularity decides.
    dave = data.users.index("dave")
    np.testing.assert_allclose(x[dave], 0.0, atol=1e-12)
    assert model.recommend(["dave"], 1).item_ids(0) == ["hit"]


def test_socialmf_explanation_splits_the_score_exactly() -> None:
    ds = _toy()
    model = SocialMF(factors=8, iterations=6).fit(ds)
    u = 3
    uid = str(ds.users.ids[u])
    item = model.recommend([uid], 1).item_ids(0)[0]
    i = ds.items.index(item)
    # The exact per-user solution reproduces the score that the decomposition splits.
    a, b, srow = model._user_system(u)
    z = np.linalg.solve(a, model.item_factors_[i])
    row = model.weights_[u]
    c = 1.0 + model.config.alpha * row.data
    parts = (c * (model.item_factors_[row.indices] @ z)).sum()
    parts += model.config.social_reg * (srow.data * (model.user_factors_[srow.indices] @ z)).sum()
    assert parts == pytest.approx(float(np.linalg.solve(a, b) @ model.item_factors_[i]), rel=1e-6)
    exp = model.explain(uid, item)
    hist = set(ds.items.lookup(ds.seen()[u].indices))
    assert all(e.id in hist for e in exp.evidence if e.kind == "item")


# ----------------------------------------------------------------------------- all three
@pytest.mark.parametrize("cls", [InNetwork, SocialPPR, SocialMF])
def test_update_folds_in_new_events_and_survives_save_load(
    cls: type[Recommender], tmp_path: object
) -> None:
    ds = _toy()
    model = cls().fit(ds)
    u = str(ds.users.ids[0])
    before = model.recommend([u], 5).item_ids(0)
    model.update(pd.DataFrame({"user": [u] * 2, "item": before[:2], "event": ["like", "share"]}))
    after = model.recommend([u], 5).item_ids(0)
    assert not set(before[:2]) & set(after)
    path = tmp_path / "m"  # type: ignore[operator]
    model.save(path)
    np.testing.assert_array_equal(
        Recommender.load(path).recommend([u], 5).items, model.recommend([u], 5).items
    )
