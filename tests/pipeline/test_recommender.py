"""The pipeline as a model: cold users and items, live updates, rules, save/load."""

from __future__ import annotations

import copy
import dataclasses
from functools import cache
from pathlib import Path

import numpy as np
import pandas as pd

from serendip.data.dataset import Dataset
from serendip.models import Recommender
from serendip.pipeline.recommender import PipelineRecommender
from tests.conftest import make_toy_platform

QUICK = dict(PipelineRecommender.quick_params)
HISTORY_SOURCES = {"recent-item-knn", "collaborative"}


@cache
def _data() -> Dataset:
    return make_toy_platform(seed=4, n_users=80, n_items=150)


@cache
def _fitted() -> PipelineRecommender:
    return PipelineRecommender(QUICK).fit(_data())


def _reasons(model: PipelineRecommender, user: str, k: int, **changes) -> list[tuple[str, bool]]:
    """(primary source, cites a history item) of each item of the user's list."""
    ctx = model.user_contexts([user])[0]
    if changes:
        ctx = dataclasses.replace(ctx, **changes)
    served = model.recommend_contexts([ctx], k, explain=True)[0]
    assert len(served.items) == k
    assert served.explanations is not None
    return [
        (e.evidence[0].id if e.evidence else "", any(x.kind == "item" for x in e.evidence))
        for e in served.explanations
    ]


def test_new_user_with_interests_only_then_events_shift_the_mix() -> None:
    ds = _data()
    model = PipelineRecommender(QUICK).fit(ds)
    before = _reasons(model, "newcomer", 10, interests=("cat1",))
    assert {"content", "trending"} & {s for s, _ in before}
    assert not any(cites for _, cites in before)
    cat = dict(zip(ds.items.ids, ds.item_meta.category, strict=True))
    liked = [i for i in ds.items.ids if cat[i] == "cat1"][:6]
    t0 = float(np.nanmax(ds.interactions.timestamp))
    model.update(
        pd.DataFrame(
            {
                "user": "newcomer",
                "item": liked,
                "event": "like",
                "timestamp": t0 + np.arange(len(liked)),
            }
        )
    )
    after = _reasons(model, "newcomer", 10, interests=("cat1",))
    assert sum(cites for _, cites in after) >= 3  # "Because you liked ..." / "Similar to ..."
    assert sum(s in HISTORY_SOURCES for s, _ in after) > sum(
        s in HISTORY_SOURCES and c for s, c in before
    )
    recs = model.recommend(["newcomer"], 10).item_ids(0)
    assert not set(recs) & set(liked)  # folded-in events count as seen


def test_cold_user_context_and_interest_steer_the_list() -> None:
    ds = _data()
    model = _fitted()
    cat = dict(zip(ds.items.ids, ds.item_meta.category, strict=True))
    lists = {}
    for interest in ("cat0", "cat2"):
        ctx = dataclasses.replace(model.user_contexts(["nobody"])[0], interests=(interest,))
        lists[interest] = model.recommend_contexts([ctx], 10)[0].item_ids
        assert len(lists[interest]) == 10

    def share(interest: str, items: tuple[str, ...]) -> int:
        return sum(cat[i] == interest for i in items)

    assert share("cat0", lists["cat0"]) > share("cat0", lists["cat2"])
    assert share("cat2", lists["cat2"]) > share("cat2", lists["cat0"])


def _with_new_item() -> tuple[Dataset, str, str]:
    """The toy platform plus one item nobody interacted with yet, created an hour before the
    data's end by an author whom `u005` follows, in u005's favourite category."""
    ds = _data()
    items = ds.items_frame()
    inter = ds.interactions_frame()
    social = ds.social_frame()
    user = "u005"
    author = social[social.follower == user].followee.iloc[0]
    fav = (
        inter[inter.user == user]
        .merge(items[["item", "category"]], on="item")
        .category.value_counts()
        .index[0]
    )
    similar = items[items.category == fav].iloc[0]
    new = similar.copy()
    new["item"] = "brand-new"
    new["author"] = author
    new["created_at"] = float(inter.timestamp.max()) - 3600.0
    items = pd.concat([items, new.to_frame().T], ignore_index=True)
    users = pd.DataFrame(
        {
            "user": ds.users.ids,
            "interests": [list(x) for x in ds.user_meta.interests],
            "created_at": ds.user_meta.created_at,
        }
    )
    out = Dataset.from_frames(inter, items, users, social, name="toy+new")
    return out, user, "brand-new"


def test_new_item_is_recommendable_at_once_through_content_and_followed_author() -> None:
    ds, user, new = _with_new_item()
    assert ds.item_counts()[ds.items.index(new)] == 0
    model = PipelineRecommender(QUICK).fit(ds)
    ctx = model.user_contexts([user])[0]
    frame = model.stage_.frame([ctx])
    row = np.flatnonzero(frame.item == ds.items.index(new))
    assert len(row) == 1
    proposed_by = {s for j, s in enumerate(frame.sources) if not np.isnan(frame.rank[row[0], j])}
    assert {"fresh-followed", "content"} <= proposed_by
    served = model.recommend_contexts([ctx], 20, explain=True)[0]
    assert new in served.item_ids
    exp = served.explanations[served.item_ids.index(new)]  # type: ignore[index]
    assert exp.text


def test_rules_of_the_config_hold_in_every_list() -> None:
    ds = _data()
    authors = ds.item_meta.author
    blocked_author = str(pd.Series(authors).value_counts().index[0])
    params = {
        **QUICK,
        "rerank": {"pool": 40, "author_cap": 1, "oon_target": 0.5, "mmr_lambda": 0.7},
        "filters": {"blocked_authors": [blocked_author], "blocked_items": ["i000", "i001"]},
    }
    model = PipelineRecommender(params).fit(ds)
    users = list(ds.users.ids[:30])
    recs = model.recommend(users, 10)
    seen = ds.seen()
    follow = ds.social.adjacency(ds.n_users)
    for r, u in enumerate(users):
        items = recs.items[r][recs.items[r] >= 0]
        assert len(items) == 10
        by = authors[items]
        assert blocked_author not in set(by)
        assert not {"i000", "i001"} & set(recs.item_ids(r))
        assert pd.Series(by).value_counts().max() == 1  # author cap 1
        assert u not in set(by)  # never the user's own items
        uidx = ds.users.index(u)
        touched = set(seen[follow[uidx].indices].indices.tolist())
        n_oon = sum(int(i) not in touched for i in items)
        # the target holds unless one side ran out of candidates
        assert n_oon == 5 or min(n_oon, 10 - n_oon) < 5
    removed = recs.item_ids(0)[:3]
    model.remove_items(removed)
    assert not set(model.recommend(users[:1], 10).item_ids(0)) & set(removed)


def test_save_load_round_trip_keeps_lists_explanations_and_live_state(tmp_path: Path) -> None:
    ds = _data()
    model = PipelineRecommender(QUICK).fit(ds)
    model.update(pd.DataFrame({"user": ["u003", "fresh"], "item": ["i010", "i011"]}))
    users = [*ds.users.ids[:15], "fresh", "ghost"]
    model.save(tmp_path / "p")
    assert (tmp_path / "p" / "ranker.txt").is_file()
    assert not list((tmp_path / "p").glob("*.pkl"))
    loaded = Recommender.load(tmp_path / "p")
    assert isinstance(loaded, PipelineRecommender)
    a, b = model.recommend(users, 10), loaded.recommend(users, 10)
    np.testing.assert_array_equal(a.items, b.items)
    np.testing.assert_array_equal(a.scores, b.scores)
    ea = model.recommend_contexts(model.user_contexts(users[:5]), 5, explain=True)
    eb = loaded.recommend_contexts(loaded.user_contexts(users[:5]), 5, explain=True)
    for x, y in zip(ea, eb, strict=True):
        assert [e.to_dict() for e in x.explanations or ()] == [
            e.to_dict() for e in y.explanations or ()
        ]


def test_two_collaborative_sources_random_labels_and_popularity_penalty(tmp_path: Path) -> None:
    ds = _data()
    params = {
        **QUICK,
        "sources.collaborative-2.params": {"model": "ials", "params": {"factors": 4}},
        "sources.collaborative-2.quota": 15,
        "ranker.label_split": "random",
        "rerank.popularity_penalty": 0.5,
    }
    model = PipelineRecommender(params).fit(ds)
    assert "score_collaborative-2" in model.stage_.feature_names
    users = list(ds.users.ids[:30])
    recs = model.recommend(users, 10)
    assert (recs.items >= 0).all()
    # the penalty lowers the mean popularity of what is shown
    plain = PipelineRecommender({**params, "rerank.popularity_penalty": 0.0}).fit(ds)
    pop = model.popularity_
    assert pop[recs.items].mean() < pop[plain.recommend(users, 10).items].mean()
    # the long tail: everything outside the most popular items holding half the interactions
    tail = model._long_tail()
    head_share = pop[~tail].sum() / pop.sum()
    assert 0.5 <= head_share < 0.5 + pop[~tail].min() / pop.sum()
    head_first = {**params, "rerank.popularity_penalty": 0.0}
    quota = PipelineRecommender({**head_first, "rerank.tail_target": 0.9}).fit(ds)
    with_quota = tail[quota.recommend(users, 10).items].mean()
    assert with_quota >= 0.85 and with_quota >= tail[plain.recommend(users, 10).items].mean()
    model.save(tmp_path / "p2")
    loaded = Recommender.load(tmp_path / "p2")
    np.testing.assert_array_equal(loaded.recommend(users, 10).items, recs.items)


def test_loading_for_serving_limits_thread_pools(tmp_path: Path) -> None:
    from threadpoolctl import threadpool_info, threadpool_limits

    _fitted().save(tmp_path / "p")
    with threadpool_limits(limits=2):  # as a fresh process with several threads per pool
        Recommender.load(tmp_path / "p")
        assert all(pool["num_threads"] == 1 for pool in threadpool_info())


def test_refit_on_new_data_drops_the_lazy_caches_of_the_old_fit() -> None:
    """Popularity order, penalty scale, long tail and live time are cached lazily; a refit of
    the same instance must serve exactly what a fresh model fitted on the new data serves."""
    params = {**QUICK, "rerank": {"popularity_penalty": 0.2, "tail_target": 0.3}}
    model = PipelineRecommender(params).fit(_data())
    users = [*_data().users.ids[:5], "stranger"]
    model.recommend(users, 10)  # fills the caches
    other = make_toy_platform(seed=5, n_users=60, n_items=90)
    fresh = PipelineRecommender(params).fit(other)
    model.fit(other)
    users = [*other.users.ids[:5], "stranger"]
    a, b = model.recommend(users, 10), fresh.recommend(users, 10)
    assert np.array_equal(a.items, b.items)
    assert np.allclose(a.scores, b.scores)


def _with_rerank(model: PipelineRecommender, **knobs: object) -> PipelineRecommender:
    """A shallow copy of a fitted model with other request-time re-ranking knobs."""
    out = copy.copy(model)
    cfg = model.config
    out.config = cfg.model_copy(update={"rerank": cfg.rerank.model_copy(update=knobs)})  # type: ignore[attr-defined]
    return out


def test_exposure_penalty_spreads_one_call_and_keeps_calls_independent() -> None:
    model = _fitted()
    users = list(_data().users.ids[:40])
    plain = model.recommend(users, 10)
    spread_model = _with_rerank(model, exposure_penalty=0.5, pool=40)
    spread = spread_model.recommend(users, 10)
    # the first user is served before anyone: the ranker's list
    np.testing.assert_array_equal(spread.items[0], plain.items[0])
    assert len(np.unique(spread.items)) > len(np.unique(plain.items))
    # one count per call, across batches; a second call starts again from zero
    np.testing.assert_array_equal(spread_model.recommend(users, 10).items, spread.items)
    np.testing.assert_array_equal(
        spread_model.recommend(users, 10, batch_size=7).items, spread.items
    )
    # one-user calls without a serving counter never feel each other
    np.testing.assert_array_equal(spread_model.recommend(users[:1], 10).items, plain.items[:1])


def _lists_counted(model: PipelineRecommender) -> int:
    counter = model._exposure_counter()
    assert counter is not None
    return counter.n_lists


def test_serving_exposure_counter_carries_over_calls_and_scores_do_not_feed_it() -> None:
    model = _with_rerank(_fitted(), exposure_penalty=0.5, pool=40, exposure_half_life=1000.0)
    user = str(_data().users.ids[0])
    first = model.recommend([user], 10).item_ids(0)
    model.score(user, first)  # a deep list for scoring: not served, not counted
    assert _lists_counted(model) == 1
    second = model.recommend([user], 10).item_ids(0)
    assert second != first  # what this process just showed is penalised
    assert _lists_counted(model) == 2
    model.fit(_data())  # a refit starts a new count
    assert _lists_counted(model) == 0


def test_a_fit_vectorises_the_catalogue_once_and_gives_the_same_model(monkeypatch) -> None:
    from serendip.models.content import TfidfContent
    from serendip.pipeline.sources import content as content_module
    from serendip.pipeline.sources.content import fit_item_vectors, shared_item_vectors

    calls: list[int] = []
    original = TfidfContent._item_vectors

    def counting(self, dataset):  # type: ignore[no-untyped-def]
        calls.append(dataset.n_items)
        return original(self, dataset)

    monkeypatch.setattr(TfidfContent, "_item_vectors", counting)
    postings: list[int] = []
    build = content_module.impact_postings

    def counting_postings(vectors, m):  # type: ignore[no-untyped-def]
        postings.append(vectors.shape[0])
        return build(vectors, m)

    monkeypatch.setattr(content_module, "impact_postings", counting_postings)
    ds = _data()
    params = copy.deepcopy(QUICK)
    params["sources"]["content"]["params"] = {"postings_from_items": 0}  # the index at any size
    shared = PipelineRecommender(params).fit(ds)
    # content source and features, in the label window's stage and the final one: one pass;
    # the inverted indexes (items' terms and interest terms) once each
    assert calls == [ds.n_items] and len(postings) == 2
    # outside a fit nothing is kept: each call vectorises again
    a, b = fit_item_vectors(ds)[0], fit_item_vectors(ds)[0]
    assert a is not b and len(calls) == 3
    with shared_item_vectors():
        assert fit_item_vectors(ds)[0] is fit_item_vectors(ds)[0]
    # the same lists as a fit that vectorised each time (the cache only saves the work)
    monkeypatch.setattr(
        "serendip.pipeline.recommender.shared_item_vectors", _no_sharing, raising=True
    )
    unshared = PipelineRecommender(params).fit(ds)
    users = [str(u) for u in ds.users.ids[:30]]
    x, y = shared.recommend(users, 10), unshared.recommend(users, 10)
    np.testing.assert_array_equal(x.items, y.items)
    np.testing.assert_array_equal(x.scores, y.scores)


def _no_sharing():  # type: ignore[no-untyped-def]
    import contextlib

    return contextlib.nullcontext()


def test_a_loaded_pipeline_shares_its_vocabularies(tmp_path) -> None:  # type: ignore[no-untyped-def]
    _fitted().save(tmp_path / "m")
    loaded = Recommender.load(tmp_path / "m")
    sources = loaded.stage_.sources.values()  # type: ignore[attr-defined]
    assert all(s.items_ is loaded.items_ and s.users_ is loaded.users_ for s in sources)


def test_items_the_log_shows_before_their_declared_date_are_not_hidden_as_unpublished() -> None:
    counts = _data().item_counts()
    liked, never = int(np.argmax(counts)), int(np.argmin(counts))
    ds = _data().filter_interactions(_data().interactions.item != never)  # nobody touched it
    now = float(np.nanmax(ds.interactions.timestamp))
    created = ds.item_meta.created_at.copy()
    created[[liked, never]] = now + 30 * 86_400.0  # declared a month after the log ends
    late = dataclasses.replace(ds, item_meta=dataclasses.replace(ds.item_meta, created_at=created))
    late = late.with_interactions(late.interactions)  # a fresh cache
    model = PipelineRecommender(QUICK).fit(late)
    seen = late.seen()
    user = next(u for u in range(late.n_users) if liked not in seen[u].indices)
    ctx = model.user_contexts([str(late.users.ids[user])])[0]
    assert ctx.now == now
    allowed = model._rules_allow(np.array([liked, never]), ctx, None, True)
    # people interacted with it: it exists; the one nobody touched waits for its date
    assert allowed.tolist() == [True, False]
