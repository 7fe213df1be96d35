"""Peers used raw: each fits on the toy platform, recommends unseen items through the library's
own batch call, evaluates like a model of the zoo, and saves with the library's own format."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from serendip.data.dataset import Dataset
from serendip.errors import CapacityError, ConfigError, NotFittedError
from serendip.evaluation import evaluate_recommendations, random_split
from serendip.evaluation.study.peers import (
    PEERS,
    ImplicitALSPeer,
    ImplicitBPRPeer,
    confidence_matrix,
)
from serendip.models.base import Choice, FloatRange, IntRange, RecLists
from tests.conftest import shared_data

FAST = {
    "implicit-als": {"factors": 8, "iterations": 5},
    "implicit-bpr": {"factors": 8, "iterations": 10},
}


@pytest.fixture(scope="module")
def split(toy_platform: Dataset):  # type: ignore[no-untyped-def]
    return random_split(toy_platform, test_fraction=0.2, seed=0, min_interactions=5)


def test_registry_names_every_implicit_peer() -> None:
    assert set(PEERS) >= {"implicit-als", "implicit-bpr", "implicit-itemknn", "implicit-bm25"}
    for name, cls in PEERS.items():
        assert cls.name == name
        assert cls.family == "peer"
        for key, dim in cls.search_space.items():
            assert isinstance(dim, IntRange | FloatRange | Choice)
            assert key in cls.defaults, f"{name}: search space names unknown parameter {key}"


@pytest.mark.filterwarnings("ignore:OpenBLAS is configured")  # building, not fitting, here
def test_defaults_are_the_librarys() -> None:
    from implicit.als import AlternatingLeastSquares
    from implicit.bpr import BayesianPersonalizedRanking

    als = ImplicitALSPeer()._build()
    lib = AlternatingLeastSquares()
    assert (als.factors, als.regularization, als.alpha, als.iterations) == (
        lib.factors,
        lib.regularization,
        lib.alpha,
        lib.iterations,
    )
    bpr = ImplicitBPRPeer()._build()
    ref = BayesianPersonalizedRanking()
    assert (bpr.factors, bpr.learning_rate, bpr.regularization, bpr.iterations) == (
        ref.factors,
        ref.learning_rate,
        ref.regularization,
        ref.iterations,
    )


@pytest.mark.parametrize("name", sorted(PEERS))
def test_peer_recommends_unseen_items_and_evaluates(name: str, split, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    peer = PEERS[name](FAST.get(name)).fit(split.train)
    assert peer.fit_seconds_ >= 0
    users = split.test.users.lookup(np.unique(split.test.interactions.user))
    asked = [*users, "nobody-knows-me"]
    recs = peer.recommend(asked, k=10)
    assert isinstance(recs, RecLists)
    assert recs.items.shape == (len(asked), 10)
    assert list(recs.users) == asked
    seen = split.train.seen()
    for row, user in enumerate(users):
        got = recs.items[row][recs.items[row] >= 0]
        assert len(got) == len(set(got.tolist())), "duplicates in a list"
        assert len(got) > 0
        u = split.train.users.get(str(user))
        assert not set(got.tolist()) & set(seen[u].indices.tolist()), "a training item came back"
        finite = recs.scores[row][: len(got)]
        assert np.all(np.diff(finite) <= 1e-6), "not best first"
    assert np.all(recs.items[-1] == -1) and np.all(np.isneginf(recs.scores[-1]))
    known = RecLists(recs.users[:-1], recs.items[:-1], recs.scores[:-1], recs.item_vocab)
    result = evaluate_recommendations(known, split.train, split.test, k=10)
    assert 0.0 < result.metrics["ndcg@10"] <= 1.0
    saved = peer.save(tmp_path / name)
    written = [f for f in saved.rglob("*") if f.is_file() and f.name != "peer.json"]
    assert written and sum(f.stat().st_size for f in written) > 0, "the library saved nothing"


@pytest.mark.parametrize("name", sorted(PEERS))
def test_peer_is_deterministic(name: str, split) -> None:  # type: ignore[no-untyped-def]
    users = split.test.users.lookup(np.unique(split.test.interactions.user))
    a = PEERS[name](FAST.get(name)).fit(split.train).recommend(users, 5)
    b = PEERS[name](FAST.get(name)).fit(split.train).recommend(users, 5)
    np.testing.assert_array_equal(a.items, b.items)


def test_unknown_parameter_names_the_valid_ones() -> None:
    with pytest.raises(ConfigError, match=r"factorz.*valid: .*factors"):
        ImplicitALSPeer({"factorz": 3})


@pytest.mark.skipif("cornac-ease" not in PEERS, reason="cornac (the peers extra) not installed")
def test_cornac_ease_refuses_a_catalogue_beyond_its_memory(split) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(CapacityError, match="max_memory_mb"):
        PEERS["cornac-ease"]({"max_memory_mb": 0.01}).fit(split.train)


@pytest.mark.parametrize("name", sorted(PEERS))
def test_users_without_training_history_get_empty_lists(name: str, toy_platform: Dataset) -> None:
    first = toy_platform.users.lookup(np.array([0]))[0]
    train = toy_platform.filter_interactions(toy_platform.interactions.user != 0)
    peer = PEERS[name](FAST.get(name)).fit(train)
    recs = peer.recommend([first, toy_platform.users.lookup(np.array([1]))[0]], 5)
    assert np.all(recs.items[0] == -1)
    assert np.all(recs.items[1] >= 0)


def test_recommend_before_fit_is_a_clear_error() -> None:
    with pytest.raises(NotFittedError):
        ImplicitALSPeer().recommend(["u000"], 5)


@pytest.mark.parametrize("name", sorted(PEERS))
def test_peer_has_the_models_shape(name: str, split, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """fit returns the peer, save needs a fit, k is checked and a single ID is one user, as
    for a model of the zoo."""
    peer = PEERS[name](FAST.get(name))
    with pytest.raises(NotFittedError):
        peer.save(tmp_path / "unfitted")
    assert peer.fit(split.train) is peer
    with pytest.raises(ConfigError, match="k must be at least 1"):
        peer.recommend(["u000"], 0)
    user = str(split.train.users.id(0))
    one = peer.recommend(user, 5)
    assert list(one.users) == [user]
    np.testing.assert_array_equal(one.items, peer.recommend([user], 5).items)


def test_confidence_counts_values_but_not_ratings(toy_platform: Dataset) -> None:
    import pandas as pd

    counts = Dataset.from_frames(
        pd.DataFrame({"user": ["a", "a", "b"], "item": ["x", "x", "y"], "value": [3, 2, 7]})
    )
    m = confidence_matrix(counts).toarray()
    assert m[counts.users.get("a"), counts.items.get("x")] == 5.0
    assert m[counts.users.get("b"), counts.items.get("y")] == 7.0
    ratings = Dataset.from_frames(
        pd.DataFrame(
            {"user": ["a", "b"], "item": ["x", "y"], "event": "rating", "value": [4.0, 2.0]}
        )
    )
    assert set(confidence_matrix(ratings).data.tolist()) == {1.0}
    with pytest.raises(ConfigError, match="confidence"):
        confidence_matrix(toy_platform, "squared")


@pytest.mark.realdata
def test_implicit_als_on_movielens_is_in_a_sane_range() -> None:
    from serendip.data.loaders import load_movielens

    ds = load_movielens(shared_data("ml-100k"))
    split = random_split(ds, test_fraction=0.2, seed=42, min_interactions=5)
    users = split.test.users.lookup(np.unique(split.test.interactions.user))
    peer = ImplicitALSPeer().fit(split.train)
    ndcg = evaluate_recommendations(peer.recommend(users, 10), split.train, split.test).metrics[
        "ndcg@10"
    ]
    # above popularity's 0.22 and below the best tuned model's ~0.45: untuned library defaults
    assert 0.24 < ndcg < 0.47, ndcg
