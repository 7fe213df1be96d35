"""Metrics: hand-computed examples, properties, and agreement with a naive reference."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from serendip.data.dataset import ItemTable
from serendip.errors import ConfigError
from serendip.evaluation import metrics as m
from tests.evaluation import _reference as ref


def truth_csr(rows: list[set[int]], n_items: int) -> sp.csr_matrix:
    r = [u for u, items in enumerate(rows) for _ in items]
    c = [i for items in rows for i in sorted(items)]
    return sp.csr_matrix((np.ones(len(r)), (r, c)), shape=(len(rows), n_items))


# --------------------------------------------------------------------------- hand-computed
# Three users, K = 5, catalog of 10 items.
#   user 0: list [0, 1, 2, 3, 4], truth {1, 3, 5, 6}: hits at positions 2 and 4.
#   user 1: list [5] (padded), truth {5}: one hit at position 1; the list is shorter than K.
#   user 2: empty list, truth {0}: nothing.
RECS = np.array([[0, 1, 2, 3, 4], [5, -1, -1, -1, -1], [-1, -1, -1, -1, -1]])
TRUTH = [{1, 3, 5, 6}, {5}, {0}]
N_TRUTH = np.array([4, 1, 1])


@pytest.fixture
def hits() -> np.ndarray:
    return m.hit_matrix(RECS, truth_csr(TRUTH, 10))


def test_hit_matrix_marks_listed_test_items(hits: np.ndarray) -> None:
    assert hits.tolist() == [
        [False, True, False, True, False],
        [True, False, False, False, False],
        [False] * 5,
    ]


def test_precision_divides_by_k_even_for_short_lists(hits: np.ndarray) -> None:
    assert m.precision(hits).tolist() == [2 / 5, 1 / 5, 0.0]


def test_recall_and_capped_recall(hits: np.ndarray) -> None:
    assert m.recall(hits, N_TRUTH).tolist() == [2 / 4, 1.0, 0.0]
    assert m.capped_recall(hits, N_TRUTH).tolist() == [2 / 4, 1.0, 0.0]
    # With K = 2 the cap bites: one hit in 2 slots of a 4-item truth is 1/2 capped, 1/4 plain.
    assert m.recall(hits[:, :2], N_TRUTH)[0] == 1 / 4
    assert m.capped_recall(hits[:, :2], N_TRUTH)[0] == 1 / 2


def test_ndcg_hand_computed(hits: np.ndarray) -> None:
    dcg0 = 1 / math.log2(3) + 1 / math.log2(5)
    idcg0 = 1 + 1 / math.log2(3) + 1 / math.log2(4) + 1 / math.log2(5)
    assert m.ndcg(hits, N_TRUTH) == pytest.approx([dcg0 / idcg0, 1.0, 0.0], abs=1e-12)
    assert dcg0 / idcg0 == pytest.approx(0.41443, abs=1e-5)


def test_map_hand_computed(hits: np.ndarray) -> None:
    # user 0: precision@2 = 1/2, precision@4 = 2/4; sum 1.0 over min(4, 5) = 4.
    assert m.average_precision(hits, N_TRUTH).tolist() == [0.25, 1.0, 0.0]


def test_mrr_and_hit_rate(hits: np.ndarray) -> None:
    assert m.reciprocal_rank(hits).tolist() == [0.5, 1.0, 0.0]
    assert m.hit_rate(hits).tolist() == [1.0, 1.0, 0.0]


def test_empty_truth_scores_zero_not_nan() -> None:
    h = m.hit_matrix(np.array([[0, 1]]), truth_csr([set()], 3))
    zero = np.array([0])
    for f in (m.recall, m.capped_recall, m.ndcg, m.average_precision):
        assert f(h, zero).tolist() == [0.0]
    assert m.precision(h).tolist() == [0.0]


def test_coverage_and_exposure() -> None:
    assert m.exposure(RECS, 10).tolist() == [1, 1, 1, 1, 1, 1, 0, 0, 0, 0]
    assert m.catalog_coverage(RECS, 10) == 0.6
    assert m.catalog_coverage(np.full((2, 3), -1), 10) == 0.0


def test_gini_hand_computed() -> None:
    # sorted [0, 0, 1, 3]: Σ|xi - xj| over ordered pairs = 20; 2 n² mean = 32.
    assert m.gini(np.array([3, 0, 1, 0])) == pytest.approx(0.625, abs=1e-12)
    assert m.gini(np.array([2, 2, 2])) == pytest.approx(0.0, abs=1e-12)
    assert m.gini(np.array([0, 0, 0, 5])) == pytest.approx(0.75, abs=1e-12)  # (n-1)/n
    assert m.gini(np.zeros(4)) == 0.0


def test_novelty_and_average_popularity_hand_computed() -> None:
    popularity = np.array([4, 2, 1, 0])
    recs = np.array([[0, 1, 3], [-1, -1, -1]])
    # -log2(4/8) = 1, -log2(2/8) = 2, unseen item counts as 1 user: -log2(1/8) = 3.
    assert m.novelty(recs, popularity, 8).tolist() == [2.0, 0.0]
    assert m.average_popularity(recs, popularity).tolist() == [2.0, 0.0]


def _content_items() -> ItemTable:
    t = ItemTable.empty(4)
    t.tags[0], t.category[0] = ("x", "y"), "c1"  # {t:x, t:y, c:c1}
    t.tags[1], t.category[1] = ("y",), "c1"  # {t:y, c:c1}
    return t  # items 2 and 3 have no content


@pytest.mark.parametrize("method", ["dense", "sparse", "auto"])
def test_ild_jaccard_hand_computed(method: str) -> None:
    feats = m.content_features(_content_items())
    recs = np.array([[0, 1, 2], [2, 3, -1], [0, -1, -1], [-1, -1, -1]])
    got = m.intra_list_distance(recs, features=feats, method=method)  # type: ignore[arg-type]
    # [0, 1, 2]: d(0,1) = 1 - 2/3, d(0,2) = 1, d(1,2) = 1 -> (1/3 + 2) / 3 = 7/9.
    # [2, 3]: both without content -> 0. One item or none -> 0.
    assert got == pytest.approx([7 / 9, 0.0, 0.0, 0.0], abs=1e-12)


def test_ild_cosine_hand_computed() -> None:
    emb = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0], [0.0, 0.0]])
    recs = np.array([[0, 1, 2], [0, 3, -1]])
    got = m.intra_list_distance(recs, embeddings=emb)
    c = 1 - 1 / math.sqrt(2)
    assert got == pytest.approx([(1 + 2 * c) / 3, 1.0], abs=1e-12)


def test_ild_needs_exactly_one_representation() -> None:
    with pytest.raises(ConfigError):
        m.intra_list_distance(np.zeros((1, 2), dtype=int))


def test_serendipity_against_popularity_baseline_hand_computed() -> None:
    popularity = np.array([5, 4, 3, 2, 1])
    seen = sp.csr_matrix(np.array([[1, 0, 0, 0, 0]]))  # the user already has item 0
    recs = np.array([[2, 3]])
    # Baseline top-2 for the user skips item 0: {1, 2}. Hits {2, 3}; only 3 is unexpected.
    unexpected = m.unexpected_vs_popularity(recs, np.array([0]), seen, popularity)
    assert unexpected.tolist() == [[False, True]]
    hits = np.array([[True, True]])
    assert m.serendipity(hits, unexpected).tolist() == [0.5]


def test_popularity_baseline_breaks_ties_by_lower_index() -> None:
    popularity = np.array([1, 3, 3, 0])
    seen = sp.csr_matrix((1, 4))
    # Baseline top-1 is item 1 (tie with 2, lower index wins).
    assert m.unexpected_vs_popularity(
        np.array([[1], [2]]), np.array([0, 0]), seen, popularity
    ).tolist() == [
        [False],
        [True],
    ]


def test_unexpected_vs_explicit_baseline() -> None:
    base = np.array([[1, 2, -1], [0, -1, -1]])
    recs = np.array([[2, 3, -1], [1, 0, 2]])
    assert m.unexpected_vs_baseline(recs, base).tolist() == [
        [False, True, False],
        [True, False, True],
    ]


def test_out_of_network_hand_computed() -> None:
    # users 0, 1, 2; user 0 follows user 1. User 1 trained on item 0; user 2 on item 1;
    # user 1 authored item 2.
    seen = sp.csr_matrix(np.array([[0, 0, 0, 0], [1, 0, 0, 0], [0, 1, 0, 0]]))
    follows = sp.csr_matrix(np.array([[0, 1, 0], [0, 0, 0], [0, 0, 0]]))
    author = np.array([-1, -1, 1, 2])
    recs = np.array([[0, 1, 2, 3], [0, 1, -1, -1]])
    out = m.out_of_network(recs, np.array([0, 1]), seen, follows, author)
    assert out.tolist() == [[False, True, False, True], [True, True, False, False]]


def test_check_recs_rejects_duplicates_and_out_of_range() -> None:
    with pytest.raises(ConfigError, match="row 1 lists an item more than once"):
        m.check_recs(np.array([[0, 1], [2, 2]]), 5)
    with pytest.raises(ConfigError, match="not in"):
        m.check_recs(np.array([[0, 7]]), 5)
    assert m.check_recs(np.array([[0, -1], [-1, -1]]), 5).dtype == np.int64


# --------------------------------------------------------------------------- properties
@st.composite
def lists_and_truth(draw: st.DrawFn) -> tuple[np.ndarray, list[set[int]], int]:
    n_items = draw(st.integers(1, 25))
    n_users = draw(st.integers(1, 8))
    k = draw(st.integers(1, 12))
    rows, truths = [], []
    for _ in range(n_users):
        length = draw(st.integers(0, min(k, n_items)))
        items = draw(st.permutations(range(n_items)))[:length]
        rows.append(list(items) + [-1] * (k - length))
        truths.append(set(draw(st.lists(st.integers(0, n_items - 1), max_size=n_items))))
    return np.array(rows, dtype=np.int64).reshape(n_users, k), truths, n_items


@settings(max_examples=100, deadline=None)
@given(lists_and_truth())
def test_accuracy_matches_reference_and_stays_in_unit_interval(case) -> None:  # type: ignore[no-untyped-def]
    recs, truths, n_items = case
    k = recs.shape[1]
    hits = m.hit_matrix(recs, truth_csr(truths, n_items))
    n_truth = np.array([len(t) for t in truths])
    got = {
        "precision": m.precision(hits),
        "recall": m.recall(hits, n_truth),
        "recall_capped": m.capped_recall(hits, n_truth),
        "ndcg": m.ndcg(hits, n_truth),
        "map": m.average_precision(hits, n_truth),
        "mrr": m.reciprocal_rank(hits),
        "hit_rate": m.hit_rate(hits),
    }
    for u, truth in enumerate(truths):
        expected = ref.user_accuracy(recs[u].tolist(), truth, k)
        for name, values in got.items():
            assert values[u] == pytest.approx(expected[name], abs=1e-12), name
            assert 0.0 <= values[u] <= 1.0 + 1e-12


@settings(max_examples=100, deadline=None)
@given(st.integers(1, 30), st.integers(1, 15), st.integers(0, 2**32 - 1))
def test_perfect_lists_score_one(n_truth: int, k: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    truth = set(rng.choice(100, size=n_truth, replace=False).tolist())
    ordered = list(truth)[:k]
    recs = np.array([ordered + [-1] * (k - len(ordered))])
    hits = m.hit_matrix(recs, truth_csr([truth], 100))
    nt = np.array([n_truth])
    assert m.ndcg(hits, nt)[0] == pytest.approx(1.0)
    assert m.average_precision(hits, nt)[0] == pytest.approx(1.0)
    assert m.capped_recall(hits, nt)[0] == pytest.approx(1.0)
    assert m.reciprocal_rank(hits)[0] == 1.0
    assert m.recall(hits, nt)[0] == pytest.approx(min(n_truth, k) / n_truth)
    assert m.precision(hits)[0] == pytest.approx(min(n_truth, k) / k)


@settings(max_examples=100, deadline=None)
@given(lists_and_truth())
def test_recall_and_hit_rate_grow_with_k(case) -> None:  # type: ignore[no-untyped-def]
    recs, truths, n_items = case
    hits = m.hit_matrix(recs, truth_csr(truths, n_items))
    n_truth = np.array([len(t) for t in truths])
    prev_recall = np.zeros(len(truths))
    prev_hr = np.zeros(len(truths))
    for k in range(1, recs.shape[1] + 1):
        r = m.recall(hits[:, :k], n_truth)
        hr = m.hit_rate(hits[:, :k])
        assert (r >= prev_recall - 1e-12).all()
        assert (hr >= prev_hr).all()
        prev_recall, prev_hr = r, hr


@settings(max_examples=100, deadline=None)
@given(st.lists(st.integers(0, 50), min_size=1, max_size=30))
def test_gini_matches_mean_difference_form_and_is_bounded(values: list[int]) -> None:
    g = m.gini(np.array(values))
    assert g == pytest.approx(ref.gini_by_differences(values), abs=1e-12)
    assert 0.0 <= g <= 1.0


@st.composite
def content_case(draw: st.DrawFn) -> tuple[ItemTable, np.ndarray]:
    n_items = draw(st.integers(2, 15))
    table = ItemTable.empty(n_items)
    for i in range(n_items):
        table.tags[i] = tuple(draw(st.sets(st.sampled_from("abcdef"), max_size=4)))
        table.category[i] = draw(st.sampled_from(["", "x", "y", "a"]))
    n_users = draw(st.integers(1, 6))
    k = draw(st.integers(1, n_items))
    rows = []
    for _ in range(n_users):
        length = draw(st.integers(0, k))
        rows.append(list(draw(st.permutations(range(n_items)))[:length]) + [-1] * (k - length))
    return table, np.array(rows, dtype=np.int64).reshape(n_users, k)


@settings(max_examples=100, deadline=None)
@given(content_case())
def test_ild_jaccard_dense_and_sparse_paths_match_reference(case) -> None:  # type: ignore[no-untyped-def]
    table, recs = case
    feats = m.content_features(table)
    sets = [
        {"t:" + t for t in table.tags[i]}
        | ({"c:" + table.category[i]} if table.category[i] else set())
        for i in range(len(table))
    ]
    expected = [
        ref.mean_pairwise(
            [i for i in row if i >= 0], lambda a, b: ref.jaccard_distance(sets[a], sets[b])
        )
        for row in recs.tolist()
    ]
    dense = m.intra_list_distance(recs, features=feats, method="dense")
    sparse = m.intra_list_distance(recs, features=feats, method="sparse")
    assert dense == pytest.approx(expected, abs=1e-12)
    assert sparse == pytest.approx(expected, abs=1e-12)
    assert ((dense >= 0) & (dense <= 1 + 1e-12)).all()


@settings(max_examples=60, deadline=None)
@given(content_case(), st.integers(0, 2**32 - 1))
def test_ild_cosine_matches_reference(case, seed: int) -> None:  # type: ignore[no-untyped-def]
    table, recs = case
    rng = np.random.default_rng(seed)
    emb = rng.normal(size=(len(table), 3))
    emb[0] = 0.0  # a zero vector is distance 1 from everything
    expected = [
        ref.mean_pairwise(
            [i for i in row if i >= 0], lambda a, b: ref.cosine_distance(emb[a], emb[b])
        )
        for row in recs.tolist()
    ]
    assert m.intra_list_distance(recs, embeddings=emb) == pytest.approx(expected, abs=1e-9)


@settings(max_examples=100, deadline=None)
@given(st.data())
def test_popularity_unexpected_matches_reference(data: st.DataObject) -> None:
    n_items = data.draw(st.integers(2, 12))
    n_users = data.draw(st.integers(1, 5))
    k = data.draw(st.integers(1, n_items))
    seen_sets = [
        set(data.draw(st.lists(st.integers(0, n_items - 1), max_size=n_items)))
        for _ in range(n_users)
    ]
    recs = []
    for _ in range(n_users):
        perm = data.draw(st.permutations(range(n_items)))
        recs.append(list(perm[:k]))
    recs_arr = np.array(recs, dtype=np.int64)
    seen = truth_csr(seen_sets, n_items)
    popularity = np.bincount(seen.indices, minlength=n_items)
    baseline = ref.popularity_baseline(dict(enumerate(seen_sets)), n_items, k)
    got = m.unexpected_vs_popularity(recs_arr, np.arange(n_users), seen, popularity)
    for u in range(n_users):
        assert got[u].tolist() == [i not in baseline[u] for i in recs[u]]


@settings(max_examples=80, deadline=None)
@given(st.data())
def test_out_of_network_matches_reference(data: st.DataObject) -> None:
    n_items = data.draw(st.integers(1, 10))
    n_users = data.draw(st.integers(1, 6))
    seen_sets = [
        set(data.draw(st.lists(st.integers(0, n_items - 1), max_size=4))) for _ in range(n_users)
    ]
    follow_sets = [
        set(data.draw(st.lists(st.integers(0, n_users - 1), max_size=3))) for _ in range(n_users)
    ]
    author = data.draw(st.lists(st.integers(-1, n_users - 1), min_size=n_items, max_size=n_items))
    k = data.draw(st.integers(1, n_items))
    recs = np.array([list(data.draw(st.permutations(range(n_items)))[:k]) for _ in range(n_users)])
    got = m.out_of_network(
        recs,
        np.arange(n_users),
        truth_csr(seen_sets, n_items),
        truth_csr(follow_sets, n_users),
        np.array(author),
    )
    for u in range(n_users):
        network = set().union(*(seen_sets[f] for f in follow_sets[u])) | {
            i for i in range(n_items) if author[i] in follow_sets[u]
        }
        assert got[u].tolist() == [i not in network for i in recs[u]]
