"""Analysis of a running or stopped experiment from its exposures and outcome events.

Attribution: an outcome event counts for an exposure when the exposed user acts on one of the
exposed items within `window_s` after the exposure (`0 <= event time - exposure time <=
window_s`); an event is attributed once, to the latest such exposure. Users are the unit: a
user's variant is the variant of their exposures (sticky assignment), and the per-user metric is
"conversion" (at least one attributed primary outcome) or "rate" (attributed primary outcomes
per exposure). `analyze` returns an `ExperimentReport`; `analyze_interleaving` an
`InterleavingReport`. Both are frozen dataclasses with `to_dict()` for JSON.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from serendip.experiments.interleaving import sign_test
from serendip.experiments.spec import ExperimentSpec
from serendip.experiments.stats import (
    Comparison,
    GroupSequential,
    SampleRatio,
    bootstrap_p_value,
    compare,
    cuped,
    group_sequential,
    look_correlation,
    mean_ci,
    msprt_p_values,
    sample_ratio,
)
from serendip.jsonsafe import jsonable
from serendip.store.operations import Exposure
from serendip.store.types import Event

__all__ = [
    "CupedSummary",
    "ExperimentReport",
    "GuardrailResult",
    "InterleavingReport",
    "VariantResult",
    "analyze",
    "analyze_interleaving",
    "attribute",
]

DAY_S = 86400.0
#: the mSPRT mixture's default standard deviation, relative to the pooled mean of the metric
DEFAULT_TAU_RELATIVE = 0.05


@dataclass(frozen=True, slots=True)
class VariantResult:
    """One variant. `comparison` (against the control; None for the control itself) carries
    the lift, its CI and the z-test p-value; `bootstrap_p_value` the per-user bootstrap's;
    `cuped` the CUPED-adjusted comparison (None without pre-period data);
    `sequential_p_value` the always-valid mSPRT p-value over daily looks; `sequential_boundary`
    (alpha spending only) the group-sequential test over the same looks: the critical |z| at
    the latest look and `sequential_crossed_at` the first look that crossed (None: none);
    `significant` follows the spec's sequential method when the spec is sequential, the
    z-test otherwise."""

    name: str
    users: int
    exposures: int
    outcomes: int
    rate: float
    rate_ci: tuple[float, float]
    comparison: Comparison | None
    bootstrap_p_value: float | None
    cuped: Comparison | None
    sequential_p_value: float | None
    significant: bool
    sequential_boundary: float | None = None
    sequential_crossed_at: int | None = None


@dataclass(frozen=True, slots=True)
class GuardrailResult:
    """A guardrail metric (conversion on `metric`) of one treatment against the control;
    `violated` when it moved in the `bad` direction with p < alpha."""

    metric: str
    bad: str
    variant: str
    control_rate: float
    rate: float
    lift: float
    p_value: float
    violated: bool


@dataclass(frozen=True, slots=True)
class CupedSummary:
    """The pre-period covariate (count of the primary metric's events per user before the
    experiment), theta and the variance reduction of the primary metric."""

    covariate: str
    theta: float
    variance_reduction: float


@dataclass(frozen=True, slots=True)
class ExperimentReport:
    """The analysis of an A/B experiment. `decision` is one line for people: a sample-ratio
    mismatch first (nothing else can be trusted then), then guardrail violations, then the
    significant winners or losers, else "no significant difference"."""

    primary_metric: str
    metric: str
    alpha: float
    sequential: bool
    control: str
    variants: tuple[VariantResult, ...]
    srm: SampleRatio
    guardrails: tuple[GuardrailResult, ...]
    cuped: CupedSummary | None
    looks: int
    start: float | None
    end: float | None
    unassigned_exposures: int
    mixed_users: int
    decision: str

    def to_dict(self) -> dict[str, object]:
        """Plain JSON values (non-finite floats become None)."""
        out: dict[str, object] = jsonable(self)
        return out


@dataclass(frozen=True, slots=True)
class InterleavingReport:
    """Team-draft interleaving: per exposure, the ranker whose items got more attributed
    `metric` events wins; ties (including no clicks) are excluded from the sign test.
    `delta` = (wins_a + ties / 2) / exposures - 1/2 (Chapelle et al. 2012): > 0 favours a."""

    rankers: tuple[str, str]
    metric: str
    exposures: int
    wins_a: int
    wins_b: int
    ties: int
    delta: float
    p_value: float
    preferred: str | None

    def to_dict(self) -> dict[str, object]:
        out: dict[str, object] = jsonable(self)
        return out


@dataclass(frozen=True, slots=True)
class Attribution:
    """Attributed outcomes: for event j of `events`, `exposure[j]` is the index into the
    exposures it is credited to, or -1."""

    exposure: np.ndarray


def attribute(
    exposures: Sequence[Exposure], events: Sequence[Event], window_s: float
) -> Attribution:
    """Credit each event to the latest exposure of the same user showing the same item at or
    before the event and at most `window_s` earlier (-1: not attributed). O(E log X)."""
    shown: dict[tuple[str, str], list[tuple[float, int]]] = defaultdict(list)
    for x, e in enumerate(exposures):
        for item in e.items:
            shown[(e.user, item)].append((e.at, x))
    for times in shown.values():
        times.sort()
    credited = np.full(len(events), -1, dtype=np.int64)
    for j, ev in enumerate(events):
        seen = shown.get((ev.user, ev.item))
        if not seen:
            continue
        k = _last_at_or_before(seen, ev.timestamp)
        if k >= 0 and ev.timestamp - seen[k][0] <= window_s:
            credited[j] = seen[k][1]
    return Attribution(credited)


def _last_at_or_before(times: list[tuple[float, int]], t: float) -> int:
    lo, hi = 0, len(times)
    while lo < hi:
        mid = (lo + hi) // 2
        if times[mid][0] <= t:
            lo = mid + 1
        else:
            hi = mid
    return lo - 1


def analyze(
    spec: ExperimentSpec,
    exposures: Sequence[Exposure],
    events: Sequence[Event],
    *,
    pre_events: Sequence[Event] = (),
    n_boot: int = 2000,
) -> ExperimentReport:
    """Analyse an A/B experiment: per variant users, exposures, attributed outcomes, the
    per-user rate with its 95% CI, and against the control (the spec's first variant) the
    relative lift with its CI, z-test and bootstrap p-values, the CUPED-adjusted comparison
    (when `pre_events`, the users' activity before the experiment, are given), the always-valid
    sequential p-value over daily looks since the first exposure; plus the sample-ratio check
    and the guardrails.

    Exposures whose variant is not one of the spec's are counted in `unassigned_exposures` and
    ignored; a user seen in several variants (`mixed_users`) is kept in the first one.

    >>> report = analyze(spec, store.exposures.between(t0, experiment="exp1"),
    ...                  store.events.between(t0))  # doctest: +SKIP
    """
    names = [v.name for v in spec.variants]
    index = {n: i for i, n in enumerate(names)}
    kept = [e for e in exposures if e.variant in index]
    unassigned = len(exposures) - len(kept)
    users: dict[str, int] = {}
    variant_of: list[int] = []
    mixed: set[str] = set()
    for e in kept:
        u = users.get(e.user)
        if u is None:
            users[e.user] = len(variant_of)
            variant_of.append(index[str(e.variant)])
        elif variant_of[u] != index[str(e.variant)]:
            mixed.add(e.user)
    n_users = len(variant_of)
    arm = np.asarray(variant_of, dtype=np.int64)
    exp_user = np.asarray([users[e.user] for e in kept], dtype=np.int64)
    exp_at = np.asarray([e.at for e in kept], dtype=np.float64)

    credited = attribute(kept, events, spec.window_s).exposure
    hit = credited >= 0
    ev_user = exp_user[credited[hit]] if hit.any() else np.zeros(0, np.int64)
    ev_at = np.asarray([ev.timestamp for ev in events], dtype=np.float64)[hit]
    ev_type = np.asarray([ev.event for ev in events], dtype=object)[hit]

    def per_user(metric: str, until: float = math.inf) -> tuple[np.ndarray, np.ndarray]:
        """(values per user, present mask) at time `until`."""
        seen = exp_at < until
        n_exp = np.bincount(exp_user[seen], minlength=n_users).astype(np.float64)
        m = (ev_type == metric) & (ev_at < until)
        n_out = np.bincount(ev_user[m], minlength=n_users).astype(np.float64)
        present = n_exp > 0
        if spec.metric == "conversion":
            values = (n_out > 0).astype(np.float64)
        else:
            values = np.divide(n_out, n_exp, out=np.zeros(n_users), where=present)
        return values, present

    primary, _ = per_user(spec.primary_metric)
    covariate = None
    cuped_summary = None
    if pre_events:
        counts: dict[str, int] = defaultdict(int)
        for ev in pre_events:
            if ev.event == spec.primary_metric:
                counts[ev.user] += 1
        covariate = np.zeros(n_users)
        for user, u in users.items():
            covariate[u] = counts.get(user, 0)
        adj = cuped(primary, covariate)
        cuped_summary = CupedSummary(
            f"pre-period {spec.primary_metric} events per user", adj.theta, adj.variance_reduction
        )
        adjusted = adj.adjusted

    start = float(exp_at.min()) if len(exp_at) else None
    end = (
        float(max(exp_at.max(), ev_at.max() if len(ev_at) else -math.inf)) if len(exp_at) else None
    )
    looks = _look_times(start, end)
    seq, spending = _sequential(spec, per_user, arm, looks)

    results = []
    gs: GroupSequential | None = None
    control_values = primary[arm == 0]
    for i, name in enumerate(names):
        mine = arm == i
        values = primary[mine]
        n_out = int(
            np.count_nonzero(ev_type[np.isin(ev_user, np.flatnonzero(mine))] == spec.primary_metric)
        )
        comparison = boot = cuped_cmp = seq_p = None
        significant = False
        if i > 0:
            comparison = compare(control_values, values, alpha=spec.alpha)
            boot = bootstrap_p_value(
                control_values, values, n_boot=n_boot, seed=_seed(spec.salt, i)
            )
            if covariate is not None:
                cuped_cmp = compare(adjusted[arm == 0], adjusted[mine], alpha=spec.alpha)
            seq_p = seq.get(i)
            gs = spending.get(i)
            if spec.sequential and spec.sequential_method == "alpha-spending":
                significant = gs is not None and gs.rejected
            else:
                judged = seq_p if spec.sequential else comparison.p_value
                significant = judged is not None and judged < spec.alpha
        results.append(
            VariantResult(
                name=name,
                users=int(mine.sum()),
                exposures=int(np.count_nonzero(arm[exp_user] == i)),
                outcomes=n_out,
                rate=float(values.mean()) if len(values) else math.nan,
                rate_ci=mean_ci(values, alpha=0.05),
                comparison=comparison,
                bootstrap_p_value=boot,
                cuped=cuped_cmp,
                sequential_p_value=seq_p,
                significant=significant,
                sequential_boundary=gs.boundaries[-1] if gs and gs.boundaries else None,
                sequential_crossed_at=gs.crossed_at if gs else None,
            )
        )

    srm = sample_ratio([r.users for r in results], [s for _, s in spec.shares])
    guards = []
    for g in spec.guardrails:
        values, _ = per_user(g.metric)
        for i in range(1, len(names)):
            cmp = compare(values[arm == 0], values[arm == i], alpha=spec.alpha)
            worse = cmp.difference < 0 if g.bad == "decrease" else cmp.difference > 0
            guards.append(
                GuardrailResult(
                    g.metric,
                    g.bad,
                    names[i],
                    cmp.control_mean,
                    cmp.treatment_mean,
                    cmp.lift,
                    cmp.p_value,
                    bool(worse and cmp.p_value < spec.alpha),
                )
            )
    return ExperimentReport(
        primary_metric=spec.primary_metric,
        metric=spec.metric,
        alpha=spec.alpha,
        sequential=spec.sequential,
        control=names[0],
        variants=tuple(results),
        srm=srm,
        guardrails=tuple(guards),
        cuped=cuped_summary,
        looks=len(looks),
        start=start,
        end=end,
        unassigned_exposures=unassigned,
        mixed_users=len(mixed),
        decision=_decision(spec, results, srm, guards),
    )


def _seed(salt: str, i: int) -> int:
    return int.from_bytes(salt.encode("utf-8")[:8].ljust(8, b"\0"), "big") ^ i


def _look_times(start: float | None, end: float | None) -> list[float]:
    """Daily looks since the first exposure, and one at the end (each look sees data strictly
    before its time)."""
    if start is None or end is None:
        return []
    days = max(1, math.ceil((end - start) / DAY_S))
    looks = [start + d * DAY_S for d in range(1, days + 1)]
    if looks[-1] <= end:
        looks.append(end + 1e-6)
    return looks


def _sequential(
    spec: ExperimentSpec,
    per_user: Callable[[str, float], tuple[np.ndarray, np.ndarray]],
    arm: np.ndarray,
    looks: list[float],
) -> tuple[dict[int, float], dict[int, GroupSequential]]:
    """Per treatment after every daily look: the always-valid mSPRT p-value, and with alpha
    spending the group-sequential test (information = users so far / planned users)."""
    if not looks:
        return {}, {}
    n_var = len(spec.variants)
    diffs = np.full((n_var, len(looks)), np.nan)
    varis = np.full((n_var, len(looks)), np.nan)
    taus = np.full((n_var, len(looks)), np.nan)
    users = np.zeros(len(looks))
    by_look: list[np.ndarray] = []
    present_by_look: list[np.ndarray] = []
    for k, t in enumerate(looks):
        values, present = per_user(spec.primary_metric, t)
        users[k] = np.count_nonzero(present)
        by_look.append(values)
        present_by_look.append(present)
        c = values[present & (arm == 0)]
        for i in range(1, n_var):
            x = values[present & (arm == i)]
            if len(c) < 2 or len(x) < 2:
                continue
            diffs[i, k] = x.mean() - c.mean()
            varis[i, k] = x.var(ddof=1) / len(x) + c.var(ddof=1) / len(c)
            pooled = (x.sum() + c.sum()) / (len(x) + len(c))
            taus[i, k] = _tau(spec, float(pooled))
    p = msprt_p_values(diffs, varis, np.nan_to_num(taus, nan=0.0))
    msprt = {i: float(p[i, -1]) for i in range(1, n_var)}
    planned = spec.planned_total() if spec.sequential_method == "alpha-spending" else None
    if planned is None:
        return msprt, {}
    with np.errstate(divide="ignore", invalid="ignore"):
        z = diffs / np.sqrt(varis)
    fractions = users / planned
    values_all, present_all = np.stack(by_look, axis=1), np.stack(present_by_look, axis=1)
    out = {}
    for i in range(1, n_var):
        pair = (arm == 0) | (arm == i)
        corr = look_correlation(values_all[pair], present_all[pair], arm[pair] == i)
        zi = np.where(varis[i] > 0, z[i], np.nan)
        out[i] = group_sequential(zi, fractions, spec.alpha, spec.spending, corr)
    return msprt, out


def _tau(spec: ExperimentSpec, pooled_mean: float) -> float:
    if spec.msprt_tau is not None:
        return spec.msprt_tau
    relative = spec.min_detectable_lift or DEFAULT_TAU_RELATIVE
    return relative * pooled_mean


def _decision(
    spec: ExperimentSpec,
    results: Sequence[VariantResult],
    srm: SampleRatio,
    guards: Sequence[GuardrailResult],
) -> str:
    if srm.mismatch:
        return (
            f"sample ratio mismatch (p = {srm.p_value:.2g}): users per variant "
            f"{list(srm.counts)} do not match the shares; fix assignment or logging first"
        )
    violated = [g for g in guards if g.violated]
    if violated:
        return "guardrail violated: " + ", ".join(
            f"{g.variant} {g.metric} {g.lift:+.1%}" for g in violated
        )
    moved = [
        (r.name, r.comparison.lift)
        for r in results[1:]
        if r.significant and r.comparison is not None
    ]
    if not moved:
        return f"no significant difference from {results[0].name} at alpha {spec.alpha}"
    control = results[0].name
    return "; ".join(
        f"{name} {'beats' if lift > 0 else 'is worse than'} {control}: "
        f"{spec.primary_metric} {lift:+.1%}"
        for name, lift in moved
    )


def analyze_interleaving(
    exposures: Sequence[Exposure],
    events: Sequence[Event],
    window_s: float,
    *,
    metric: str = "click",
    rankers: tuple[str, str] = ("a", "b"),
    alpha: float = 0.05,
) -> InterleavingReport:
    """Who wins the interleaved lists: per exposure with teams, count the attributed `metric`
    events on each ranker's items (`rankers` are the team labels logged in `Exposure.teams`);
    the ranker with more wins the exposure; the sign test (`sign_test`) compares wins.
    Exposures without teams are ignored."""
    kept = [e for e in exposures if e.teams]
    relevant = [ev for ev in events if ev.event == metric]
    credited = attribute(kept, relevant, window_s).exposure
    per: list[list[int]] = [[0, 0] for _ in kept]
    for j, x in enumerate(credited):
        if x < 0:
            continue
        e = kept[x]
        team = e.teams[e.items.index(relevant[j].item)]
        if team in rankers:
            per[x][rankers.index(team)] += 1
    wins_a = sum(1 for a, b in per if a > b)
    wins_b = sum(1 for a, b in per if b > a)
    ties = len(per) - wins_a - wins_b
    n = len(per)
    p = sign_test(wins_a, wins_b)
    delta = (wins_a + ties / 2) / n - 0.5 if n else 0.0
    preferred = None
    if p < alpha and wins_a != wins_b:
        preferred = rankers[0] if wins_a > wins_b else rankers[1]
    return InterleavingReport(rankers, metric, n, wins_a, wins_b, ties, delta, p, preferred)
