"""`evaluate_recommendations`: a hand-computed protocol example, input handling, and agreement
with the naive reference on a synthetic platform and on real data (ML100K, Last.fm)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from serendip.data.dataset import Dataset
from serendip.errors import ConfigError, DataError
from serendip.evaluation import (
    ActivitySlices,
    TopKLists,
    evaluate_recommendations,
    random_split,
    recs_from_frame,
)
from serendip.evaluation.splits import Split
from tests.conftest import make_toy_platform, shared_data
from tests.evaluation import _reference as ref

LOG3 = math.log2(3)
C3 = 1 / LOG3  # discount of position 2


def small_case() -> tuple[Dataset, Dataset]:
    """Users a, b, c, d; items p q r s t u (vocabulary order).

    train: a {p, q}; b {p}; c {p, q, r, s, t}; d nothing.
    test:  a {r, s, p}; b {t}; c {u}; d {p}.  (a's p is a training item: dropped from truth)
    """
    train = [
        ("a", "p"),
        ("a", "q"),
        ("b", "p"),
        ("c", "p"),
        ("c", "q"),
        ("c", "r"),
        ("c", "s"),
        ("c", "t"),
    ]
    test = [("a", "r"), ("a", "s"), ("a", "p"), ("b", "t"), ("c", "u"), ("d", "p")]
    frame = pd.DataFrame(train + test, columns=["user", "item"])
    items = pd.DataFrame({"item": list("pqrstu")})
    ds = Dataset.from_frames(frame, items)
    mask = np.arange(len(frame)) < len(train)
    return ds.filter_interactions(mask), ds.filter_interactions(~mask)


# K = 2. a: [t, r] (hit at 2); b: [t, r] (hit at 1); c: [p, u] (p is c's training item; hit at 2);
# d: no list at all.
SMALL_RECS = pd.DataFrame(
    {
        "user": ["a", "a", "b", "b", "c", "c"],
        "item": ["t", "r", "t", "r", "p", "u"],
        "rank": [1, 2, 1, 2, 1, 2],
    }
)


def test_hand_computed_protocol_example() -> None:
    train, test = small_case()
    res = evaluate_recommendations(SMALL_RECS, train, test, k=2)
    expected = {
        "precision@2": (0.5 + 0.5 + 0.5 + 0) / 4,
        "recall@2": (0.5 + 1 + 1 + 0) / 4,
        "recall_capped@2": (0.5 + 1 + 1 + 0) / 4,
        "ndcg@2": (C3 / (1 + C3) + 1 + C3 + 0) / 4,
        "map@2": (0.25 + 1 + 0.5 + 0) / 4,
        "mrr@2": (0.5 + 1 + 0.5 + 0) / 4,
        "hit_rate@2": 3 / 4,
        # exposure p1 q0 r2 s0 t2 u1 -> 4 of 6 items; Gini of [0,0,1,1,2,2] = 32 / 72.
        "coverage@2": 4 / 6,
        "gini@2": 32 / 72,
        # Training popularity (users): p 3, q 2, r s t 1, u 0 (counts as 1); 3 training users.
        "novelty@2": (LOG3 + LOG3 + (0 + LOG3) / 2 + 0) / 4,
        "arp@2": (1 + 1 + 1.5 + 0) / 4,
        # Popularity baseline top-2 skipping own items: a {r, s}, b {q, r}, c {u}, d {p, q}.
        # Only b's hit t is outside its baseline: 1 of 2 slots.
        "serendipity@2": (0 + 0.5 + 0 + 0) / 4,
    }
    assert set(res.metrics) == set(expected)  # no content, no social graph: ild and oon skipped
    for name, value in expected.items():
        assert res.metrics[name] == pytest.approx(value, abs=1e-12), name
    assert res.n_users == 4
    assert res.slice_sizes == {"cold": 3, "light": 1, "heavy": 0}
    assert res.slices["cold"]["precision@2"] == pytest.approx(1 / 3)
    assert res.slices["light"]["ndcg@2"] == pytest.approx(C3)
    assert "heavy" not in res.slices
    assert res.diagnostics["n_truth_pairs_excluded_as_training"] == 1
    assert res.diagnostics["n_test_users_without_recs"] == 1
    assert res.diagnostics["listed_seen_items_share"] == pytest.approx(1 / 6)
    assert any("ild" in n for n in res.notes) and any("oon" in n for n in res.notes)


def test_keeping_training_items_in_truth_changes_recall() -> None:
    train, test = small_case()
    res = evaluate_recommendations(SMALL_RECS, train, test, k=2, exclude_train_from_truth=False)
    # a's truth is now {r, s, p}: recall 1/3 instead of 1/2.
    assert res["recall@2"] == pytest.approx((1 / 3 + 1 + 1 + 0) / 4)


def test_several_cutoffs_and_longer_lists_are_cut() -> None:
    train, test = small_case()
    res = evaluate_recommendations(SMALL_RECS, train, test, k=[1, 2])
    assert res.ks == (1, 2)
    assert res["precision@1"] == pytest.approx((0 + 1 + 0 + 0) / 4)
    assert res["hit_rate@1"] == pytest.approx(1 / 4)
    only1 = evaluate_recommendations(SMALL_RECS, train, test, k=1)
    assert only1["ndcg@1"] == res["ndcg@1"]


def test_k_larger_than_the_lists_counts_empty_slots_as_misses() -> None:
    train, test = small_case()
    res = evaluate_recommendations(SMALL_RECS, train, test, k=4)
    assert res["precision@4"] == pytest.approx(3 / 4 / 4)
    assert res["recall@4"] == pytest.approx((0.5 + 1 + 1) / 4)
    assert res.diagnostics["n_test_users_short_lists"] == 3


def test_array_and_topk_inputs_agree_with_the_frame() -> None:
    train, test = small_case()
    by_frame = evaluate_recommendations(SMALL_RECS, train, test, k=2)
    idx = train.items.indices
    arr = np.full((4, 2), -1)
    arr[0] = idx(["t", "r"])
    arr[1] = idx(["t", "r"])
    arr[2] = idx(["p", "u"])
    assert evaluate_recommendations(arr, train, test, k=2).metrics == by_frame.metrics
    lists = TopKLists(np.array([2, 0, 1]), arr[[2, 0, 1]])
    assert evaluate_recommendations(lists, train, test, k=2).metrics == by_frame.metrics


def test_recs_of_non_test_users_are_ignored() -> None:
    train, test = small_case()
    test_without_b = test.filter_interactions(test.interactions.user != train.users.index("b"))
    res = evaluate_recommendations(SMALL_RECS, train, test_without_b, k=2)
    assert res.n_users == 3
    assert res["hit_rate@2"] == pytest.approx(2 / 3)


def test_score_column_orders_lists_when_rank_is_absent() -> None:
    train, test = small_case()
    frame = SMALL_RECS.drop(columns="rank").assign(score=[0.9, 0.8, 5.0, 1.0, 0.1, 0.0])
    lists = recs_from_frame(frame, train.users, train.items)
    assert lists.items[0].tolist() == train.items.indices(["t", "r"]).tolist()
    res = evaluate_recommendations(frame, train, test, k=2)
    assert res["ndcg@2"] == pytest.approx(
        evaluate_recommendations(SMALL_RECS, train, test, k=2)["ndcg@2"]
    )


@pytest.mark.parametrize(
    ("frame", "message"),
    [
        (pd.DataFrame({"user": ["a"], "item": ["p"]}), "missing column"),
        (
            pd.DataFrame({"user": ["a"], "item": ["zz"], "rank": [1]}),
            "row 0: item 'zz' is not in the catalog",
        ),
        (
            pd.DataFrame({"user": ["nobody"], "item": ["p"], "rank": [1]}),
            "user 'nobody' appears in neither",
        ),
        (
            pd.DataFrame({"user": ["a", "a"], "item": ["p", "q"], "rank": [1, 1.5]}),
            "row 1: rank '1.5' is not a positive",
        ),
        (
            pd.DataFrame({"user": ["a", "a"], "item": ["p", "p"], "rank": [1, 2]}),
            "row 1: user 'a' lists item 'p' twice",
        ),
        (
            pd.DataFrame({"user": ["a", "a"], "item": ["p", "q"], "rank": [2, 2]}),
            "row 1: user 'a' uses rank 2 twice",
        ),
        (
            pd.DataFrame({"user": ["a", ""], "item": ["p", "q"], "rank": [1, 2]}),
            "row 1: empty user ID",
        ),
    ],
)
def test_malformed_recommendation_frames_name_the_row(frame: pd.DataFrame, message: str) -> None:
    train, test = small_case()
    with pytest.raises(DataError, match=message):
        evaluate_recommendations(frame, train, test, k=2)


def test_input_shape_errors() -> None:
    train, test = small_case()
    with pytest.raises(ConfigError, match="one row per user"):
        evaluate_recommendations(np.zeros((2, 2), dtype=int), train, test)
    with pytest.raises(ConfigError, match="more than once"):
        evaluate_recommendations(np.array([[0, 0], [1, 2], [-1, -1], [-1, -1]]), train, test)
    with pytest.raises(ConfigError, match="positive"):
        evaluate_recommendations(SMALL_RECS, train, test, k=0)
    other = Dataset.from_frames(pd.DataFrame({"user": ["a"], "item": ["p"]}))
    with pytest.raises(ConfigError, match="share the user vocabulary"):
        evaluate_recommendations(SMALL_RECS, train, other)


def test_quantile_slices_and_their_description() -> None:
    s = ActivitySlices(method="quantile", cold_below=2, heavy_quantile=0.5)
    activity = np.array([0, 1, 2, 3, 4, 10])
    # Non-cold activity [2, 3, 4, 10], median 3.5: heavy = 4 and 10.
    assert s.assign(activity).tolist() == [0, 0, 1, 1, 2, 2]
    assert s.describe(activity)["heavy"].startswith("> 3.5")
    with pytest.raises(ValueError, match="heavy_above"):
        ActivitySlices(cold_below=10, heavy_above=3)
    with pytest.raises(ValueError, match="extra"):
        ActivitySlices(cold=3)  # type: ignore[call-arg]


def test_embeddings_switch_diversity_to_cosine() -> None:
    train, test = small_case()
    emb = np.eye(6)  # every pair of distinct items is orthogonal: distance 1
    res = evaluate_recommendations(SMALL_RECS, train, test, k=2, embeddings=emb)
    # three lists of two distinct items (distance 1), d has none (0).
    assert res["ild@2"] == pytest.approx(3 / 4)


def test_to_dict_is_json_ready_and_per_user_rows_match() -> None:
    import json

    train, test = small_case()
    res = evaluate_recommendations(SMALL_RECS, train, test, k=2, keep_per_user=True)
    d = json.loads(json.dumps(res.to_dict(per_user=True)))
    assert d["metrics"]["map@2"] == pytest.approx(0.4375)
    assert d["slice_sizes"]["cold"] == 3
    assert res.per_user is not None
    assert res.per_user.set_index("user").loc["b", "serendipity@2"] == 0.5
    assert res.per_user["map@2"].mean() == pytest.approx(res["map@2"])


# --------------------------------------------------------------------------- vs the reference
def _reference_inputs(split: Split, lists: np.ndarray) -> dict:
    tr, te = split.train.interactions, split.test.interactions
    train: dict[int, set[int]] = {}
    for u, i in zip(tr.user.tolist(), tr.item.tolist(), strict=True):
        train.setdefault(u, set()).add(i)
    test: dict[int, set[int]] = {}
    for u, i in zip(te.user.tolist(), te.item.tolist(), strict=True):
        test.setdefault(u, set()).add(i)
    recs = {u: [i for i in row if i >= 0] for u, row in enumerate(lists.tolist())}
    return {"recs": recs, "train": train, "test": test, "all_users": range(split.train.n_users)}


def _content_sets(ds: Dataset) -> list[set[str]]:
    meta = ds.item_meta
    return [
        {"t:" + t for t in meta.tags[i]}
        | ({"c:" + meta.category[i]} if meta.category[i] else set())
        for i in range(ds.n_items)
    ]


def _random_lists(split: Split, k: int, seed: int, pool: int | None = None) -> np.ndarray:
    """Random top-k lists of unseen items (from the `pool` most popular when given), -1 padded."""
    rng = np.random.default_rng(seed)
    seen = split.train.seen().tolil().rows
    order = np.argsort(-split.train.item_counts(), kind="stable")
    candidates = order[:pool] if pool else np.arange(split.train.n_items)
    out = np.full((split.train.n_users, k), -1)
    for u in range(split.train.n_users):
        length = int(rng.integers(0, k + 1)) if pool is None else k
        own = set(seen[u])
        pick = [i for i in rng.permutation(candidates) if i not in own][:length]
        out[u, : len(pick)] = pick
    return out


@settings(max_examples=15, deadline=None)
@given(st.integers(0, 2**16), st.integers(1, 12))
def test_toy_platform_agrees_with_reference(seed: int, k: int) -> None:
    ds = make_toy_platform(seed=seed % 5, n_users=40, n_items=60)
    split = random_split(ds, test_fraction=0.3, seed=seed)
    lists = _random_lists(split, k, seed)
    res = evaluate_recommendations(lists, split.train, split.test, k=k)
    follows: dict[int, set[int]] = {}
    for f, g in zip(ds.social.follower.tolist(), ds.social.followee.tolist(), strict=True):
        follows.setdefault(f, set()).add(g)
    expected = ref.evaluate(
        **_reference_inputs(split, lists),
        n_items=ds.n_items,
        k=k,
        content=_content_sets(ds),
        follows=follows,
        author=ds.item_author_index().tolist(),
    )
    for name, value in expected.items():
        assert res.metrics[f"{name}@{k}"] == pytest.approx(value, abs=1e-9), name
    assert len(res.metrics) == len(expected)


@pytest.fixture(scope="module")
def movielens_split() -> Split:
    path = shared_data("ml-100k")
    frame = pd.read_csv(path / "u.data", sep="\t", names=["user", "item", "value", "timestamp"])
    genres = pd.read_csv(path / "u.genre", sep="|", names=["name", "id"])["name"].tolist()
    cols = ["item", "title", "date", "video", "url", *genres]
    items = pd.read_csv(path / "u.item", sep="|", names=cols, encoding="latin-1")
    flags = items[genres].to_numpy(dtype=bool)
    items = pd.DataFrame(
        {
            "item": items["item"],
            "tags": ["|".join(g for g, f in zip(genres, row, strict=True) if f) for row in flags],
        }
    )
    ds = Dataset.from_frames(frame, items, name="ml-100k")
    return random_split(ds, test_fraction=0.2, seed=7)


def _popularity_lists(split: Split, k: int) -> np.ndarray:
    seen = split.train.seen().toarray() > 0
    score = np.where(seen, -1, split.train.item_counts()[None, :])
    return np.argsort(-score, axis=1, kind="stable")[:, :k]


@pytest.mark.realdata
@pytest.mark.parametrize("recommender", ["popularity", "random"])
def test_movielens_metrics_agree_with_reference(movielens_split: Split, recommender: str) -> None:
    split, k = movielens_split, 10
    lists = (
        _popularity_lists(split, k)
        if recommender == "popularity"
        else _random_lists(split, k, 0, pool=400)
    )
    res = evaluate_recommendations(lists, split.train, split.test, k=k)
    expected = ref.evaluate(
        **_reference_inputs(split, lists),
        n_items=split.train.n_items,
        k=k,
        content=_content_sets(split.train),
    )
    for name, value in expected.items():
        assert res.metrics[f"{name}@{k}"] == pytest.approx(value, abs=1e-9), name
    assert res.n_users == 943
    if recommender == "random":
        assert res["serendipity@10"] > 0  # random lists do hit outside the popular head
    else:
        assert res["serendipity@10"] == 0.0  # popularity is its own baseline


@pytest.mark.realdata
def test_movielens_ndcg_matches_sklearn(movielens_split: Split) -> None:
    from sklearn.metrics import ndcg_score

    split, k = movielens_split, 10
    lists = _popularity_lists(split, k)
    res = evaluate_recommendations(lists, split.train, split.test, k=k, keep_per_user=True)
    # sklearn scores a full ranking of the candidates (catalog minus training items). Its ideal
    # DCG@k over binary relevance is ours (min(|T|, k) hits first); items outside the list tie
    # at score 0, a tie group that starts after position k and so never enters DCG@k.
    y_true = split.test.seen().toarray()
    y_score = np.zeros_like(y_true)
    rows = np.arange(len(lists))[:, None]
    y_score[rows, lists] = np.arange(k, 0, -1)[None, :]
    seen = split.train.seen().toarray() > 0
    y_score[seen] = -1.0  # training items rank last (and are never relevant here)
    users = np.flatnonzero(y_true.sum(axis=1) > 0)
    expected = ndcg_score(y_true[users], y_score[users], k=k)
    assert res["ndcg@10"] == pytest.approx(expected, abs=1e-9)


@pytest.mark.realdata
def test_lastfm_out_of_network_metrics_agree_with_reference() -> None:
    path = shared_data("lastfm-2k")
    inter = pd.read_csv(path / "user_artists.dat", sep="\t").rename(
        columns={"userID": "user", "artistID": "item", "weight": "value"}
    )
    social = pd.read_csv(path / "user_friends.dat", sep="\t").rename(
        columns={"userID": "follower", "friendID": "followee"}
    )
    ds = Dataset.from_frames(inter, social=social, name="lastfm")
    split = random_split(ds, test_fraction=0.2, seed=3)
    k = 10
    lists = _random_lists(split, k, 1, pool=300)
    res = evaluate_recommendations(lists, split.train, split.test, k=k)
    follows: dict[int, set[int]] = {}
    for f, g in zip(ds.social.follower.tolist(), ds.social.followee.tolist(), strict=True):
        follows.setdefault(f, set()).add(g)
    expected = ref.evaluate(
        **_reference_inputs(split, lists), n_items=ds.n_items, k=k, follows=follows
    )
    for name, value in expected.items():
        assert res.metrics[f"{name}@{k}"] == pytest.approx(value, abs=1e-9), name
    assert 0 < res["oon_share@10"] < 1 and 0 < res["oon_hit_rate@10"] < 1


def test_fold_in_history_counts_as_seen_for_a_cold_user() -> None:
    # Training popularity: p (3 users) > q (2) > r (1). Cold user x: fold-in {p}, test {q, r}.
    train = [("a", "p"), ("b", "p"), ("c", "p"), ("a", "q"), ("b", "q"), ("a", "r")]
    frame = pd.DataFrame([*train, ("x", "p"), ("x", "q"), ("x", "r")], columns=["user", "item"])
    ds = Dataset.from_frames(frame)
    part = np.array([0] * 6 + [1, 2, 2])
    tr, fold, te = (ds.filter_interactions(part == i) for i in range(3))
    recs = pd.DataFrame({"user": ["x"], "item": ["q"], "rank": [1]})
    # Without the fold-in, the popularity baseline's top-1 for x is p: the hit q is unexpected.
    assert evaluate_recommendations(recs, tr, te, k=1)["serendipity@1"] == 1.0
    # With it, x has seen p, so the baseline shows q: no serendipity.
    res = evaluate_recommendations(recs, tr, te, k=1, fold_in=fold)
    assert res["serendipity@1"] == 0.0 and res["precision@1"] == 1.0
    assert res.slice_sizes["cold"] == 1  # activity is counted on train only
    listed_seen = pd.DataFrame({"user": ["x", "x"], "item": ["p", "q"], "rank": [1, 2]})
    res2 = evaluate_recommendations(listed_seen, tr, te, k=2, fold_in=fold)
    assert res2.diagnostics["listed_seen_items_share"] == 0.5


def test_no_test_users_gives_zeros_and_a_note() -> None:
    train, test = small_case()
    empty = test.filter_interactions(np.zeros(test.n_interactions, dtype=bool))
    res = evaluate_recommendations(SMALL_RECS, train, empty, k=np.int64(2))
    assert res.n_users == 0 and res.ks == (2,)
    assert all(v == 0.0 for v in res.metrics.values())
    assert any("no test users" in n for n in res.notes)


def test_model_reclists_with_external_ids_and_own_vocabulary() -> None:
    from serendip.data.vocabulary import Vocabulary
    from serendip.models.base import RecLists

    train, test = small_case()
    by_frame = evaluate_recommendations(SMALL_RECS, train, test, k=2)
    # A model whose item vocabulary lists the items in another order.
    vocab = Vocabulary(list("utsrqp"))
    items = np.array(
        [vocab.indices(["t", "r"]), vocab.indices(["t", "r"]), vocab.indices(["p", "u"])]
    )
    lists = RecLists(
        users=np.array(["a", "b", "c"], dtype=object),
        items=items,
        scores=np.zeros(items.shape, dtype=np.float32),
        item_vocab=vocab,
    )
    assert evaluate_recommendations(lists, train, test, k=2).metrics == by_frame.metrics
    with pytest.raises(ConfigError, match="user 'zz'"):
        evaluate_recommendations(
            RecLists(
                np.array(["zz"], dtype=object), items[:1], np.zeros((1, 2), np.float32), vocab
            ),
            train,
            test,
            k=2,
        )


def test_popularity_model_end_to_end_on_the_toy_platform() -> None:
    from serendip.models.baselines import Popularity

    split = random_split(make_toy_platform(seed=2), test_fraction=0.2, seed=0)
    model = Popularity().fit(split.train)
    users = split.test.users.ids[np.unique(split.test.interactions.user)]
    res = evaluate_recommendations(model.recommend(users, 10), split.train, split.test, k=10)
    assert res.diagnostics["listed_seen_items_share"] == 0.0  # the model hides seen items
    assert res.diagnostics["n_test_users_without_recs"] == 0
    assert 0 < res["ndcg@10"] < 1
    # The popularity model is (up to ties) its own serendipity baseline.
    assert res["serendipity@10"] <= 0.02


def test_progress_names_every_stage_and_timings_cover_them() -> None:
    train, test = small_case()  # no social graph, no tags: no "social" or "diversity" stage
    calls: list[str] = []
    res = evaluate_recommendations(SMALL_RECS, train, test, k=[2, 1], progress=calls.append)
    stages = ["truth", "align", "hits", "train statistics", "metrics@1", "metrics@2", "aggregate"]
    assert calls == [*stages, "done"]
    assert list(res.timings_s) == stages and all(t >= 0 for t in res.timings_s.values())
    split = random_split(make_toy_platform(seed=1), test_fraction=0.3, seed=1)
    calls.clear()
    res = evaluate_recommendations(
        _random_lists(split, 3, 1), split.train, split.test, k=3, progress=calls.append
    )
    assert calls[3:-2] == ["train statistics", "social", "metrics@3", "diversity@3"]
    # a malformed baseline fails before any metric is computed
    calls.clear()
    with pytest.raises(ConfigError, match="baseline"):
        evaluate_recommendations(
            SMALL_RECS, train, test, k=2, baseline=np.zeros((1, 2), int), progress=calls.append
        )
    assert not any(c.startswith("metrics") for c in calls)
