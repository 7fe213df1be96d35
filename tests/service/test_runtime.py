"""The serving runtime: hot swap (atomic, validated, failure keeps the old version), live state
(events, deletions, new items, follows) and requests (known and unknown users, filters,
explanations, similar, trending). Toy platform, models fitted in well under a second."""

from __future__ import annotations

import itertools
import threading
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from serendip.data.dataset import Dataset
from serendip.errors import ConfigError, SerendipError
from serendip.models import Recommender
from serendip.models.baselines import Popularity
from serendip.models.content import TfidfContent
from serendip.models.factorization import IALS
from serendip.service.runtime import ModelRuntime, OnlineState, RecItem
from serendip.store import EventIn, ItemIn
from tests.conftest import make_toy_platform


def _ev(user: str, item: str, event: str = "like", timestamp: float = 1_700_900_000.0) -> EventIn:
    return EventIn("", user, item, event, timestamp)


@cache
def _ds() -> Dataset:
    return make_toy_platform()


@pytest.fixture(scope="module")
def artifacts(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("models")
    ds = _ds()
    out = {
        "ials": IALS(factors=8, iterations=5, regularization=1.0).fit(ds).save(base / "ials"),
        "tfidf": TfidfContent().fit(ds).save(base / "tfidf"),
        "popularity": Popularity().fit(ds).save(base / "popularity"),
    }
    return out


def _ids(recs: list[RecItem]) -> list[str]:
    return [r.item for r in recs]


def _history(user: str) -> set[str]:
    ds = _ds()
    row = ds.seen()[ds.users.index(user)]
    return {str(x) for x in ds.items.lookup(row.indices)}


# ---------------------------------------------------------------------- versions and swaps
def test_nothing_served_before_a_load() -> None:
    rt = ModelRuntime()
    assert rt.active_version is None
    with pytest.raises(SerendipError, match="no model is loaded"):
        rt.recommend("u001", 5)


def test_load_validates_and_serves(artifacts: dict[str, Path]) -> None:
    rt = ModelRuntime()
    rt.load(artifacts["ials"], "v1")
    assert rt.active_version == "v1"
    snap = rt.snapshot
    assert snap is not None and snap.metadata["model"] == "ials"
    recs = rt.recommend("u001", 10)
    assert len(recs) == 10 and len(set(_ids(recs))) == 10
    assert not set(_ids(recs)) & _history("u001")
    assert all(a.score >= b.score for a, b in itertools.pairwise(recs))
    with pytest.raises(ConfigError, match="k must be"):
        rt.recommend("u001", 0)


def test_failed_load_raises_with_the_reason_and_keeps_the_old_version(
    artifacts: dict[str, Path], tmp_path: Path
) -> None:
    rt = ModelRuntime()
    rt.load(artifacts["ials"], "v1")
    before = _ids(rt.recommend("u002", 5))
    with pytest.raises(SerendipError, match=r"'v2'.*no manifest\.json"):
        rt.load(tmp_path / "empty", "v2")
    # a damaged artifact: an array file truncated
    broken = tmp_path / "broken"
    Recommender.load(artifacts["tfidf"]).save(broken)
    (broken / "vectors.npz").write_bytes(b"not a zip")
    with pytest.raises(SerendipError, match=r"'v3'.*damaged"):
        rt.load(broken, "v3")
    assert rt.active_version == "v1"
    assert _ids(rt.recommend("u002", 5)) == before


def test_a_model_failing_its_smoke_recommendation_is_not_activated(
    artifacts: dict[str, Path],
) -> None:
    def loader(path: Path) -> Recommender:
        model = Recommender.load(path)

        def broken(*args: object, **kwargs: object) -> None:
            raise ValueError("scores went NaN")

        model.recommend = broken  # type: ignore[method-assign,assignment]
        return model

    good = ModelRuntime()
    good.load(artifacts["popularity"], "p1")
    bad = ModelRuntime(loader=loader)
    with pytest.raises(SerendipError, match="scores went NaN"):
        bad.load(artifacts["ials"], "x")
    assert bad.active_version is None


def test_swap_is_atomic_under_concurrent_requests(artifacts: dict[str, Path]) -> None:
    users = ["u001", "u010", "u020", "newbie"]
    expected: dict[str, dict[str, list[str]]] = {}
    for name in ("ials", "tfidf"):
        one = ModelRuntime()
        one.load(artifacts[name], name)
        expected[name] = {u: _ids(one.recommend(u, 5)) for u in users}
    assert expected["ials"] != expected["tfidf"]
    rt = ModelRuntime()
    rt.load(artifacts["ials"], "ials")
    errors: list[BaseException] = []
    mismatches: list[tuple[str, list[str]]] = []
    seen_versions: set[str] = set()
    stop = threading.Event()

    def reader(user: str) -> None:
        while not stop.is_set():
            try:
                got = _ids(rt.recommend(user, 5))
            except BaseException as exc:  # any exception fails the test
                errors.append(exc)
                return
            matches = [v for v in expected if expected[v][user] == got]
            if not matches:
                mismatches.append((user, got))
            seen_versions.update(matches)

    threads = [threading.Thread(target=reader, args=(u,)) for u in users]
    for t in threads:
        t.start()
    try:
        for i in range(8):
            name = "tfidf" if i % 2 == 0 else "ials"
            rt.load(artifacts[name], name)
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=30)
    assert not errors, errors[:1]
    assert not mismatches, mismatches[:3]
    assert seen_versions == {"ials", "tfidf"}
    assert rt.active_version == "ials"


# ---------------------------------------------------------------------- real time
def test_an_event_changes_the_next_recommendations_at_once(artifacts: dict[str, Path]) -> None:
    rt = ModelRuntime()
    rt.load(artifacts["ials"], "v1")
    before = rt.recommend("u003", 10)
    top = before[0].item
    rt.on_events([_ev("u003", top)])
    after = rt.recommend("u003", 10)
    assert top not in _ids(after)
    assert len(after) == 10
    # the user was folded in: not merely the old list minus one item
    assert [r.score for r in after[:5]] != [r.score for r in before[1:6]]
    # other users are untouched
    assert _ids(rt.recommend("u004", 10)) == _ids(_fresh_recs(artifacts, "u004"))


def _fresh_recs(artifacts: dict[str, Path], user: str) -> list[RecItem]:
    fresh = ModelRuntime()
    fresh.load(artifacts["ials"], "v1")
    return fresh.recommend(user, 10)


def test_live_history_is_kept_across_a_swap(artifacts: dict[str, Path]) -> None:
    rt = ModelRuntime()
    rt.load(artifacts["ials"], "v1")
    item = rt.recommend("u005", 1)[0].item
    rt.on_events([_ev("u005", item)])
    rt.load(artifacts["popularity"], "v2")
    assert item not in _ids(rt.recommend("u005", 20))


def test_a_cold_user_is_served_from_live_context(artifacts: dict[str, Path]) -> None:
    rt = ModelRuntime()
    rt.load(artifacts["tfidf"], "v1")
    cold = rt.recommend("stranger", 10)
    assert len(cold) == 10  # popularity for a user nobody knows anything about
    ds = _ds()
    cats = np.asarray(ds.item_meta.category)
    cat3 = [str(i) for i in ds.items.ids[cats == "cat3"][:4]]
    rt.on_events([_ev("stranger", i, timestamp=1_700_900_000.0 + j) for j, i in enumerate(cat3)])
    warm = rt.recommend("stranger", 10, explain=True)
    assert not set(_ids(warm)) & set(cat3)
    assert _ids(warm) != _ids(cold)
    item_cat = dict(zip(ds.items.ids, cats, strict=True))
    assert sum(item_cat[r.item] == "cat3" for r in warm) >= 7  # content follows the context
    ev = warm[0].explanation
    assert ev is not None and ev["score"] == pytest.approx(warm[0].score)
    assert any(e["kind"] == "item" and e["id"] in cat3 for e in ev["evidence"])


def test_deleted_items_disappear_everywhere(artifacts: dict[str, Path]) -> None:
    rt = ModelRuntime()
    rt.load(artifacts["ials"], "v1")
    recs = rt.recommend("u006", 5)
    gone = recs[0].item
    popular = rt.trending(3)[0].item
    similar_to = "i001"
    near = rt.similar(similar_to, 3)[0].item
    rt.on_items_deleted([gone, popular, near])
    assert gone not in _ids(rt.recommend("u006", 5))
    assert len(rt.recommend("u006", 5)) == 5
    assert popular not in _ids(rt.trending(10))
    assert near not in _ids(rt.similar(similar_to, 3)) and len(rt.similar(similar_to, 3)) == 3
    for user in ("u007", "u008", "stranger"):
        assert not {gone, popular, near} & set(_ids(rt.recommend(user, 30)))
    with pytest.raises(SerendipError, match="deleted"):
        rt.similar(gone, 3)


def test_a_new_item_reaches_users_through_trending(artifacts: dict[str, Path]) -> None:
    rt = ModelRuntime(trending_half_life_s=3600.0)
    rt.load(artifacts["tfidf"], "v1")
    rt.on_items([ItemIn("fresh-1", title="brand new", category="cat2", author="u001")])
    assert "fresh-1" not in _ids(rt.trending(5))
    t0 = 1_700_900_000.0
    rt.on_events([_ev(f"u{u:03d}", "fresh-1", "view", t0 + u) for u in range(12)])
    top = rt.trending(5)
    assert top[0].item == "fresh-1"
    assert "fresh-1" in _ids(rt.trending(5, category="cat2"))
    assert "fresh-1" not in _ids(rt.trending(5, category="cat0"))
    # time decay: a day later, a burst on an old item wins
    rt.on_events([_ev(f"u{u:03d}", "i050", "view", t0 + 86_400 + u) for u in range(5)])
    assert rt.trending(1)[0].item == "i050"


def test_filters_exclude_list_and_context_item(artifacts: dict[str, Path]) -> None:
    rt = ModelRuntime()
    rt.load(artifacts["ials"], "v1")
    ds = _ds()
    cat = dict(zip(ds.items.ids, np.asarray(ds.item_meta.category), strict=True))
    author = dict(zip(ds.items.ids, np.asarray(ds.item_meta.author), strict=True))
    recs = rt.recommend("u009", 5, categories=["cat1"])
    assert recs and all(cat[r.item] == "cat1" for r in recs)
    some_authors = sorted(set(author.values()))[:10]
    recs = rt.recommend("u009", 5, authors=some_authors)
    assert recs and all(author[r.item] in some_authors for r in recs)
    plain = _ids(rt.recommend("u009", 5))
    assert not set(plain[:2]) & set(_ids(rt.recommend("u009", 5, exclude=plain[:2])))
    ctx = rt.recommend("u009", 5, context_item=plain[0])
    assert plain[0] not in _ids(ctx)
    # a live catalog update moves an item to another category
    rt.on_items([ItemIn(plain[0], category="cat-new")])
    assert _ids(rt.recommend("u009", 5, categories=["cat-new"])) == [plain[0]]


def test_explanations_and_similar(artifacts: dict[str, Path]) -> None:
    rt = ModelRuntime()
    rt.load(artifacts["ials"], "v1")
    recs = rt.recommend("u010", 3, explain=True)
    for r in recs:
        assert r.explanation is not None
        assert r.explanation["item"] == r.item and r.explanation["text"]
    assert all(r.explanation is None for r in rt.recommend("u010", 3))
    sim = rt.similar("i002", 4)
    assert len(sim) == 4 and "i002" not in _ids(sim)
    with pytest.raises(SerendipError, match="unknown item"):
        rt.similar("nope", 3)


def test_the_pipeline_is_served_from_a_live_user_context(tmp_path: Path) -> None:
    from serendip.models import get_model_class

    try:
        cls = get_model_class("pipeline")
    except ConfigError:
        pytest.skip("pipeline model not registered yet")
    cls(dict(cls.quick_params)).fit(_ds()).save(tmp_path / "pipe")
    rt = ModelRuntime()
    rt.load(tmp_path / "pipe", "p1")
    before = rt.recommend("newcomer", 10)
    assert len(before) == 10
    rt.on_follow("newcomer", "u001")
    rt.on_events([_ev("newcomer", before[0].item), _ev("newcomer", before[1].item)])
    after = rt.recommend("newcomer", 10, explain=True)
    assert not {before[0].item, before[1].item} & set(_ids(after))
    assert all(r.explanation is not None and r.explanation["text"] for r in after)
    assert _ids(after) != _ids(before)
    # the live follow reached the context: in-network evidence names the followee
    assert any(
        e["kind"] == "followee" and e["id"] == "u001"
        for r in after
        for e in (r.explanation or {}).get("evidence", [])
    )
    rt.on_items_deleted([after[0].item])
    assert after[0].item not in _ids(rt.recommend("newcomer", 10))


def test_follows_and_unfollows_are_tracked() -> None:
    state = OnlineState()
    state.follow("a", "b")
    state.follow("a", "c")
    state.unfollow("a", "b")
    assert state.followees("a") == ({"c"}, {"b"})


def test_online_state_is_bounded_and_validated() -> None:
    state = OnlineState(history_size=3)
    state.add_events([_ev("u", f"i{j}", timestamp=float(j)) for j in range(5)])
    assert [h[0] for h in state.history("u")] == ["i2", "i3", "i4"]
    with pytest.raises(ConfigError):
        OnlineState(history_size=0)


def test_live_counts_decay_by_half_life() -> None:
    state = OnlineState(half_life_s=10.0)
    state.add_events([_ev("u", "a", timestamp=0.0), _ev("u", "b", timestamp=10.0)])
    counts, clock, first = state.counts()
    assert counts == pytest.approx({"a": 0.5, "b": 1.0}) and (clock, first) == (10.0, 0.0)
    # far beyond the reference time: the stored values are rescaled, not overflowed
    state.add_events([_ev("u", "c", timestamp=10_000.0), _ev("u", "c", timestamp=10_010.0)])
    counts, _, _ = state.counts()
    assert counts["c"] == pytest.approx(1.5) and counts["a"] == pytest.approx(0.0)
    state.delete_items(["c"])
    assert "c" not in state.counts()[0]


def test_real_time_through_an_ann_index(tmp_path: Path) -> None:
    params: dict[str, Any] = {"factors": 8, "iterations": 5, "regularization": 1.0}
    IALS(params, ann=True, ann_exact_below=0, ann_m=16).fit(_ds()).save(tmp_path / "ann")
    IALS(params).fit(_ds()).save(tmp_path / "exact")
    rt, ref = ModelRuntime(), ModelRuntime()
    rt.load(tmp_path / "ann", "a")
    ref.load(tmp_path / "exact", "e")
    assert rt.snapshot is not None and rt.snapshot.metadata["ann"] == ["recommend", "similar"]
    for runtime in (rt, ref):
        runtime.on_events([_ev("u011", "i001"), _ev("u011", "i002"), _ev("newbie", "i003")])
    for user in ("u011", "newbie"):
        got, want = _ids(rt.recommend(user, 10)), _ids(ref.recommend(user, 10))
        assert len(set(got) & set(want)) >= 9
        assert not {"i001", "i002", "i003"} & set(got)
