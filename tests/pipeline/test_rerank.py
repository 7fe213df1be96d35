"""Re-ranking and rules: author cap, network mix target and filters hold exactly."""

from __future__ import annotations

import math

import numpy as np
import pytest

from serendip.data.dataset import ItemTable
from serendip.pipeline.candidates import UserContext
from serendip.pipeline.config import RerankParams
from serendip.pipeline.rerank import (
    CatalogRules,
    ExposureCounter,
    allowed_candidates,
    diversity_vectors,
    rerank,
)


def _ctx(user: str = "u0", history=(), exclude=(), now: float = float("nan")) -> UserContext:
    h = np.asarray(history, np.int64)
    return UserContext(
        user=user,
        user_idx=0,
        history=h,
        history_time=np.full(len(h), np.nan),
        history_event=np.zeros(len(h), np.int8),
        followees=np.zeros(0, np.int64),
        now=now,
        exclude=np.asarray(exclude, np.int64),
    )


def _catalog(n: int = 40) -> ItemTable:
    t = ItemTable.empty(n)
    cats = np.array([f"c{i % 4}" for i in range(n)], dtype=object)
    tags = np.empty(n, dtype=object)
    tags[:] = [(f"t{i % 4}", f"x{i % 2}") for i in range(n)]
    authors = np.array([f"a{i % 5}" for i in range(n)], dtype=object)
    return ItemTable(t.title, t.text, tags, cats, authors, np.arange(n, dtype=np.float64))


def test_author_cap_is_exact() -> None:
    items = _catalog()
    rules = CatalogRules.build(items.author, items.created_at, item_ids=np.arange(40).astype(str))
    cand = np.arange(40)
    scores = -cand.astype(float)  # item 0 best
    for cap in (1, 2, 3):
        params = RerankParams(mmr_lambda=1.0, author_cap=cap, pool=40)
        out, shown = rerank(cand, scores, 10, params, author=rules.author)
        counts = np.bincount(rules.author[out])
        assert counts.max() <= cap
        assert len(out) == min(10, 5 * cap)
        # greedy in score order: the first `cap` items of every author, best first
        expected = [i for i in cand if (cand[:i] % 5 == i % 5).sum() < cap][:10]
        assert out.tolist() == expected
        assert np.all(np.diff(shown) <= 0)


def test_without_rules_the_list_is_the_score_order() -> None:
    cand = np.array([5, 3, 9, 1])
    scores = np.array([0.1, 0.9, 0.5, 0.7])
    out, shown = rerank(cand, scores, 3, RerankParams(mmr_lambda=1.0, author_cap=None))
    assert out.tolist() == [3, 1, 9]
    np.testing.assert_allclose(shown, [0.9, 0.7, 0.5])


@pytest.mark.parametrize("target", [0.0, 0.3, 0.5, 1.0])
def test_network_mix_target_is_exact_when_both_sides_suffice(target: float) -> None:
    cand = np.arange(30)
    scores = -cand.astype(float)
    in_net = cand < 20  # the 20 best are in-network
    params = RerankParams(mmr_lambda=1.0, author_cap=None, oon_target=target, pool=30)
    out, _ = rerank(cand, scores, 10, params, in_network=in_net)
    assert len(out) == 10
    for p in range(1, 11):  # every prefix meets the target
        assert int((~in_net[out[:p]]).sum()) == math.floor(target * p + 0.5)


def test_mix_target_falls_back_when_one_side_runs_out() -> None:
    cand = np.arange(12)
    in_net = cand < 10  # only 2 out-of-network items
    params = RerankParams(mmr_lambda=1.0, author_cap=None, oon_target=0.5)
    out, _ = rerank(cand, -cand.astype(float), 10, params, in_network=in_net)
    assert len(out) == 10 and int((~in_net[out]).sum()) == 2


def test_mmr_diversifies_categories() -> None:
    items = _catalog()
    content = diversity_vectors(items, "category")
    # the 10 best items all share category c0; lower-scored items carry the other categories
    cand = np.arange(40)
    scores = np.where(cand % 4 == 0, 10.0 + (40 - cand) * 0.01, 9.0 + (40 - cand) * 0.01)
    plain, _ = rerank(cand, scores, 4, RerankParams(mmr_lambda=1.0, author_cap=None, pool=40))
    diverse, _ = rerank(
        cand, scores, 4, RerankParams(mmr_lambda=0.3, author_cap=None, pool=40), content=content
    )
    cats = items.category
    assert len({cats[i] for i in plain}) == 1
    assert len({cats[i] for i in diverse}) == 4


def test_diversity_vectors_are_unit_rows() -> None:
    v = diversity_vectors(_catalog(), "category+tags")
    norms = np.sqrt(np.asarray(v.multiply(v).sum(axis=1)).ravel())
    np.testing.assert_allclose(norms, 1.0, rtol=1e-5)


def test_filters_drop_exactly_what_they_should() -> None:
    items = _catalog()
    ids = np.array([f"i{j}" for j in range(40)])
    removed = np.zeros(40, bool)
    removed[7] = True
    rules = CatalogRules.build(
        items.author,
        items.created_at,
        item_ids=ids,
        blocked_items=("i3",),
        blocked_authors=("a4",),
        removed=removed,
    )
    ctx = _ctx(user="a1", history=[0, 2], exclude=[5], now=30.0)
    cand = np.arange(40)
    ok = allowed_candidates(cand, ctx, rules)
    expected = np.ones(40, bool)
    expected[[0, 2, 3, 5, 7]] = False  # seen, blocked item, excluded, removed
    expected[cand % 5 == 4] = False  # blocked author a4
    expected[cand % 5 == 1] = False  # the user's own items (author a1)
    expected[cand > 30] = False  # created after now
    np.testing.assert_array_equal(ok, expected)
    ok = allowed_candidates(
        cand, ctx, rules, exclude_seen=False, exclude_unpublished=False, exclude_own=False
    )
    assert ok[0] and ok[35] and ok[1] and not ok[3]
    extra = np.zeros(40, bool)
    extra[[10, 12]] = True
    ok = allowed_candidates(cand, ctx, rules, extra_allowed=extra)
    assert np.flatnonzero(ok).tolist() == [10, 12]


def test_popularity_penalty_moves_the_long_tail_up() -> None:
    cand = np.arange(6)
    scores = np.array([1.0, 0.95, 0.9, 0.5, 0.4, 0.0])  # popular items score best
    pop = np.array([1.0, 1.0, 1.0, 0.0, 0.0, 0.0])
    plain, _ = rerank(cand, scores, 3, RerankParams(mmr_lambda=1.0, author_cap=None))
    assert plain.tolist() == [0, 1, 2]
    off, _ = rerank(cand, scores, 3, RerankParams(mmr_lambda=1.0, author_cap=None), popularity=pop)
    assert off.tolist() == [0, 1, 2]  # penalty 0: popularity is ignored
    params = RerankParams(mmr_lambda=1.0, author_cap=None, popularity_penalty=0.6)
    out, shown = rerank(cand, scores, 3, params, popularity=pop)
    # relevance - 0.6 * popularity: 0.4, 0.35, 0.3 vs 0.5, 0.4, 0.0 -> 3, then 4 ~ 0 (tie to 0)
    assert out.tolist()[0] == 3 and set(out.tolist()) <= {0, 3, 4}
    assert np.all(np.diff(shown) <= 0)  # displayed scores still read as sorted
    # MMR path takes the same penalised relevance
    mmr = RerankParams(mmr_lambda=0.99, author_cap=None, popularity_penalty=0.6)
    out2, _ = rerank(cand, scores, 3, mmr, popularity=pop, content=None)
    assert out2.tolist() == out.tolist()


@pytest.mark.parametrize("target", [0.2, 0.3, 0.5])
def test_long_tail_quota_holds_on_every_prefix(target: float) -> None:
    cand = np.arange(30)
    scores = -cand.astype(float)  # head items (even) and tail items (odd) interleaved
    tail = cand % 3 == 2  # a third of the candidates are long tail, the lower ones
    params = RerankParams(mmr_lambda=1.0, author_cap=None, tail_target=target)
    out, shown = rerank(cand, scores, 10, params, long_tail=tail)
    for p in range(1, 11):
        assert tail[out[:p]].sum() >= math.floor(target * p + 0.5)
    assert np.all(np.diff(shown) <= 0)
    none, _ = rerank(cand, scores, 10, params)  # no long-tail mask: no quota
    assert none.tolist() == list(range(10))


def _serve_batch(
    n_users: int, params: RerankParams, counter: ExposureCounter | None
) -> list[list[int]]:
    """The same candidates and scores for every user, served in order through one counter."""
    cand = np.arange(30)
    scores = 1.0 - cand / 30.0  # relevance falls by 1/29 per rank over the pool
    lists = []
    for _ in range(n_users):
        shown = None if counter is None else counter.shown(cand)
        out, _ = rerank(cand, scores, 5, params, exposure=shown)
        if counter is not None:
            counter.record(out)
        lists.append(out.tolist())
    return lists


def test_exposure_penalty_spreads_a_batch_over_the_catalog() -> None:
    plain = RerankParams(mmr_lambda=1.0, author_cap=None, pool=30)
    assert plain.exposure_penalty == 0.0  # off by default
    same = _serve_batch(6, plain, ExposureCounter(30))
    assert all(lst == same[0] for lst in same)  # no penalty: exposure is ignored
    params = RerankParams(mmr_lambda=1.0, author_cap=None, pool=30, exposure_penalty=0.5)
    spread = _serve_batch(6, params, ExposureCounter(30))
    assert spread[0] == same[0]  # the first user of a batch gets the ranker's list
    assert spread[1] != spread[0]  # later users move past what the batch already saw
    assert len({i for lst in spread for i in lst}) > len(set(same[0]))  # catalog coverage
    # item 0 shown once: penalty 0.5 * log 2 = 0.35 -> it drops below items 1..10 (relevance
    # 1 - j/29 > 0.65 for j < 10.2) for the second user
    assert spread[1] == [5, 6, 7, 8, 9]
    assert _serve_batch(6, params, ExposureCounter(30)) == spread  # deterministic
    assert _serve_batch(1, params, None) == [same[0]]  # no counter: no penalty
    # a free head: the first two positions stay the most relevant, the penalty spreads the rest
    head = _serve_batch(6, params.model_copy(update={"exposure_free_top": 2}), ExposureCounter(30))
    assert head[0] == same[0]
    assert all(lst[:2] == [0, 1] for lst in head)
    assert head[1][2:] == [5, 6, 7]  # items 2-4 were shown once: 0.35 below their relevance
    assert len({i for lst in head for i in lst}) > len(set(same[0]))


def test_exposure_counter_counts_and_decays() -> None:
    plain = ExposureCounter(4)
    plain.record(np.array([0, 1]))
    plain.record(np.array([1]))
    np.testing.assert_allclose(plain.shown(np.arange(4)), [1.0, 2.0, 0.0, 0.0])
    fading = ExposureCounter(4, half_life=2.0)
    fading.record(np.array([0]))
    fading.record(np.array([1]))
    fading.record(np.array([2]))
    # item 0 was shown two lists ago: one half-life
    np.testing.assert_allclose(fading.shown(np.arange(4)), [0.5, 2**-0.5, 1.0, 0.0])
    assert fading.n_lists == 3
    for _ in range(3000):  # the lazy scale is renormalised before it underflows
        fading.record(np.array([3]))
    assert np.isfinite(fading.shown(np.arange(4))).all()
    assert fading.shown(np.array([3]))[0] == pytest.approx(1 / (1 - 2**-0.5), rel=1e-6)
    with pytest.raises(ValueError, match="half_life"):
        ExposureCounter(4, half_life=0.0)


def test_oon_boost_lifts_out_of_network_items_within_the_boost() -> None:
    cand = np.arange(10)
    scores = 1.0 - cand / 9.0  # relevance 1, 0.89, 0.78, ...
    in_net = cand != 2  # item 2 (relevance 0.78) is the only out-of-network one
    plain = RerankParams(mmr_lambda=1.0, author_cap=None)
    out, _ = rerank(cand, scores, 3, plain, in_network=in_net)
    assert out.tolist() == [0, 1, 2]
    lifted, shown = rerank(
        cand, scores, 3, plain.model_copy(update={"oon_boost": 0.15}), in_network=in_net
    )
    assert lifted.tolist() == [0, 2, 1]  # 0.78 + 0.15 passes 0.89, not 1.0
    assert np.all(np.diff(shown) <= 0)
    top, _ = rerank(cand, scores, 3, plain.model_copy(update={"oon_boost": 0.5}), in_network=in_net)
    assert top.tolist() == [2, 0, 1]
    no_net, _ = rerank(cand, scores, 3, plain.model_copy(update={"oon_boost": 0.5}))
    assert no_net.tolist() == [0, 1, 2]  # without the network flags the boost cannot act
