"""Never below its best source: the fit-time check and the orders a fallback serves."""

from __future__ import annotations

import copy
import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from serendip.data.dataset import Dataset
from serendip.models.base import Recommender
from serendip.pipeline.candidates import CandidateFrame
from serendip.pipeline.fallback import (
    COLD,
    FOLD_IN,
    KNOWN,
    MIN_USERS,
    POPULARITY,
    RANKER,
    FallbackReport,
    SegmentChoice,
    choose,
    order_scores,
    segment_of,
    top_k_from_frame,
)
from serendip.pipeline.recommender import PipelineRecommender

QUICK = dict(PipelineRecommender.quick_params)
#: Pure relevance at re-ranking, so a served list shows the order the ranking chose.
NEUTRAL = {"rerank": {"pool": 40, "mmr_lambda": 1.0, "author_cap": None}}


# ------------------------------------------------------------------------------ the rule
def test_the_rule_keeps_the_ranker_unless_beaten_beyond_the_noise() -> None:
    rng = np.random.default_rng(0)
    base = rng.random(200)
    # a source clearly ahead: it replaces the ranker
    c = choose({RANKER: base, "trending": base + 0.2, "popularity": base - 0.1})
    assert c.choice == "trending" and c.best_alternative == "trending" and not c.tied
    assert c.n_users == 200 and c.ndcg["trending"] == pytest.approx(base.mean() + 0.2)
    # ahead by less than 1% of its mean: a tie, the ranker stays
    c = choose({RANKER: base, "trending": base * 1.005})
    assert c.choice == RANKER and c.tied
    # ahead on the mean but within 2 standard errors of a noisy paired difference: a tie
    noise = rng.normal(0.0, 0.5, 200)
    noise -= noise.mean()
    c = choose({RANKER: base, "trending": base + 0.02 + noise})
    assert c.choice == RANKER and c.tied
    # the ranker ahead
    c = choose({RANKER: base + 0.1, "trending": base})
    assert c.choice == RANKER and not c.tied
    # too few users to tell
    few = base[: MIN_USERS - 1]
    assert choose({RANKER: few, "trending": few + 0.5}).choice == RANKER


def test_segments_of_requests() -> None:
    from serendip.pipeline.candidates import UserContext

    hist = np.array([3, 1], np.int64)
    z = np.zeros(0, np.int64)

    def ctx(idx: int, history: np.ndarray) -> UserContext:
        return UserContext("u", idx, history, np.zeros(len(history)), np.zeros(len(history)), z)

    assert segment_of(ctx(4, hist)) == KNOWN
    assert segment_of(ctx(-1, hist)) == FOLD_IN
    assert segment_of(ctx(-1, z)) == COLD
    assert segment_of(ctx(4, z)) == COLD


def test_orders_follow_the_source_then_the_ranker() -> None:
    # one user, five candidates; source "a" proposed items 7 (rank 1) and 2 (rank 2)
    nan = np.nan
    frame = CandidateFrame(
        row=np.zeros(5, np.int64),
        item=np.array([2, 5, 7, 9, 4], np.int64),
        sources=("a", "b"),
        score=np.zeros((5, 2), np.float32),
        rank=np.array([[2, 1], [nan, 2], [1, nan], [nan, 3], [nan, nan]], np.float32),
    )
    ranker = np.array([0.1, 0.9, 0.2, 0.5, 0.7], np.float32)
    popularity = np.zeros(10)
    popularity[[4, 9]] = [5, 50]

    def order(method: str) -> list[int]:
        return top_k_from_frame(frame, order_scores(frame, method, ranker, popularity), 1, 5)[
            0
        ].tolist()

    assert order(RANKER) == [5, 4, 9, 7, 2]
    assert order("a") == [7, 2, 5, 4, 9]  # its proposals first, the rest by the ranker
    assert order("b") == [2, 5, 9, 4, 7]
    assert order(POPULARITY) == [9, 4, 5, 7, 2]  # equal popularity: by the ranker
    assert top_k_from_frame(frame, ranker, 2, 3)[1].tolist() == [-1, -1, -1]


def test_validation_scores_every_order_over_the_full_truth() -> None:
    import scipy.sparse as sp

    from serendip.pipeline.fallback import validation_ndcg

    nan = np.nan
    # two users; source "a" proposes item 3 to user 0 only, source "b" proposes nothing
    frame = CandidateFrame(
        row=np.array([0, 0, 1], np.int64),
        item=np.array([3, 5, 4], np.int64),
        sources=("a", "b"),
        score=np.zeros((3, 2), np.float32),
        rank=np.array([[1, nan], [nan, nan], [nan, nan]], np.float32),
    )
    truth = sp.csr_matrix(np.array([[0, 0, 0, 1, 0, 0], [0, 1, 0, 0, 0, 0]]))
    per = validation_ndcg(
        lambda contexts: frame,
        lambda f, contexts, owners: np.array([0.0, 1.0, 1.0], np.float32),
        [object(), object()],  # type: ignore[list-item]
        np.array([0, 1]),
        truth,
        np.zeros(6),
        k=1,
    )
    assert set(per) == {RANKER, "a", POPULARITY}  # "b" proposed nothing: left out
    np.testing.assert_allclose(per[RANKER], [0.0, 0.0])  # item 5 first; item 1 never listed
    np.testing.assert_allclose(per["a"], [1.0, 0.0])


# ------------------------------------------------------------------------------ the fit
@pytest.fixture(scope="module")
def shuffled(tmp_path_factory: pytest.TempPathFactory) -> Dataset:
    """The `tiny` platform with its interaction times shuffled: time carries no signal."""
    from serendip.data.loaders import load_files
    from serendip.data.synthetic import generate_platform

    out = generate_platform("tiny", seed=0, out=tmp_path_factory.mktemp("tiny") / "platform")
    ds = load_files(
        out / "interactions.parquet",
        items=out / "items.parquet",
        users=out / "users.parquet",
        social=out / "social.parquet",
    )
    it = ds.interactions
    times = np.random.default_rng(0).permutation(it.timestamp)
    return ds.with_interactions(replace(it, timestamp=times))


@pytest.fixture(scope="module")
def helpless(shuffled: Dataset) -> PipelineRecommender:
    """A pipeline whose ranker cannot learn anything (no leaf may hold its few rows, so every
    tree is a constant): it orders candidates by item index."""
    ranker = {**QUICK["ranker"], "min_child_samples": 10**6}
    return PipelineRecommender({**QUICK, **NEUTRAL, "ranker": ranker}).fit(shuffled)


def _follows(model: PipelineRecommender, user: str, source: str, **context: list[str]) -> bool:
    """The user's served top 10 is the source's own order (less what the rules drop); False
    when the source proposes nothing the rules allow (nothing to compare)."""
    ctx = model.user_contexts([user], context=context or None)[0]
    proposal = model.stage_.sources[source].propose_batch([ctx], model.stage_.quotas[source])[0]
    allowed = proposal.items[model._rules_allow(proposal.items, ctx, None, True)][:10]
    served = model.recommend_contexts([ctx], 10)[0].items
    np.testing.assert_array_equal(served[: len(allowed)], allowed)
    return len(allowed) > 0


def test_the_fallback_takes_over_when_the_ranker_cannot_help(
    helpless: PipelineRecommender,
) -> None:
    report = helpless.fallback
    assert report is not None and report.carve == "temporal" and report.active
    known = report.segments[KNOWN]
    assert known.choice not in (RANKER, None) and known.choice == known.best_alternative
    assert known.ndcg[known.choice] > known.ndcg[RANKER] and not known.tied
    assert known.n_users >= MIN_USERS
    assert {RANKER, POPULARITY} < set(known.ndcg) <= {RANKER, POPULARITY, *helpless.stage_.quotas}
    # the known users are served the chosen source's order, through the rules
    compared = [_follows(helpless, str(user), known.choice) for user in helpless.users_.ids[:40]]
    assert sum(compared) >= 5


def test_a_working_ranker_keeps_known_users_on_shuffled_times(shuffled: Dataset) -> None:
    model = PipelineRecommender(QUICK).fit(shuffled)
    report = model.fallback
    assert report is not None and set(report.segments) >= {KNOWN, FOLD_IN}
    for seg in report.segments.values():  # whatever it chose, it chose by the rule
        assert seg.choice == RANKER or seg.ndcg[seg.choice] > seg.ndcg[RANKER]
    off = PipelineRecommender({**QUICK, "fallback": {"enabled": False}}).fit(shuffled)
    assert off.fallback is None


def test_new_and_cold_users_are_served_their_segments_choice(
    helpless: PipelineRecommender,
) -> None:
    model = copy.copy(helpless)
    model.report_ = copy.copy(helpless.report_)
    forced = {
        FOLD_IN: SegmentChoice("trending", {}, 50, "trending", False),
        COLD: SegmentChoice(POPULARITY, {}, 50, POPULARITY, False),
    }
    model.report_.fallback = FallbackReport("temporal", 10, forced)
    history = [str(x) for x in model.items_.ids[:5]]
    assert _follows(model, "stranger", "trending", stranger=history)
    # the cold-start path: the most popular of its candidates, through the rules
    ctx = model.user_contexts(["newcomer"])[0]
    frame = model.stage_.frame([ctx])
    ok = frame.item[model._rules_allow(frame.item, ctx, None, True)]
    served = model.recommend_contexts([ctx], 10)[0].items
    pop = model.popularity_
    np.testing.assert_array_equal(np.sort(pop[served])[::-1], pop[served])
    np.testing.assert_array_equal(pop[served], np.sort(pop[ok])[::-1][:10])
    # a known user keeps the fitted choice (the known segment was not forced away)
    assert model.fallback is not None and model.fallback.choice(KNOWN) == RANKER


def test_the_manifest_records_it_and_old_artifacts_still_load(
    helpless: PipelineRecommender, tmp_path: Path
) -> None:
    out = Path(helpless.save(tmp_path / "m"))
    manifest = json.loads((out / "manifest.json").read_text())
    saved = manifest["meta"]["fallback"]
    known = helpless.fallback.segments[KNOWN]  # type: ignore[union-attr]
    assert saved["segments"][KNOWN]["choice"] == known.choice
    assert saved["segments"][KNOWN]["ndcg"][RANKER] == pytest.approx(known.ndcg[RANKER])
    assert saved["carve"] == "temporal" and "beyond the noise" in saved["rule"]
    users = [str(u) for u in helpless.users_.ids[:10]]
    loaded = Recommender.load(out)
    assert isinstance(loaded, PipelineRecommender)
    assert loaded.fallback == helpless.fallback
    np.testing.assert_array_equal(
        loaded.recommend(users, 10).items, helpless.recommend(users, 10).items
    )
    # an artifact written before the check: no entry, the ranker serves everyone
    del manifest["meta"]["fallback"]
    (out / "manifest.json").write_text(json.dumps(manifest))
    old = Recommender.load(out)
    assert isinstance(old, PipelineRecommender) and old.fallback is None
    assert (old.recommend(users, 10).items >= 0).all()


def test_a_served_order_set_by_tuning_overrides_the_rule_for_users_with_a_history(
    shuffled: Dataset,
) -> None:
    from serendip.errors import ConfigError

    model = PipelineRecommender({**QUICK, **NEUTRAL, "fallback": {"serve": "collaborative"}}).fit(
        shuffled
    )
    report = model.fallback
    assert report is not None
    for name in (KNOWN, FOLD_IN):
        seg = report.segments[name]
        assert seg.choice == "collaborative" and seg.forced
        assert RANKER in seg.ndcg  # the check still ran and is reported
    cold = report.segments.get(COLD)
    assert cold is None or not cold.forced  # no history: the rule decides
    compared = [_follows(model, str(user), "collaborative") for user in model.users_.ids[:40]]
    assert sum(compared) >= 5
    assert FallbackReport.from_dict(report.to_dict()) == report  # survives the manifest
    with pytest.raises(ConfigError, match=r"fallback.serve 'nope' is not a running source"):
        PipelineRecommender({**QUICK, "fallback": {"serve": "nope"}})
    with pytest.raises(ConfigError, match=r"needs fallback.enabled"):
        PipelineRecommender({**QUICK, "fallback": {"serve": "trending", "enabled": False}})
