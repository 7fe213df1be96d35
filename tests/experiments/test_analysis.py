from __future__ import annotations

import json

import numpy as np
import pytest

from serendip.errors import ConfigError
from serendip.experiments.analysis import analyze, analyze_interleaving, attribute
from serendip.experiments.assignment import assign
from serendip.experiments.interleaving import team_draft
from serendip.experiments.power import sample_size
from serendip.experiments.spec import parse_spec
from serendip.store.operations import Exposure
from serendip.store.types import Event

T0 = 1_700_000_000.0
DAY = 86400.0


def _exposure(
    i: int,
    user: str,
    items: tuple[str, ...],
    at: float,
    variant: str | None,
    teams: tuple[str, ...] = (),
) -> Exposure:
    return Exposure(i, f"r{i}", user, "home", items, None, "exp", variant, teams, at)


def _event(i: int, user: str, item: str, event: str, at: float) -> Event:
    return Event(f"e{i}", user, item, event, at, None, at)


def test_attribution_window_and_latest_exposure() -> None:
    xs = [
        _exposure(0, "u1", ("a", "b"), T0, "control"),
        _exposure(1, "u1", ("b",), T0 + 100, "control"),
        _exposure(2, "u2", ("a",), T0, "control"),
    ]
    evs = [
        _event(0, "u1", "b", "click", T0 + 150),  # latest exposure showing b: 1
        _event(1, "u1", "a", "click", T0 + 50),  # exposure 0
        _event(2, "u1", "a", "click", T0 + DAY + 1),  # outside the window
        _event(3, "u2", "b", "click", T0 + 10),  # b was never shown to u2
        _event(4, "u2", "a", "click", T0 - 10),  # before the exposure
        _event(5, "u2", "a", "like", T0 + DAY),  # exactly at the window's end counts
    ]
    assert attribute(xs, evs, DAY).exposure.tolist() == [1, 0, -1, -1, -1, 2]


def _simulated(
    n_users: int, rates: dict[str, float], seed: int, days: int = 4, pre: bool = False
) -> tuple[list[Exposure], list[Event], list[Event]]:
    """Users assigned by `assign`, one exposure of 3 items per day; each user clicks with their
    own propensity times the variant's rate multiplier. Pre-period clicks share the propensity."""
    rng = np.random.default_rng(seed)
    variants = [(name, 1 / len(rates)) for name in rates]
    xs: list[Exposure] = []
    evs: list[Event] = []
    pre_evs: list[Event] = []
    for u in range(n_users):
        user = f"u{u}"
        v = assign(user, "salt", variants)
        propensity = rng.beta(1, 6)
        for d in range(days):
            at = T0 + d * DAY + rng.uniform(0, 3600)
            items = (f"i{d}a", f"i{d}b", f"i{d}c")
            xs.append(_exposure(len(xs), user, items, at, v))
            if rng.random() < propensity * rates[v]:
                evs.append(_event(len(evs), user, items[0], "click", at + 60))
            if rng.random() < 0.1:
                evs.append(_event(len(evs), user, items[1], "like", at + 90))
        if pre:
            for k in range(rng.poisson(propensity * 20)):
                pre_evs.append(_event(10_000_000 + len(pre_evs), user, f"p{k}", "click", T0 - DAY))
    return xs, evs, pre_evs


def test_analyze_detects_a_real_lift_and_reports_everything() -> None:
    spec = parse_spec(
        {"variants": [{"name": "control"}, {"name": "better"}], "guardrails": ["like"], "salt": "s"}
    )
    xs, evs, pre = _simulated(3000, {"control": 1.0, "better": 1.6}, seed=1, pre=True)
    report = analyze(spec, xs, evs, pre_events=pre, n_boot=500)
    control, better = report.variants
    assert control.users + better.users == 3000
    assert control.exposures == 4 * control.users
    assert control.comparison is None
    assert better.comparison is not None and better.comparison.lift > 0.2
    lo, hi = better.comparison.lift_ci
    assert lo < better.comparison.lift < hi
    assert better.comparison.p_value < 1e-4
    assert better.bootstrap_p_value is not None and better.bootstrap_p_value < 0.01
    assert better.significant
    assert report.decision.startswith("better beats control")
    assert not report.srm.mismatch
    assert report.guardrails[0].metric == "like" and not report.guardrails[0].violated
    assert report.cuped is not None and report.cuped.variance_reduction > 0.05
    assert better.cuped is not None and better.cuped.p_value < 1e-4
    assert report.looks == 4  # daily looks until the last data (3 days and some hours)
    json.dumps(report.to_dict(), allow_nan=False)


def test_cuped_narrows_the_interval() -> None:
    spec = parse_spec({"variants": [{"name": "a"}, {"name": "b"}], "salt": "s", "metric": "rate"})
    xs, evs, pre = _simulated(2000, {"a": 1.0, "b": 1.0}, seed=2, pre=True)
    report = analyze(spec, xs, evs, pre_events=pre, n_boot=200)
    b = report.variants[1]
    assert b.comparison is not None and b.cuped is not None
    raw = b.comparison.difference_ci[1] - b.comparison.difference_ci[0]
    adjusted = b.cuped.difference_ci[1] - b.cuped.difference_ci[0]
    assert report.cuped is not None
    assert adjusted < raw
    assert adjusted == pytest.approx(raw * np.sqrt(1 - report.cuped.variance_reduction), rel=0.05)


def test_no_difference_is_not_significant_and_srm_flags_a_broken_split() -> None:
    spec = parse_spec({"variants": [{"name": "a"}, {"name": "b"}], "salt": "s", "sequential": True})
    xs, evs, _ = _simulated(1500, {"a": 1.0, "b": 1.0}, seed=3)
    report = analyze(spec, xs, evs, n_boot=200)
    assert not report.variants[1].significant
    assert report.variants[1].sequential_p_value is not None
    assert report.decision.startswith("no significant difference")
    # drop most of b's users: the split no longer matches 50/50
    broken = [x for x in xs if x.variant == "a" or hash(x.user) % 4 == 0]
    report = analyze(spec, broken, evs, n_boot=200)
    assert report.srm.mismatch and report.decision.startswith("sample ratio mismatch")


def test_alpha_spending_judges_daily_looks_against_the_planned_size() -> None:
    base = {"variants": [{"name": "a"}, {"name": "b"}], "salt": "s", "sequential": True}
    with pytest.raises(ConfigError, match="planned size"):
        parse_spec({**base, "sequential_method": "alpha-spending"})
    spec = parse_spec({**base, "sequential_method": "alpha-spending", "planned_users": 3000})
    xs, evs, _ = _simulated(3000, {"a": 1.0, "b": 1.6}, seed=1)
    better = analyze(spec, xs, evs, n_boot=100).variants[1]
    assert better.significant and better.sequential_crossed_at is not None
    assert better.sequential_boundary is not None and better.sequential_boundary > 1.9
    xs, evs, _ = _simulated(1500, {"a": 1.0, "b": 1.0}, seed=3)
    same = analyze(spec, xs, evs, n_boot=100).variants[1]
    assert not same.significant and same.sequential_crossed_at is None
    # the calculator's size when no planned size is given
    sized = parse_spec(
        {
            **base,
            "sequential_method": "alpha-spending",
            "baseline_rate": 0.2,
            "min_detectable_lift": 0.1,
        }
    )
    assert sized.planned_total() == 2 * sample_size(0.2, 0.1)


def test_guardrail_violation_and_bookkeeping() -> None:
    spec = parse_spec(
        {
            "variants": [{"name": "a"}, {"name": "b"}],
            "salt": "s",
            "primary_metric": "like",
            "guardrails": ["click"],
        }
    )
    xs, evs, _ = _simulated(3000, {"a": 1.0, "b": 0.5}, seed=4)
    xs.append(_exposure(len(xs), "stray", ("z",), T0, "unknown-variant"))
    first_b = next(x for x in xs if x.variant == "b")
    xs.append(_exposure(len(xs), first_b.user, ("z",), T0, "a"))
    report = analyze(spec, xs, evs, n_boot=200)
    assert report.unassigned_exposures == 1 and report.mixed_users == 1
    assert report.guardrails[0].violated
    assert report.decision.startswith("guardrail violated: b click")


def test_empty_experiment() -> None:
    spec = parse_spec({"variants": [{"name": "a"}, {"name": "b"}], "salt": "s"})
    report = analyze(spec, [], [])
    assert [v.users for v in report.variants] == [0, 0]
    assert report.looks == 0
    json.dumps(report.to_dict(), allow_nan=False)


def test_analyze_interleaving_prefers_the_ranker_users_click() -> None:
    rng = np.random.default_rng(5)
    good = [f"g{i}" for i in range(10)]
    bad = [f"b{i}" for i in range(10)]
    xs: list[Exposure] = []
    evs: list[Event] = []
    for r in range(300):
        items, teams = team_draft(bad, good, 6, seed=f"req{r}")
        at = T0 + r
        xs.append(_exposure(r, f"u{r}", tuple(items), at, None, tuple(teams)))
        for item in items:
            if rng.random() < (0.3 if item.startswith("g") else 0.1):
                evs.append(_event(len(evs), f"u{r}", item, "click", at + 5))
    report = analyze_interleaving(xs, evs, DAY)
    assert report.exposures == 300
    assert report.wins_b > report.wins_a and report.preferred == "b"
    assert report.delta < 0 and report.p_value < 0.001
    assert report.wins_a + report.wins_b + report.ties == 300
    json.dumps(report.to_dict(), allow_nan=False)
