"""ANN retrieval: the index itself (recall, exclusions, filters, determinism, persistence) and
its use inside the embedding models (iALS, sentence embeddings)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from serendip.errors import ConfigError, SerendipError
from serendip.models import ItemFilter, Recommender
from serendip.models.ann import AnnIndex, AnnParams, exact_top_k, recall_at_k
from serendip.models.factorization import IALS
from tests.conftest import make_toy_platform

HNSW = AnnParams(m=16, ef_construction=100, ef_search=64, exact_below=0)


def _vectors(n: int = 2000, d: int = 16, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(20, d))
    items = centers[rng.integers(0, 20, n)] + 0.3 * rng.normal(size=(n, d))
    queries = centers[rng.integers(0, 20, 50)] + 0.3 * rng.normal(size=(50, d))
    return items.astype(np.float32), queries.astype(np.float32)


def test_hnsw_recall_against_exact_inner_product() -> None:
    items, queries = _vectors()
    index = AnnIndex.build(items, metric="ip", params=HNSW)
    assert index.kind == "hnsw" and index.n == 2000 and index.dim == 16
    res = index.search(queries, 20)
    assert res.complete.all()
    assert recall_at_k(res.items, exact_top_k(items, queries, 20)) >= 0.95
    # scores are the exact inner products of the returned items, best first
    expect = np.einsum("qd,qkd->qk", queries, items[res.items])
    np.testing.assert_allclose(res.scores, expect, rtol=1e-4, atol=1e-4)
    assert (np.diff(res.scores, axis=1) <= 1e-6).all()


def test_cosine_metric_normalises_items_and_queries() -> None:
    items, queries = _vectors()
    items[:10] *= 100.0  # long vectors must not win under cosine
    index = AnnIndex.build(items, metric="cosine", params=AnnParams(exact_below=10_000))
    assert index.kind == "flat"
    res = index.search(queries * 7.0, 10)
    assert (res.items == exact_top_k(items, queries, 10, metric="cosine")).all()
    assert (res.scores <= 1.0 + 1e-5).all()


def test_exclusions_are_honoured_by_over_fetching() -> None:
    items, queries = _vectors()
    index = AnnIndex.build(items, metric="ip", params=HNSW)
    exact = exact_top_k(items, queries[:3], 300)
    exclude = [exact[r, :250] for r in range(3)]  # the 250 best are "seen"
    res = index.search(queries[:3], 10, exclude)
    assert res.complete.all()
    for r in range(3):
        assert not np.isin(res.items[r], exclude[r]).any()
        assert (res.items[r] >= 0).all() and len(set(res.items[r])) == 10
    assert recall_at_k(res.items, exact[:, 250:260]) >= 0.8


def test_allowed_mask_filters_inside_the_search() -> None:
    items, queries = _vectors()
    index = AnnIndex.build(items, metric="ip", params=HNSW)
    allowed = np.zeros(len(items), bool)
    allowed[::2] = True
    res = index.search(queries, 10, allowed=allowed)
    assert (res.items >= 0).all() and res.complete.all()
    assert allowed[res.items].all()


def test_short_catalog_pads_and_reports_incomplete_only_when_more_existed() -> None:
    items = np.eye(3, dtype=np.float32)
    index = AnnIndex.build(items, metric="ip")
    res = index.search(items[:1], 5, [np.array([1])])
    assert res.items[0].tolist() == [0, 2, -1, -1, -1]
    assert np.isneginf(res.scores[0, 2:]).all()
    assert res.complete[0]  # nothing else could have been found


def test_build_is_deterministic() -> None:
    import faiss

    items, queries = _vectors(n=1500)
    a = AnnIndex.build(items, metric="ip", params=HNSW)
    b = AnnIndex.build(items, metric="ip", params=HNSW)
    assert np.array_equal(faiss.serialize_index(a._index), faiss.serialize_index(b._index))
    assert np.array_equal(a.search(queries, 10).items, b.search(queries, 10).items)


def test_save_load_round_trip_and_damage_is_detected(tmp_path: Path) -> None:
    items, queries = _vectors()
    index = AnnIndex.build(items, metric="cosine", params=HNSW)
    entry = index.save(tmp_path, "ann_recommend")
    loaded = AnnIndex.load(tmp_path, entry)
    assert loaded.kind == "hnsw" and loaded.metric == "cosine"
    assert np.array_equal(loaded.search(queries, 10).items, index.search(queries, 10).items)
    path = tmp_path / entry["file"]
    data = bytearray(path.read_bytes())
    data[-5] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(SerendipError, match="checksum"):
        AnnIndex.load(tmp_path, entry)
    with pytest.raises(SerendipError, match="invalid ANN index file"):
        AnnIndex.load(tmp_path, {**entry, "file": "../x.faiss"})


def test_bad_input_is_a_clear_error() -> None:
    items, _ = _vectors(n=50)
    index = AnnIndex.build(items, metric="ip")
    with pytest.raises(SerendipError, match="dimensions"):
        index.search(np.zeros((1, 3), np.float32), 5)
    with pytest.raises(ConfigError, match="k must be"):
        index.search(items[:1], 0)
    with pytest.raises(ConfigError, match="metric"):
        AnnIndex.build(items, metric="l2")  # type: ignore[arg-type]
    bad = items.copy()
    bad[0, 0] = np.nan
    with pytest.raises(SerendipError, match="NaN"):
        AnnIndex.build(bad)


# ---------------------------------------------------------------------- in the models
IALS_QUICK: dict[str, Any] = {"factors": 8, "iterations": 5, "regularization": 1.0}
ANN_ON: dict[str, Any] = {"ann": True, "ann_exact_below": 0, "ann_m": 16, "ann_ef_search": 64}


def test_ials_auto_builds_no_index_for_a_small_catalog() -> None:
    model = IALS(**IALS_QUICK).fit(make_toy_platform())
    assert model.ann_indexes_ == {}


def test_ials_with_ann_recommends_like_exact_and_keeps_the_contract(tmp_path: Path) -> None:
    ds = make_toy_platform()
    exact = IALS(**IALS_QUICK).fit(ds)
    ann = IALS(**IALS_QUICK, **ANN_ON).fit(ds)
    assert set(ann.ann_indexes_) == {"recommend", "similar"}
    assert all(ix.kind == "hnsw" for ix in ann.ann_indexes_.values())
    users = ds.users.ids[:40]
    a, e = ann.recommend(users, 10), exact.recommend(users, 10)
    assert recall_at_k(a.items, e.items) >= 0.95
    seen = ds.seen()
    for r, u in enumerate(users):
        got = a.items[r][a.items[r] >= 0]
        assert len(got) == 10 and len(set(got)) == 10
        assert seen[ds.users.index(u), got].nnz == 0
    # batch equals single user
    assert np.array_equal(ann.recommend(users[3:4], 10).items[0], a.items[3])
    # filters: category restriction is respected (selective: the exact path)
    f = ItemFilter(include_categories=frozenset({"cat1"}))
    rec = ann.recommend(users[:5], 5, filters=f)
    cats = np.asarray(ds.item_meta.category)
    assert all(cats[i] == "cat1" for row in rec.items for i in row if i >= 0)
    # a permissive filter (75% allowed) stays on the index, applied inside the search
    rec = ann.recommend(users[:5], 5, filters=lambda idx: idx % 4 != 0)
    assert (rec.items >= 0).all() and (rec.items % 4 != 0).all()
    # unknown users: with a context history through the index (folded in), without by popularity
    ctx = {"nobody": ["i001", "i002", "i003"], "fresh": ["i050"]}
    cold_users = ["nobody", "fresh", "nohistory"]
    a_cold = ann.recommend(cold_users, 10, context=ctx)
    e_cold = exact.recommend(cold_users, 10, context=ctx)
    assert recall_at_k(a_cold.items, e_cold.items) >= 0.95
    assert not {"i001", "i002", "i003"} & set(a_cold.item_ids(0))
    assert a_cold.item_ids(2) == e_cold.item_ids(2)
    # similar items through the cosine index
    sim_a, sim_e = ann.similar_items("i000", 10), exact.similar_items("i000", 10)
    assert recall_at_k(sim_a.items, sim_e.items) >= 0.9 and 0 not in sim_a.items[0]
    # the indexes travel with the artifact
    ann.save(tmp_path / "m")
    assert (tmp_path / "m" / "ann_recommend.faiss").is_file()
    loaded = Recommender.load(tmp_path / "m")
    assert set(loaded.ann_indexes_) == {"recommend", "similar"}  # type: ignore[attr-defined]
    assert np.array_equal(loaded.recommend(users, 10).items, a.items)


def test_ials_with_ann_sees_folded_in_events() -> None:
    import pandas as pd

    ds = make_toy_platform()
    ann = IALS(**IALS_QUICK, **ANN_ON).fit(ds)
    before = ann.recommend(["u001"], 5).item_ids(0)
    ann.update(pd.DataFrame({"user": ["u001"] * 3, "item": before[:3]}))
    after = ann.recommend(["u001"], 5).item_ids(0)
    assert not set(before[:3]) & set(after)


def test_ials_artifact_with_a_missing_index_fails_to_load(tmp_path: Path) -> None:
    ann = IALS(**IALS_QUICK, **ANN_ON).fit(make_toy_platform())
    ann.save(tmp_path / "m")
    (tmp_path / "m" / "ann_similar.faiss").unlink()
    with pytest.raises(SerendipError, match="missing"):
        Recommender.load(tmp_path / "m")


def test_sbert_with_ann_matches_exact_ranking(monkeypatch: pytest.MonkeyPatch) -> None:
    from serendip.models.content import SentenceContent

    def fake_embed(self: object, path: str, cfg: object, docs: list[str]) -> np.ndarray:
        # the wiring is under test, not the encoder (tests/models/test_content.py loads it):
        # stand-in embeddings that keep the topical structure (shared words -> close vectors)
        rng = np.random.default_rng(0)
        words = sorted({w for d in docs for w in d.split()})
        basis = {w: rng.normal(size=32) for w in words}
        out = np.array([sum(basis[w] for w in d.split()) for d in docs], dtype=np.float32)
        return out / np.linalg.norm(out, axis=1, keepdims=True)

    monkeypatch.setattr(SentenceContent, "_embed", fake_embed)

    ds = make_toy_platform()
    exact = SentenceContent().fit(ds)
    ann = SentenceContent(**ANN_ON).fit(ds)
    assert set(ann.ann_indexes_) == {"recommend"}  # one cosine index serves both
    users = ds.users.ids[:30]
    assert recall_at_k(ann.recommend(users, 10).items, exact.recommend(users, 10).items) >= 0.95
    ctx = {"nobody": ["i001", "i002"]}
    cold_a = ann.recommend(["nobody"], 10, context=ctx)
    assert recall_at_k(cold_a.items, exact.recommend(["nobody"], 10, context=ctx).items) >= 0.9
    sim = ann.similar_items("i005", 5)
    assert recall_at_k(sim.items, exact.similar_items("i005", 5).items) >= 0.8


# ----------------------------------------------------------------------------- inverted file
IVF = AnnParams(exact_below=0, ivf_from=0, nprobe=8)


def test_ivf_on_large_catalogs_recall_exclusions_filters_and_persistence(tmp_path: Path) -> None:
    items, queries = _vectors(n=4000)
    index = AnnIndex.build(items, metric="ip", params=IVF)
    assert index.kind == "ivf" and index.n_cells == 128  # largest power of two <= 4 sqrt(n)
    exact = exact_top_k(items, queries, 20)
    res = index.search(queries, 20)
    assert recall_at_k(res.items, exact) >= 0.9
    expect = np.einsum("qd,qkd->qk", queries, items[res.items])
    np.testing.assert_allclose(res.scores, expect, rtol=1e-4, atol=1e-4)
    index.set_nprobe(index.n_cells)  # every cell searched: exact
    assert recall_at_k(index.search(queries, 20).items, exact) == 1.0
    index.set_nprobe(8)
    seen = [exact[r, :10] for r in range(5)]
    got = index.search(queries[:5], 10, seen)
    assert not any(np.isin(got.items[r], seen[r]).any() for r in range(5))
    allowed = np.zeros(len(items), bool)
    allowed[1::3] = True
    got = index.search(queries, 10, allowed=allowed)
    assert allowed[got.items[got.items >= 0]].all()
    entry = index.save(tmp_path, "ivf")
    again = AnnIndex.load(tmp_path, entry)
    assert again.kind == "ivf" and again.params.nprobe == 8
    np.testing.assert_array_equal(again.search(queries, 20).items, res.items)
    # the same data and parameters give the same index (seeded k-means and sample)
    twin = AnnIndex.build(items, metric="ip", params=IVF)
    np.testing.assert_array_equal(twin.search(queries, 20).items, res.items)


def test_default_params_switch_to_ivf_only_for_large_catalogs() -> None:
    assert AnnParams().ivf_from >= 100_000
    items, _ = _vectors(n=3000)
    assert AnnIndex.build(items, params=AnnParams(exact_below=0)).kind == "hnsw"
    assert AnnIndex.build(items, params=AnnParams(exact_below=0, ivf_from=3000)).kind == "ivf"
