"""Re-ranking as composed steps: the composition is the pre-refactor `rerank` to the bit.

`_reference_rerank` is the one-function `rerank` as it was before it became steps (commit
047e8dd), copied verbatim: for random candidates, scores (ties, near-ties, large magnitudes),
signals present or absent and every knob combination, `rerank` must return the same items in
the same order with the same displayed float32 scores.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sklearn.preprocessing import normalize

from serendip.pipeline.config import RerankParams
from serendip.pipeline.rerank import rerank


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
