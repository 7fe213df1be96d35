"""Re-ranking as composed steps: the composition is the pre-refactor `rerank` to the bit.

`_reference_rerank` is the one-function `rerank` as it was before it became steps (commit
047e8dd), copied verbatim: for random candidates, scores (ties, near-ties, large magnitudes),
signals present or absent and every knob combination, `rerank` must return the same items in
the same order with the same displayed float32 scores.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError
from sklearn.preprocessing import normalize

from serendip.pipeline.config import RERANK_STEPS, PipelineConfig, RerankParams
from serendip.pipeline.rerank import (
    AuthorCap,
    ExposurePenalty,
    LongTailQuota,
    MaximalMarginalRelevance,
    OutOfNetworkBoost,
    OutOfNetworkTarget,
    Pool,
    PopularityPenalty,
    Reranker,
    Slate,
    TopRelevance,
    rerank,
)


def _reference_rerank(
    items: np.ndarray,
    scores: np.ndarray,
    k: int,
    params: RerankParams,
    *,
    content: sp.csr_matrix | None = None,
    author: np.ndarray | None = None,
    in_network: np.ndarray | None = None,
    popularity: np.ndarray | None = None,
    long_tail: np.ndarray | None = None,
    exposure: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """The one-function `rerank` before the steps (verbatim but for its docstring)."""
    items = np.asarray(items, dtype=np.int64)
    scores = np.asarray(scores, dtype=np.float64)
    if len(items) == 0 or k <= 0:
        return np.zeros(0, np.int64), np.zeros(0, np.float32)
    order = np.lexsort((items, -scores))[: params.pool]
    items, scores = items[order], scores[order]
    m = len(items)
    net = np.zeros(m, bool) if in_network is None else np.asarray(in_network, dtype=bool)[order]
    lo, hi = scores.min(), scores.max()
    rel = (scores - lo) / (hi - lo) if hi > lo else np.ones(m)
    penalised = False
    if params.oon_boost > 0 and in_network is not None:
        rel = rel + params.oon_boost * ~net
        penalised = True
    if params.popularity_penalty > 0 and popularity is not None:
        rel = rel - params.popularity_penalty * np.asarray(popularity, np.float64)[items]
        penalised = True
    # the exposure cost applies from position `exposure_free_top` on: kept apart from `rel`
    cost = None
    if params.exposure_penalty > 0 and exposure is not None:
        shown_before = np.maximum(np.asarray(exposure, np.float64)[order], 0.0)
        cost = params.exposure_penalty * np.log1p(shown_before)
    if penalised:
        again = np.lexsort((items, -rel))  # the candidates in penalised-relevance order
        items, scores, rel, net = items[again], scores[again], rel[again], net[again]
        cost = None if cost is None else cost[again]
    tail_target = None if long_tail is None else params.tail_target
    tail = np.zeros(m, bool) if long_tail is None else np.asarray(long_tail, dtype=bool)[items]
    n_tail = 0
    lam = params.mmr_lambda
    use_mmr = lam < 1.0 and content is not None
    if use_mmr:
        assert content is not None
        sub = content[items]
        sim = np.asarray((sub @ sub.T).todense(), dtype=np.float64)
        max_sim = np.zeros(m)
    cap = params.author_cap
    codes = None if author is None or cap is None else np.asarray(author, np.int64)[items]
    author_count: dict[int, int] = {}
    target = None if in_network is None else params.oon_target
    kk = min(k, m)
    n_oon = 0
    eligible = np.ones(m, dtype=bool)
    chosen: list[int] = []
    while len(chosen) < kk and eligible.any():
        mask = eligible
        if target is not None:
            # after this pick, floor(target * p + 0.5) of the first p items should be
            # out of network: every prefix of the list meets the target, not only the whole
            want_oon = math.floor(target * (len(chosen) + 1) + 0.5) > n_oon
            side = eligible & (~net if want_oon else net)
            if side.any():
                mask = side
        # at least floor(tail_target * p + 0.5) long-tail items among the first p: a floor,
        # not a mix -- the ranker may still choose more of them
        if tail_target is not None and math.floor(tail_target * (len(chosen) + 1) + 0.5) > n_tail:
            side = mask & tail
            if side.any():
                mask = side
        exposed = cost is not None and len(chosen) >= params.exposure_free_top
        now = rel - cost if exposed and cost is not None else rel
        if use_mmr:
            value = lam * now - (1.0 - lam) * max_sim
            j = int(np.argmax(np.where(mask, value, -np.inf)))
        elif exposed:
            j = int(np.argmax(np.where(mask, now, -np.inf)))  # ties: the more relevant
        else:
            j = int(np.argmax(mask))  # candidates are in (penalised) relevance order
        chosen.append(j)
        eligible[j] = False
        n_oon += int(not net[j])
        n_tail += int(tail[j])
        if use_mmr:
            np.maximum(max_sim, sim[j], out=max_sim)
        if codes is not None and codes[j] >= 0:
            c = int(codes[j])
            author_count[c] = author_count.get(c, 0) + 1
            if author_count[c] >= cap:  # type: ignore[operator]
                eligible &= codes != c
    idx = np.asarray(chosen, dtype=np.int64)
    shown = np.minimum.accumulate(scores[idx]).astype(np.float32)
    return items[idx], shown


# ---------------------------------------------------------------------------------------------
# random inputs


def _scores(rng: np.random.Generator, m: int, kind: str) -> np.ndarray:
    if kind == "normal":
        return rng.normal(size=m)
    if kind == "ties":  # few distinct values: ties broken by item index
        return rng.integers(0, 4, size=m).astype(np.float64)
    if kind == "equal":  # max == min: relevance is all ones
        return np.full(m, 0.3)
    if kind == "near":  # distinct scores whose min-max relevance may round to equal values
        return 1e8 + rng.integers(0, 6, size=m) * 1.5e-8
    return rng.normal(scale=1e4, size=m) - 5e3  # "wide"


def _content(rng: np.random.Generator, n: int) -> sp.csr_matrix:
    """L2-normalised non-negative rows like `diversity_vectors`: some zero rows, some copies."""
    d = int(rng.integers(1, 7))
    dense = (rng.random((n, d)) < 0.4) * rng.integers(1, 3, size=(n, d))
    copies = rng.random(n) < 0.2
    dense[copies] = dense[0]
    return normalize(sp.csr_matrix(dense.astype(np.float32))).astype(np.float32).tocsr()


def _signals(rng: np.random.Generator, n: int, cand: np.ndarray, present: dict[str, bool]) -> dict:
    m = len(cand)
    out: dict = {}
    if present["content"]:
        out["content"] = _content(rng, n)
    if present["author"]:
        out["author"] = rng.integers(-1, int(rng.integers(1, 6)), size=n)
    if present["in_network"]:
        out["in_network"] = rng.random(m) < rng.random()
    if present["popularity"]:
        pop = rng.random(n)
        pop[rng.random(n) < 0.3] = 0.0
        out["popularity"] = pop
    if present["long_tail"]:
        out["long_tail"] = rng.random(n) < rng.random()
    if present["exposure"]:
        shown = rng.integers(0, 5, size=m).astype(np.float64) * rng.random()
        shown[rng.random(m) < 0.1] = -1.0  # clamped at zero
        out["exposure"] = shown
    return out


def _assert_same(args: tuple, params: RerankParams, signals: dict) -> None:
    want_items, want_shown = _reference_rerank(*args, params, **signals)
    got_items, got_shown = rerank(*args, params, **signals)
    assert got_items.dtype == want_items.dtype == np.int64
    assert got_shown.dtype == want_shown.dtype == np.float32
    assert got_items.tolist() == want_items.tolist(), params
    assert got_shown.tobytes() == want_shown.tobytes(), params


_SIGNALS = ("content", "author", "in_network", "popularity", "long_tail", "exposure")
_maybe_share = st.one_of(st.none(), st.sampled_from([0.0, 0.2, 0.5, 1.0]), st.floats(0.0, 1.0))


@st.composite
def _params(draw: st.DrawFn) -> RerankParams:
    return RerankParams(
        mmr_lambda=draw(st.one_of(st.sampled_from([1.0, 0.85, 0.5, 0.0]), st.floats(0.0, 1.0))),
        oon_target=draw(_maybe_share),
        author_cap=draw(st.one_of(st.none(), st.integers(1, 4))),
        pool=draw(st.integers(1, 70)),
        popularity_penalty=draw(st.one_of(st.just(0.0), st.floats(0.0, 5.0))),
        tail_target=draw(_maybe_share),
        oon_boost=draw(st.one_of(st.just(0.0), st.floats(0.0, 2.0))),
        exposure_penalty=draw(st.one_of(st.just(0.0), st.floats(0.0, 3.0))),
        exposure_free_top=draw(st.integers(0, 6)),
    )


@settings(
    max_examples=400,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    derandomize=True,
)
@given(
    params=_params(),
    seed=st.integers(0, 2**32 - 1),
    m=st.integers(0, 60),
    k=st.integers(-1, 70),
    kind=st.sampled_from(["normal", "ties", "equal", "near", "wide"]),
    present=st.fixed_dictionaries({name: st.booleans() for name in _SIGNALS}),
    duplicates=st.booleans(),
)
def test_steps_equal_the_reference_on_random_inputs(
    params: RerankParams,
    seed: int,
    m: int,
    k: int,
    kind: str,
    present: dict[str, bool],
    duplicates: bool,
) -> None:
    rng = np.random.default_rng(seed)
    n = m + int(rng.integers(1, 30))
    # duplicates: the same item twice among the candidates, still the reference's answer
    cand = rng.integers(0, n, size=m) if duplicates else rng.permutation(n)[:m]
    scores = _scores(rng, m, kind)
    _assert_same((cand, scores, k), params, _signals(rng, n, cand, present))


def test_steps_equal_the_reference_for_every_knob_combination() -> None:
    grid = itertools.product(
        [1.0, 0.6, 0.0],  # mmr_lambda
        [None, 0.0, 0.4, 1.0],  # oon_target
        [None, 1, 2],  # author_cap
        [0.0, 0.5],  # popularity_penalty
        [None, 0.3],  # tail_target
        [0.0, 0.2],  # oon_boost
        [(0.0, 0), (0.4, 0), (0.4, 2)],  # exposure_penalty, exposure_free_top
    )
    present = dict.fromkeys(_SIGNALS, True)
    cases = []
    for seed, kind in ((1, "normal"), (2, "ties")):
        rng = np.random.default_rng(seed)
        cand = rng.permutation(60)[:40]
        cases.append(((cand, _scores(rng, 40, kind), 12), _signals(rng, 60, cand, present)))
    n = 0
    for lam, target, cap, pop, tail, boost, (expo, free) in grid:
        params = RerankParams(
            mmr_lambda=lam,
            oon_target=target,
            author_cap=cap,
            pool=30,
            popularity_penalty=pop,
            tail_target=tail,
            oon_boost=boost,
            exposure_penalty=expo,
            exposure_free_top=free,
        )
        for args, signals in cases:
            _assert_same(args, params, signals)
            n += 1
    assert n == 3 * 4 * 3 * 2 * 2 * 2 * 3 * 2


def test_steps_equal_the_reference_with_the_default_config() -> None:
    params = RerankParams()
    present = dict.fromkeys(_SIGNALS, True)
    for seed in range(20):
        rng = np.random.default_rng(seed)
        cand = rng.permutation(300)[:150]
        signals = _signals(rng, 300, cand, present)
        for k in (1, 10, 50, 150):
            _assert_same((cand, rng.normal(size=150), k), params, signals)


@pytest.mark.filterwarnings("ignore:invalid value:RuntimeWarning")
def test_steps_equal_the_reference_on_non_finite_scores() -> None:
    cand = np.arange(8)
    pop = np.linspace(0.0, 1.0, 8)
    for scores in (
        np.array([np.inf, 1, 0, 2, 0.5, 3, 1, 0]),
        np.array([-np.inf, 1, 0, 2, 0.5, 3, 1, 0]),
        np.array([np.nan, 1, 0, 2, 0.5, 3, 1, 0]),
    ):
        for penalty, lam in itertools.product((0.0, 0.3), (1.0, 0.5)):
            params = RerankParams(mmr_lambda=lam, author_cap=None, popularity_penalty=penalty)
            signals = {"popularity": pop, "content": _content(np.random.default_rng(0), 8)}
            _assert_same((cand, scores, 5), params, signals)


# ---------------------------------------------------------------------------------------------
# the composition and the config


def test_the_relevance_steps_add_up_in_the_configs_order() -> None:
    # 1 - 0.5 x 0.3 and 0.9 + 0.3 - 0.5 x 0.7 tie at 0.85 (item 0 first) when the boost comes
    # first; the penalty first rounds item 1 to 0.8500000000000001 (item 1 first)
    cand = np.arange(4)
    scores = np.array([1.0, 0.9, 0.54, 0.0])
    signals = {
        "popularity": np.array([0.3, 0.7, 0.5, 0.1]),
        "in_network": np.array([True, False, True, False]),
    }
    params = RerankParams(mmr_lambda=1.0, author_cap=None, oon_boost=0.3, popularity_penalty=0.5)
    assert params.active_steps() == ("oon-boost", "popularity-penalty")
    assert rerank(cand, scores, 2, params, **signals)[0].tolist() == [0, 1]
    _assert_same((cand, scores, 2), params, signals)
    swapped = params.model_copy(update={"steps": ("popularity-penalty", "oon-boost")})
    assert rerank(cand, scores, 2, swapped, **signals)[0].tolist() == [1, 0]


def test_the_targets_act_in_the_configs_order() -> None:
    # one slot, both targets due: the first listed picks its side
    cand = np.arange(4)
    scores = np.array([4.0, 3.0, 2.0, 1.0])
    signals = {
        "in_network": np.array([True, True, False, True]),
        "long_tail": np.array([False, False, False, True]),
    }
    params = RerankParams(mmr_lambda=1.0, author_cap=None, oon_target=1.0, tail_target=1.0)
    assert rerank(cand, scores, 1, params, **signals)[0].tolist() == [2]  # out of network first
    tail_first = params.model_copy(update={"steps": ("tail-quota", "oon-target")})
    assert rerank(cand, scores, 1, tail_first, **signals)[0].tolist() == [3]


def test_the_config_chooses_the_steps_from_its_knobs() -> None:
    assert RerankParams().active_steps() == ("author-cap", "mmr")
    assert RerankParams(mmr_lambda=1.0, author_cap=None).active_steps() == ()
    every = RerankParams(
        oon_target=0.3,
        tail_target=0.0,
        popularity_penalty=0.1,
        oon_boost=0.1,
        exposure_penalty=0.1,
    )
    assert every.active_steps() == RERANK_STEPS
    reranker = Reranker.from_params(every)
    assert reranker.relevance == (OutOfNetworkBoost(0.1), PopularityPenalty(0.1))
    assert reranker.constraints == (AuthorCap(3),)
    assert reranker.targets == (OutOfNetworkTarget(0.3), LongTailQuota(0.0))
    assert reranker.costs == (ExposurePenalty(0.1, 0),)
    assert reranker.selector == MaximalMarginalRelevance(0.85)
    assert Reranker.from_params(RerankParams(mmr_lambda=1.0)).selector == TopRelevance()
    # a step listed with its knob off does nothing
    listed = RerankParams(mmr_lambda=1.0, author_cap=None, steps=RERANK_STEPS)
    assert listed.active_steps() == ()


def test_the_steps_list_is_validated_and_optional() -> None:
    with pytest.raises(ValidationError, match="leaves out"):
        RerankParams(steps=("mmr",))  # the author cap is on by default
    with pytest.raises(ValidationError, match="twice"):
        RerankParams(steps=("mmr", "author-cap", "mmr"))
    with pytest.raises(ValidationError):
        RerankParams(steps=("mmr", "author-cap", "shuffle"))
    # configs and artifacts saved before `steps` existed load unchanged
    saved = RerankParams().model_dump(mode="json")
    del saved["steps"]
    assert RerankParams.model_validate(saved) == RerankParams()
    ordered = RerankParams(steps=("author-cap", "mmr"))
    assert RerankParams.model_validate(ordered.model_dump(mode="json")) == ordered
    cfg = PipelineConfig.model_validate({"rerank.steps": ["mmr", "author-cap"]})
    assert cfg.rerank.active_steps() == ("mmr", "author-cap")


def test_a_step_of_ones_own_composes_by_its_method() -> None:
    @dataclass(frozen=True)
    class EvenItemsOnly:
        def allowed(self, slate: Slate) -> np.ndarray:
            return slate.pool.items % 2 == 0

    reranker = Reranker.of([EvenItemsOnly(), OutOfNetworkTarget(0.5)])
    assert reranker.constraints == (EvenItemsOnly(),)
    assert reranker.targets == (OutOfNetworkTarget(0.5),)
    cand = np.arange(10)
    out, shown = reranker(_pool(-cand, in_network=cand < 6), 4)
    assert out.tolist() == [6, 0, 8, 2]  # even items, every other one out of network
    assert shown.tolist() == [-6.0, -6.0, -8.0, -8.0]  # a running minimum of the scores


# ---------------------------------------------------------------------------------------------
# each step


def _pool(scores, **signals) -> Pool:
    scores = np.asarray(scores, np.float64)
    return Pool.top(np.arange(len(scores)), scores, len(scores), **signals)


def test_pool_takes_the_best_by_score_and_scales_relevance() -> None:
    items = np.array([7, 3, 5, 1, 9])
    scores = np.array([0.5, 2.0, 0.5, -1.0, 1.0])
    pool = Pool.top(
        items,
        scores,
        4,
        author=np.arange(10) * 10,
        in_network=np.array([True, False, True, False, True]),
    )
    assert pool.items.tolist() == [3, 9, 5, 7]  # ties: the lower item index first
    np.testing.assert_allclose(pool.relevance, [1.0, 1 / 3, 0.0, 0.0])
    assert pool.author is not None and pool.author.tolist() == [30, 90, 50, 70]  # per item
    assert pool.in_network is not None  # per candidate: follows the candidate
    assert pool.in_network.tolist() == [False, True, True, True]
    assert _pool([2.0, 2.0, 2.0]).relevance.tolist() == [1.0, 1.0, 1.0]
    empty = Pool.top(np.zeros(0, np.int64), np.zeros(0), 5)
    out, shown = Reranker.of([AuthorCap(1)])(empty, 3)
    assert len(empty) == 0 and out.dtype == np.int64 and shown.dtype == np.float32
    assert len(out) == len(shown) == 0


def test_oon_boost_lifts_only_out_of_network_candidates() -> None:
    pool = _pool([1.0, 0.5, 0.0], in_network=np.array([True, False, False]))
    np.testing.assert_allclose(OutOfNetworkBoost(0.2).adjust(pool), [1.0, 0.7, 0.2])
    assert OutOfNetworkBoost(0.2).adjust(_pool([1.0, 0.0])) is None  # no network flags


def test_popularity_penalty_lowers_relevance_by_popularity() -> None:
    pool = _pool([1.0, 0.5, 0.0], popularity=np.array([1.0, 0.0, 0.5]))
    np.testing.assert_allclose(PopularityPenalty(0.4).adjust(pool), [0.6, 0.5, -0.2])
    assert PopularityPenalty(0.4).adjust(_pool([1.0, 0.0])) is None


@settings(max_examples=60, deadline=None, derandomize=True)
@given(
    authors=st.lists(st.integers(-1, 3), min_size=1, max_size=40),
    cap=st.integers(1, 4),
    k=st.integers(1, 45),
)
def test_author_cap_never_lets_more_than_cap_items_of_one_author_in(
    authors: list[int], cap: int, k: int
) -> None:
    codes = np.asarray(authors)
    cand = np.arange(len(codes))
    out, _ = Reranker.of([AuthorCap(cap)])(_pool(-cand, author=codes), k)
    counts = np.bincount(codes[out][codes[out] >= 0], minlength=4)
    assert counts.max(initial=0) <= cap
    # the list stops only when every author left is full: unknown authors are never capped
    room = sum(min(cap, int(n)) for n in np.bincount(codes[codes >= 0], minlength=4))
    assert len(out) == min(k, room + int((codes < 0).sum()))
    # greedy in score order: within the cap, the list is the candidates in order
    expected = [i for i in cand if codes[i] < 0 or (codes[:i] == codes[i]).sum() < cap][:k]
    assert out.tolist() == expected


def test_author_cap_allows_everyone_until_an_author_is_full() -> None:
    pool = _pool([3.0, 2.0, 1.0, 0.0], author=np.array([0, 0, -1, 1]))
    slate = Slate(pool)
    assert AuthorCap(1).allowed(slate) is None  # None: every candidate may come
    slate.take(0)
    assert AuthorCap(1).allowed(slate).tolist() == [False, False, True, True]
    assert AuthorCap(2).allowed(slate) is None
    slate.take(1)
    assert AuthorCap(2).allowed(slate).tolist() == [False, False, True, True]
    assert AuthorCap(1).allowed(Slate(_pool([1.0]))) is None  # no authors: no cap


@settings(max_examples=60, deadline=None, derandomize=True)
@given(
    flags=st.lists(st.booleans(), min_size=1, max_size=40),
    share=st.floats(0.0, 1.0),
    k=st.integers(1, 40),
)
def test_oon_target_reaches_its_share_on_every_prefix_when_candidates_allow(
    flags: list[bool], share: float, k: int
) -> None:
    in_net = np.asarray(flags)
    cand = np.arange(len(in_net))
    out, _ = Reranker.of([OutOfNetworkTarget(share)])(_pool(-cand, in_network=in_net), k)
    assert len(out) == min(k, len(cand))  # a side running out never shortens the list
    n_oon, n_in = int((~in_net).sum()), int(in_net.sum())
    for p in range(1, len(out) + 1):
        due = math.floor(share * p + 0.5)
        got = int((~in_net[out[:p]]).sum())
        if due <= n_oon and p - due <= n_in:  # both sides can give what the prefix asks
            assert got == due
        else:  # one side ran out: the other fills, taking all the short side has
            assert got == n_oon or p - got == n_in


def test_oon_target_falls_back_to_what_it_was_given() -> None:
    pool = _pool([2.0, 1.0, 0.0], in_network=np.array([True, True, False]))
    slate = Slate(pool)
    everyone = np.ones(3, bool)
    assert OutOfNetworkTarget(1.0).prefer(slate, everyone).tolist() == [False, False, True]
    assert OutOfNetworkTarget(0.0).prefer(slate, everyone).tolist() == [True, True, False]
    only_in = np.array([True, True, False])
    assert OutOfNetworkTarget(1.0).prefer(slate, only_in).tolist() == only_in.tolist()
    assert OutOfNetworkTarget(1.0).prefer(Slate(_pool([1.0])), everyone[:1]).tolist() == [True]


@settings(max_examples=60, deadline=None, derandomize=True)
@given(
    flags=st.lists(st.booleans(), min_size=1, max_size=40),
    share=st.floats(0.0, 1.0),
    k=st.integers(1, 40),
)
def test_long_tail_quota_is_a_floor_on_every_prefix(
    flags: list[bool], share: float, k: int
) -> None:
    tail = np.asarray(flags)
    cand = np.arange(len(tail))
    out, _ = Reranker.of([LongTailQuota(share)])(_pool(-cand, long_tail=tail), k)
    assert len(out) == min(k, len(cand))
    for p in range(1, len(out) + 1):
        assert tail[out[:p]].sum() >= min(math.floor(share * p + 0.5), int(tail.sum()))
    # a quota already met leaves the slot to every candidate
    slate = Slate(_pool(np.arange(len(tail), 0, -1), long_tail=tail))
    assert LongTailQuota(0.0).prefer(slate, np.ones(len(tail), bool)).all()


def test_exposure_penalty_spares_the_free_top_and_clamps_counts() -> None:
    pool = _pool([1.0, 0.5, 0.0], exposure=np.array([0.0, 3.0, -2.0]))
    slate = Slate(pool)
    step = ExposurePenalty(0.5, free_top=1)
    assert step.cost(slate) is None  # position 0 is free
    slate.take(0)
    np.testing.assert_allclose(step.cost(slate), [0.0, 0.5 * np.log(4.0), 0.0])
    assert ExposurePenalty(0.5).cost(Slate(_pool([1.0]))) is None  # nothing counted


def test_top_relevance_takes_the_first_allowed_or_the_best_shifted() -> None:
    slate = Slate(_pool([3.0, 2.0, 1.0]))
    assert TopRelevance().pick(slate, np.array([False, True, True]), None) == 1
    shifted = np.array([0.1, 0.2, 0.9])
    assert TopRelevance().pick(slate, np.array([True, True, False]), shifted) == 1


def test_mmr_trades_relevance_for_diversity_below_lambda_one() -> None:
    # items 0 and 1 have the same content, item 2 another; item 1 is more relevant than item 2
    content = normalize(sp.csr_matrix(np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]])))
    scores = np.array([1.0, 0.9, 0.5])
    relevant = Reranker.of([MaximalMarginalRelevance(1.0)])(_pool(scores, content=content), 2)
    assert relevant[0].tolist() == [0, 1]
    diverse = Reranker.of([MaximalMarginalRelevance(0.5)])(_pool(scores, content=content), 2)
    assert diverse[0].tolist() == [0, 2]  # 0.5 x 0.2 - 0 beats 0.5 x 0.8 - 0.5 x 1
    assert diverse[1].dtype == np.float32 and diverse[1].tolist() == [1.0, 0.5]
    # without content vectors there is no similarity: the relevance order
    blind = Reranker.of([MaximalMarginalRelevance(0.5)])(_pool(scores), 2)
    assert blind[0].tolist() == [0, 1]


def test_slate_summaries_started_late_match_those_kept_from_the_start() -> None:
    rng = np.random.default_rng(3)
    pool = _pool(rng.normal(size=30), author=rng.integers(-1, 4, 30), content=_content(rng, 30))
    early, late, mixed = Slate(pool), Slate(pool), Slate(pool)
    early.redundancy()
    early.author_counts()
    for n, j in enumerate(rng.permutation(30)[:8].tolist()):
        if n == 3:  # one summary kept from the fourth pick, the other started after the last
            mixed.author_counts()
        for slate in (early, late, mixed):
            slate.take(j)
    for slate in (late, mixed):
        assert slate.redundancy().tobytes() == early.redundancy().tobytes()
        assert slate.author_counts().tolist() == early.author_counts().tolist()
    assert early.count(np.ones(30, bool)) == len(early) == 8
    codes = pool.author
    assert codes is not None
    chosen = codes[early.chosen]
    want = [int((chosen == c).sum()) if c >= 0 else 0 for c in codes]
    assert early.author_counts().tolist() == want
    np.testing.assert_allclose(early.redundancy(), pool.similarity[early.chosen].max(axis=0))
