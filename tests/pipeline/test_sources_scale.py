"""The sources' large-catalog paths (issue 17.3): the content source's inverted index, similar
users past the exact product's budget, trending without a pass over the catalog."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import scipy.sparse as sp

from serendip.data.dataset import Dataset
from serendip.models.artifacts import read_artifact, write_artifact
from serendip.models.social import similar_users
from serendip.pipeline.candidates import UserContext
from serendip.pipeline.context import contexts_from_dataset
from serendip.pipeline.sources import make_source
from serendip.pipeline.sources.content import ContentSource, impact_postings
from serendip.pipeline.sources.trending import TrendingSource


def test_impact_postings_keep_the_heaviest_items_per_term() -> None:
    items_terms = sp.csr_matrix(
        np.array(
            [
                [0.1, 0.0, 0.5],
                [0.9, 0.0, 0.5],
                [0.4, 0.2, 0.0],
                [0.4, 0.0, 0.7],
            ],
            np.float32,
        )
    )
    post = impact_postings(items_terms, 2)
    assert post.shape == (3, 4)
    row = lambda t: post.indices[post.indptr[t] : post.indptr[t + 1]].tolist()  # noqa: E731
    assert row(0) == [1, 2]  # 0.9, then the 0.4 tie broken by the lower item index
    assert row(1) == [2]  # fewer postings than the cap: all of them
    assert row(2) == [0, 3]  # 0.7 and 0.5 (item 0 before item 1 on the tie)
    np.testing.assert_allclose(post.data[post.indptr[2] : post.indptr[3]], [0.5, 0.7])


def _contexts(ds: Dataset) -> list[UserContext]:
    ctxs = contexts_from_dataset(ds, list(ds.users.ids[:25]))
    # interests alone, and interests with a history
    return ctxs + [replace(c, interests=("cat1", "cat2")) for c in ctxs[:5]]


def test_content_index_matches_the_dense_pass_when_nothing_is_cut(toy_platform: Dataset) -> None:
    ds = toy_platform
    dense = make_source("content").fit(ds)
    assert isinstance(dense, ContentSource) and not dense.uses_postings
    n_terms = dense.vectors_.shape[1]
    full = make_source(
        "content", postings_from_items=0, profile_terms=n_terms, max_postings=ds.n_items
    ).fit(ds)
    assert isinstance(full, ContentSource) and full.uses_postings
    for c in _contexts(ds):
        a, b = dense.propose(c, 10), full.propose(c, 10)
        assert a.items.tolist() == b.items.tolist()
        np.testing.assert_allclose(a.scores, b.scores, rtol=1e-5)


def test_content_index_with_small_cuts_proposes_exactly_scored_items(toy_platform: Dataset) -> None:
    ds = toy_platform
    dense = make_source("content").fit(ds)
    assert isinstance(dense, ContentSource)
    cut = make_source("content", postings_from_items=0, profile_terms=4, max_postings=5).fit(ds)
    hits = 0
    for c in _contexts(ds):
        p = cut.propose(c, 10)
        assert len(p.items) <= 10 and not set(p.items.tolist()) & set(c.history.tolist())
        scores = dense.scores(c)
        assert scores is not None
        # every proposed item carries its exact (dense) score, best first
        np.testing.assert_allclose(p.scores, scores[p.items], rtol=1e-5)
        assert np.all(np.diff(p.scores) <= 1e-9)
        hits += len(np.intersect1d(p.items, dense.propose(c, 10).items))
    assert hits > 0


def test_content_index_survives_save_and_load(toy_platform: Dataset, tmp_path: Path) -> None:
    ds = toy_platform
    src = make_source("content", postings_from_items=0, profile_terms=8, max_postings=20).fit(ds)
    arrays, meta = src._state()
    assert "postings" in arrays
    for name, arr in (
        ("with", arrays),
        ("without", {k: v for k, v in arrays.items() if "post" not in k}),
    ):
        write_artifact(
            tmp_path / name, model="source-content", config={}, users=ds.users,
            items=ds.items, arrays=arr, meta=meta,
        )  # fmt: skip
        art = read_artifact(tmp_path / name)
        again = make_source("content", **art.meta["params"])
        again._set_state(art.arrays, art.meta)
        assert isinstance(again, ContentSource) and again.uses_postings
        for c in _contexts(ds):
            assert again.propose(c, 10).items.tolist() == src.propose(c, 10).items.tolist()


def test_similar_users_past_the_budget_stay_within_their_group() -> None:
    rng = np.random.default_rng(0)
    # two communities with disjoint items: 30 users x items 0-49, 30 users x items 50-99
    rows, cols = [], []
    for u in range(60):
        base = 0 if u < 30 else 50
        chosen = rng.choice(50, size=12, replace=False) + base
        rows += [u] * 12
        cols += chosen.tolist()
    seen = sp.csr_matrix((np.ones(len(rows), np.float32), (rows, cols)), shape=(60, 100))
    users = np.arange(60)
    exact = similar_users(seen, users, 5)
    approx = similar_users(seen, users, 5, exact_budget=0)
    for m in (exact, approx):
        assert m.shape == (60, 60)
        for u in range(60):
            nb = m.indices[m.indptr[u] : m.indptr[u + 1]]
            assert 0 < len(nb) <= 5 and u not in nb
            assert np.all((nb < 30) == (u < 30))  # same community
        assert np.all((m.data > 0) & (m.data <= 1.0 + 1e-5))


def test_trending_after_the_fit_walks_the_fitted_order(toy_platform: Dataset) -> None:
    ds = toy_platform
    src = make_source("trending").fit(ds)
    assert isinstance(src, TrendingSource)
    ctx = contexts_from_dataset(ds, [str(ds.users.ids[0])])[0]
    later = replace(ctx, now=src.ref_ + 3 * 86_400.0)
    p = src.propose(later, 15)
    counts = src.counts_at(later.now)
    assert np.all(p.scores < src.counts_[p.items])  # decayed
    np.testing.assert_allclose(p.scores, counts[p.items])
    blocked = set(later.history.tolist())
    eligible = [
        i
        for i in np.lexsort((np.arange(len(counts)), -counts))
        if counts[i] > 0 and i not in blocked and not ds.item_meta.created_at[i] > later.now
    ]
    assert p.items.tolist() == eligible[:15]


def test_a_large_log_trains_the_ranker_on_one_label_window(
    toy_platform: Dataset, monkeypatch: pytest.MonkeyPatch
) -> None:
    from serendip.pipeline import ranker
    from serendip.pipeline.config import PipelineConfig

    windows: list[int] = []
    real = ranker.time_split

    def counted(*args: Any, **kwargs: Any) -> Any:
        windows.append(int(kwargs["window"]))
        return real(*args, **kwargs)

    monkeypatch.setattr(ranker, "time_split", counted)
    small_log = {"ranker.n_windows": 3, "ranker.label_fraction": 0.2, "ranker.n_models": 1}
    ranker.train_ranker(toy_platform, PipelineConfig.model_validate(small_log))
    assert windows == [0, 1, 2]
    windows.clear()
    large = {**small_log, "ranker.one_window_from": toy_platform.n_interactions}
    ranker.train_ranker(toy_platform, PipelineConfig.model_validate(large))
    assert windows == [0]


def test_similar_users_sparse_selection_matches_the_dense_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from serendip.models.social import _graph

    rng = np.random.default_rng(1)
    seen = sp.csr_matrix(rng.random((300, 400)) < 0.03, dtype=np.float32)
    users = np.arange(300)
    dense = similar_users(seen, users, 7)
    monkeypatch.setattr(_graph, "_DENSE_USERS", 0)
    monkeypatch.setattr(_graph, "_SIMILAR_BATCH", 64)  # several batches
    sparse = similar_users(seen, users, 7)
    for u in range(300):
        a = dict(zip(*_row(dense, u), strict=True))
        b = dict(zip(*_row(sparse, u), strict=True))
        assert len(a) == len(b) and u not in b
        # the same similarities (users tied at the k-th value may differ)
        np.testing.assert_allclose(sorted(a.values()), sorted(b.values()), rtol=1e-5)


def _row(m: sp.csr_matrix, u: int) -> tuple[list[int], list[float]]:
    s, e = m.indptr[u], m.indptr[u + 1]
    return m.indices[s:e].tolist(), m.data[s:e].tolist()


def test_recent_item_knn_caps_histories_to_its_pair_budget() -> None:
    from serendip.pipeline.sources.recent_item_knn import budget_cap

    lengths = np.array([5, 50, 400, 1000])
    assert budget_cap(lengths, 300, None) == 300
    assert budget_cap(lengths, 300, 10**9) == 300  # within budget: as configured
    cap = budget_cap(lengths, 300, 20_000)
    assert cap is not None
    assert np.square(np.minimum(lengths, cap)).sum() <= 20_000
    assert np.square(np.minimum(lengths, cap + 1)).sum() > 20_000
    assert budget_cap(lengths, None, 1) == 10  # never below 10 items
