"""The options (build each study family, buy Amazon Personalize, buy Google Recommendations AI),
what each costs at a platform size, and the rule that picks one.

Build, per family: the family's best model on the decision's dataset x protocol (by the study's
metric). Its fit time, peak memory and model size measured in the study grow with the
interactions fitted on as the scale file's curve says (exponent b of the measured pipeline,
never below 1 for time: a family is not assumed to scale better than linearly); training runs on
the smallest training machine whose memory holds the peak, `retrains_per_month` times; lists are
precomputed for every user `precompute_refreshes_per_month` times at the family's measured batch
cost per user; servers are sized from the scale file's per-process capacity for the peak request
rate (traffic assumptions) and hold the artifact in memory. Buy: the provider's unit prices on
the traffic's predictions, events and retraining, training time taken from Serendip's own
measured fit CPU at that size. Engineering effort (person-months x salary) is an assumption.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from serendip.reporting.costs import Costs, Machine, tiered
from serendip.reporting.data import StudyView
from serendip.reporting.scale import ScaleFile, fit_interactions_for, loglog_slope, project

__all__ = [
    "BEYOND_METRICS",
    "Decision",
    "Line",
    "Option",
    "RunCost",
    "decide",
    "options",
    "rule_text",
]

#: Beyond-accuracy metrics in the beyond-accuracy score (each at the study's K).
BEYOND_METRICS: tuple[str, ...] = ("coverage", "novelty", "ild", "oon_share")


@dataclass(frozen=True, slots=True)
class Line:
    """One computed amount with the pointers it is computed from and how."""

    value: float
    inputs: tuple[str, ...]
    formula: str


@dataclass(slots=True)
class RunCost:
    """What one option needs and costs per month at one platform size."""

    users: int
    lines: dict[str, Line] = field(default_factory=dict)
    machines: dict[str, Line] = field(default_factory=dict)  # machine kind -> count
    notes: list[str] = field(default_factory=list)

    @property
    def monthly(self) -> float:
        return sum(v.value for k, v in self.lines.items())


@dataclass(slots=True)
class Option:
    key: str
    label: str
    kind: str  # "build" | "buy"
    family: str = ""
    model: str = ""
    row_index: int | None = None
    accuracy: float | None = None
    beyond: dict[str, tuple[float, int]] = field(default_factory=dict)  # metric -> (value, row)
    beyond_score: float | None = None
    effort_pm: Line | None = None  # one-time person-months
    one_time: Line | None = None
    run: dict[int, RunCost] = field(default_factory=dict)
    risks: list[tuple[str, bool]] = field(default_factory=list)  # (text, blocking)
    pros: list[str] = field(default_factory=list)
    cons: list[str] = field(default_factory=list)

    def total(self, users: int, months: int) -> float:
        return (self.one_time.value if self.one_time else 0.0) + months * self.run[users].monthly

    @property
    def blocked(self) -> bool:
        return any(b for _, b in self.risks)


@dataclass(slots=True)
class Decision:
    chosen: Option | None
    shortlist: list[str]
    steps: list[str]
    target_users: int


def _c(path: str) -> str:
    return f"costs:{path}"


def _requests_per_month(costs: Costs, users: int) -> tuple[float, tuple[str, ...]]:
    t = costs.traffic
    days = costs.hours_per_month / 24.0
    return (
        users * t.daily_active_share * t.requests_per_active_user_per_day * days,
        (
            _c("traffic/daily_active_share"),
            _c("traffic/requests_per_active_user_per_day"),
            _c("hours_per_month"),
        ),
    )


def _events_per_month(costs: Costs, users: int) -> tuple[float, tuple[str, ...]]:
    t = costs.traffic
    days = costs.hours_per_month / 24.0
    return (
        users * t.daily_active_share * t.events_per_active_user_per_day * days,
        (
            _c("traffic/daily_active_share"),
            _c("traffic/events_per_active_user_per_day"),
            _c("hours_per_month"),
        ),
    )


def peak_rps(costs: Costs, users: int) -> Line:
    t = costs.traffic
    v = users * t.daily_active_share * t.requests_per_active_user_per_day / 86400.0 * t.peak_to_mean
    return Line(
        v,
        (
            _c("traffic/daily_active_share"),
            _c("traffic/requests_per_active_user_per_day"),
            _c("traffic/peak_to_mean"),
        ),
        "users x daily active share x requests per active user per day / 86,400 x peak-to-mean",
    )


def _training_machine(costs: Costs, peak_mb: float) -> tuple[str, Machine, bool]:
    need_gb = peak_mb * costs.training.memory_headroom / 1024.0
    for name in costs.training.machines:
        m = costs.machines[name]
        if m.memory_gb >= need_gb:
            return name, m, True
    name = max(costs.training.machines, key=lambda n: costs.machines[n].memory_gb)
    return name, costs.machines[name], False


def _scale_pointer(scale: ScaleFile, metric: str) -> tuple[str, ...]:
    return tuple(
        f"scale:points/{i}/metrics/{metric}"
        for i, p in enumerate(scale.points)
        if p.measured and p.metrics.get(metric) is not None
    )


def _serving(
    costs: Costs, scale: ScaleFile, users: int, model_mb: float, model_inputs: tuple[str, ...]
) -> tuple[Line, Line]:
    """(servers, monthly serving cost) at `users`."""
    proj = project(scale, users)
    capacity = proj["serve_capacity_rps"].value or 1.0
    lists_mb = proj["lists_mb"].value or 0.0
    peak = peak_rps(costs, users)
    processes = math.ceil(peak.value * costs.serving.headroom / capacity)
    cores = math.ceil(processes / costs.serving.processes_per_core)
    m = costs.machines[costs.serving.serving_machine]
    by_cores = math.ceil(cores / m.cores)
    # every server process holds the model and the precomputed lists of the users it serves;
    # when that outgrows one machine's memory, users are sharded over several machines
    per_process_mb = (model_mb + lists_mb) * costs.serving.memory_per_process_factor
    shards = max(1, math.ceil(per_process_mb / (m.memory_gb * 1024.0)))
    servers = max(costs.serving.replicas_minimum, by_cores) * shards
    inputs = (
        *peak.inputs,
        *_scale_pointer(scale, "serve_capacity_rps"),
        *_scale_pointer(scale, "lists_mb"),
        _c("serving/headroom"),
        _c("serving/processes_per_core"),
        _c("serving/memory_per_process_factor"),
        _c(f"machines/{costs.serving.serving_machine}/cores"),
        _c(f"machines/{costs.serving.serving_machine}/memory_gb"),
        _c("serving/replicas_minimum"),
        *model_inputs,
    )
    n = Line(
        float(servers),
        inputs,
        "max(minimum replicas, ceil(peak req/s x headroom / measured req/s per process / cores)) "
        "x shards (ceil((model size + precomputed lists) / machine memory))",
    )
    cost = Line(
        servers * costs.hours_per_month * m.usd_per_hour,
        (
            *inputs,
            _c("hours_per_month"),
            _c(f"machines/{costs.serving.serving_machine}/usd_per_hour"),
        ),
        "servers x hours per month x price per hour",
    )
    return n, cost


def _build_run(
    costs: Costs, scale: ScaleFile, study: StudyView, idx: int, row: Mapping[str, Any], users: int
) -> RunCost:
    cost = row.get("cost") or {}
    split = row.get("split") or {}
    train = (split.get("train") or {}).get("interactions") or row.get("n_train_interactions")
    x_study = (
        float(train)
        if isinstance(train, (int, float)) and train
        else float(scale.measured[0].fit_interactions)
    )
    train_ptr = (
        f"study:rows/{idx}/split/train/interactions"
        if isinstance((split.get("train") or {}).get("interactions"), (int, float))
        else ""
    )
    x = float(fit_interactions_for(scale, users))
    ratio = x / x_study
    b_time = max(1.0, loglog_slope(scale, "fit_wall_s"))
    b_mem = loglog_slope(scale, "peak_memory_mb")
    b_disk = loglog_slope(scale, "artifact_mb")
    scale_in = (
        *((train_ptr,) if train_ptr else ()),
        *_scale_pointer(scale, "fit_wall_s"),
        *_scale_pointer(scale, "peak_memory_mb"),
    )
    rc = RunCost(users)
    fit_s = float(cost.get("fit_seconds") or 0.0)
    mem = float(cost.get("peak_memory_mb") or 0.0)
    size = float(cost.get("model_size_mb") or 0.0)
    batch_ms = float(cost.get("recommend_batch_ms_per_user") or 0.0)
    p = f"study:rows/{idx}/cost/"
    fit_h = fit_s * ratio**b_time / 3600.0
    peak_mb = mem * ratio**b_mem
    model_mb = size * ratio**b_disk
    tname, tm, fits = _training_machine(costs, peak_mb)
    if not fits:
        rc.notes.append(
            f"training needs about {peak_mb / 1024:,.0f} GiB at {users:,} users: more than the largest "
            f"training machine ({tm.memory_gb:g} GiB); needs distributed training (not costed)"
        )
    retrains = costs.traffic.retrains_per_month
    rc.machines["training"] = Line(
        fit_h * retrains,
        (p + "fit_seconds", p + "peak_memory_mb", *scale_in, _c("traffic/retrains_per_month")),
        f"machine-hours a month on {tname}: measured fit s x (interactions ratio)^b / 3600 x retrains",
    )
    rc.lines["training"] = Line(
        fit_h * retrains * tm.usd_per_hour,
        (*rc.machines["training"].inputs, _c(f"machines/{tname}/usd_per_hour")),
        "training machine-hours x price per hour",
    )
    pre_h = batch_ms * users * costs.traffic.precompute_refreshes_per_month / 3.6e6
    rc.lines["precompute"] = Line(
        pre_h * tm.usd_per_hour,
        (
            p + "recommend_batch_ms_per_user",
            _c("traffic/precompute_refreshes_per_month"),
            _c(f"machines/{tname}/usd_per_hour"),
        ),
        "measured batch ms per user x users x refreshes / 3.6e6 x price per hour",
    )
    n, serve_cost = _serving(
        costs, scale, users, model_mb, (p + "model_size_mb", *_scale_pointer(scale, "artifact_mb"))
    )
    rc.machines["serving"] = n
    rc.lines["serving"] = serve_cost
    _events, ev_in = _events_per_month(costs, users)
    interactions = users * scale.measured[-1].interactions / scale.measured[-1].users
    gb = (
        interactions * costs.traffic.bytes_per_event / 1e9 + model_mb / 1024.0
    ) * costs.training.storage_replicas
    rc.lines["storage"] = Line(
        gb * costs.storage.usd_per_gb_month,
        (
            *_scale_pointer(scale, "artifact_mb"),
            p + "model_size_mb",
            _c("traffic/bytes_per_event"),
            _c("training/storage_replicas"),
            _c("storage/usd_per_gb_month"),
            *ev_in,
        ),
        "(stored events x bytes per event + model size) x replicas x price per GB-month",
    )
    rc.lines["engineering"] = Line(
        costs.engineering.maintenance_person_months_per_month
        * costs.engineering.usd_per_person_month,
        (
            _c("engineering/maintenance_person_months_per_month"),
            _c("engineering/usd_per_person_month"),
        ),
        "maintenance person-months a month x cost of a person-month",
    )
    return rc


def _google_run(costs: Costs, scale: ScaleFile, users: int) -> RunCost:
    g = costs.buy.google
    rc = RunCost(users)
    req, req_in = _requests_per_month(costs, users)
    rc.lines["predictions"] = Line(
        tiered(req, g.prediction_tiers, 1000.0),
        (*req_in, _c("buy/google/prediction_tiers")),
        "monthly predictions priced by the graduated tiers per 1,000",
    )
    cpu = project(scale, users)["fit_cpu_s"]
    node_h = (
        (cpu.value or 0.0)
        / 3600.0
        * g.training_node_hours_per_fit_cpu_hour
        * costs.traffic.retrains_per_month
    )
    rc.lines["training"] = Line(
        node_h * g.training_usd_per_node_hour,
        (
            *_scale_pointer(scale, "fit_cpu_s"),
            _c("buy/google/training_node_hours_per_fit_cpu_hour"),
            _c("traffic/retrains_per_month"),
            _c("buy/google/training_usd_per_node_hour"),
        ),
        "measured fit CPU-hours at this size x node-hours per CPU-hour x retrains x price per node-hour",
    )
    rc.lines["engineering"] = Line(
        costs.engineering.buy_maintenance_person_months_per_month
        * costs.engineering.usd_per_person_month,
        (
            _c("engineering/buy_maintenance_person_months_per_month"),
            _c("engineering/usd_per_person_month"),
        ),
        "maintenance person-months a month x cost of a person-month",
    )
    return rc


def _personalize_run(costs: Costs, scale: ScaleFile, users: int) -> RunCost:
    a = costs.buy.personalize
    rc = RunCost(users)
    events, ev_in = _events_per_month(costs, users)
    rc.lines["data"] = Line(
        events * costs.traffic.bytes_per_event / 1e9 * a.data_usd_per_gb,
        (*ev_in, _c("traffic/bytes_per_event"), _c("buy/personalize/data_usd_per_gb")),
        "events a month x bytes per event / 1e9 x price per GB",
    )
    cpu = project(scale, users)["fit_cpu_s"]
    hours = (
        (cpu.value or 0.0)
        / 3600.0
        * a.training_hours_per_fit_cpu_hour
        * costs.traffic.retrains_per_month
    )
    rc.lines["training"] = Line(
        hours * a.training_usd_per_hour,
        (
            *_scale_pointer(scale, "fit_cpu_s"),
            _c("buy/personalize/training_hours_per_fit_cpu_hour"),
            _c("traffic/retrains_per_month"),
            _c("buy/personalize/training_usd_per_hour"),
        ),
        "measured fit CPU-hours at this size x training hours per CPU-hour x retrains x price per hour",
    )
    req, req_in = _requests_per_month(costs, users)
    mean_tps = req / (costs.hours_per_month * 3600.0)
    tps_hours = max(a.min_provisioned_tps, mean_tps) * costs.hours_per_month
    rc.lines["inference"] = Line(
        tiered(tps_hours, a.tps_hour_tiers),
        (*req_in, _c("buy/personalize/min_provisioned_tps"), _c("buy/personalize/tps_hour_tiers")),
        "max(minimum provisioned TPS, mean TPS) x hours a month, priced by the graduated TPS-hour tiers",
    )
    rc.lines["engineering"] = Line(
        costs.engineering.buy_maintenance_person_months_per_month
        * costs.engineering.usd_per_person_month,
        (
            _c("engineering/buy_maintenance_person_months_per_month"),
            _c("engineering/usd_per_person_month"),
        ),
        "maintenance person-months a month x cost of a person-month",
    )
    return rc


def _metric(row: Mapping[str, Any], name: str) -> float | None:
    v = (row.get("metrics") or {}).get(name)
    return (
        float(v)
        if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
        else None
    )


def options(
    study: StudyView, scale: ScaleFile, costs: Costs, scales: tuple[int, ...]
) -> list[Option]:
    """Every option with its measurements, costs at each of `scales` users, risks, pros, cons."""
    sizes = tuple(sorted({*scales, costs.decision.target_users}))
    by_family: dict[str, tuple[int, Mapping[str, Any]]] = {}
    for i, r in study.indexed():
        if r.get("kind") == "peer":
            continue
        acc = _metric(r, study.metric)
        if acc is None:
            continue
        fam = str(r["family"])
        if fam not in by_family or acc > (_metric(by_family[fam][1], study.metric) or -1.0):
            by_family[fam] = (i, r)
    failed_families = {
        str(r.get("family")) for r in study.failed() if r.get("dataset") == study.dataset
    }
    baseline_best = max(
        (
            _metric(r, study.metric) or 0.0
            for _, r in study.indexed()
            if r.get("family") == "baselines"
        ),
        default=None,
    )
    out: list[Option] = []
    sal = costs.engineering.usd_per_person_month
    for fam, (i, r) in sorted(
        by_family.items(), key=lambda kv: -(_metric(kv[1][1], study.metric) or 0.0)
    ):
        key, pm = costs.engineering.effort(fam)
        o = Option(
            key=f"build:{fam}",
            label=f"Build: {fam} ({r['model']})",
            kind="build",
            family=fam,
            model=str(r["model"]),
            row_index=i,
            accuracy=_metric(r, study.metric),
        )
        for m in BEYOND_METRICS:
            v = _metric(r, f"{m}@{study.k}")
            if v is not None:
                o.beyond[m] = (v, i)
        o.effort_pm = Line(
            pm, (_c(f"engineering/build_person_months/{key}"),), "person-months to production"
        )
        o.one_time = Line(
            pm * sal,
            (_c(f"engineering/build_person_months/{key}"), _c("engineering/usd_per_person_month")),
            "build person-months x cost of a person-month",
        )
        for n in sizes:
            o.run[n] = _build_run(costs, scale, study, i, r, n)
        for note in o.run[costs.decision.target_users].notes:
            o.risks.append((note, True))
        for n in sizes:
            if n != costs.decision.target_users:
                o.risks.extend((f"at {n:,} users: {note}", False) for note in o.run[n].notes)
        if fam in failed_families:
            o.risks.append((f"a {fam} model failed in the study (see the study's failures)", False))
        sig = study.significance(str(r["model"]))
        if sig is not None and not sig[1].get("significant") and fam != "baselines":
            o.risks.append(("not significantly better than the best baseline on this data", False))
        o.pros.append(
            f"{study.metric} {o.accuracy:.4f} measured on this data"
            if o.accuracy is not None
            else "measured"
        )
        o.pros.append("data, model and explanations stay on the platform; no per-request fee")
        o.cons.append(f"{pm:g} person-months to production (assumption) and on-call ownership")
        if (
            baseline_best is not None
            and o.accuracy is not None
            and fam != "baselines"
            and o.accuracy <= baseline_best
        ):
            o.cons.append("no better than the popularity baseline on this data")
        out.append(o)
    integration = costs.engineering.buy_integration_person_months
    for key, label, fn, prov in (
        ("buy:personalize", costs.buy.personalize.name, _personalize_run, costs.buy.personalize),
        ("buy:google", costs.buy.google.name, _google_run, costs.buy.google),
    ):
        o = Option(key=key, label=f"Buy: {label}", kind="buy")
        o.effort_pm = Line(
            integration,
            (_c("engineering/buy_integration_person_months"),),
            "integration person-months",
        )
        o.one_time = Line(
            integration * sal,
            (
                _c("engineering/buy_integration_person_months"),
                _c("engineering/usd_per_person_month"),
            ),
            "integration person-months x cost of a person-month",
        )
        for n in sizes:
            o.run[n] = fn(costs, scale, n)
        if costs.decision.require_self_hosting:
            o.risks.append(
                ("the data may not leave the platform (decision.require_self_hosting)", True)
            )
        o.risks.append(("accuracy on this platform's data not measured before buying", False))
        o.risks.append(
            ("vendor lock-in: events, models and serving live in the provider's cloud", False)
        )
        if not prov.confirmed:
            o.risks.append(("unit prices not confirmed on the provider's page", False))
        o.pros.append("managed training and serving; small team to integrate")
        o.cons.append(
            "per-request bill grows with traffic; accuracy on this data unknown until a trial"
        )
        o.cons.append(
            "no out-of-network, diversity or explanation controls beyond the provider's options"
        )
        out.append(o)
    built = [o for o in out if o.kind == "build"]
    for m in BEYOND_METRICS:
        top = max((o.beyond[m][0] for o in built if m in o.beyond), default=0.0)
        if top > 0:
            for o in built:
                if m in o.beyond:
                    o.beyond.setdefault(m, o.beyond[m])
    for o in built:
        parts = []
        for m in BEYOND_METRICS:
            top = max((x.beyond[m][0] for x in built if m in x.beyond), default=0.0)
            if m in o.beyond and top > 0:
                parts.append(o.beyond[m][0] / top)
        o.beyond_score = sum(parts) / len(parts) if parts else None
    return out


def rule_text(costs: Costs, metric: str) -> list[str]:
    d = costs.decision
    return [
        "Drop every option with a blocking risk: training that does not fit the largest training "
        f"machine at {d.target_users:,} users"
        + (", buying (the data may not leave the platform)" if d.require_self_hosting else "")
        + ".",
        f"Shortlist the built options whose {metric} is within {d.accuracy_tolerance:.0%} of the best built option's.",
        f"Among the shortlist, the lowest total cost over {costs.horizon_months} months at {d.target_users:,} users "
        f"(build + run); options within {d.cost_tie:.0%} of the cheapest tie, and the tie goes to the higher "
        "beyond-accuracy score (mean of coverage, novelty, intra-list diversity and out-of-network share, each "
        "relative to the best built option).",
        f"Buying replaces that choice only when a buy option costs at least {d.buy_margin:.0%} less over the same "
        "horizon, since its accuracy on this data is unmeasured.",
    ]


def decide(opts: list[Option], costs: Costs) -> Decision:
    """Apply the rule (`rule_text`) to `opts`."""
    d = costs.decision
    n, months = d.target_users, costs.horizon_months
    steps: list[str] = []
    eligible = [o for o in opts if not o.blocked]
    dropped = [o.label for o in opts if o.blocked]
    steps.append("dropped: " + (", ".join(dropped) if dropped else "none"))
    built = [o for o in eligible if o.kind == "build" and o.accuracy is not None]
    chosen: Option | None = None
    shortlist: list[Option] = []
    if built:
        best = max(o.accuracy or 0.0 for o in built)
        shortlist = [o for o in built if (o.accuracy or 0.0) >= best * (1 - d.accuracy_tolerance)]
        steps.append(f"shortlist (best {best:.4f}): " + ", ".join(o.label for o in shortlist))
        cheapest = min(o.total(n, months) for o in shortlist)
        tied = [o for o in shortlist if o.total(n, months) <= cheapest * (1 + d.cost_tie)]
        chosen = max(tied, key=lambda o: (o.beyond_score or 0.0, -o.total(n, months)))
        steps.append(
            f"cheapest ${cheapest:,.0f}; tied: "
            + ", ".join(o.label for o in tied)
            + f"; chosen: {chosen.label}"
        )
    buys = [o for o in eligible if o.kind == "buy"]
    if buys:
        cheap_buy = min(buys, key=lambda o: o.total(n, months))
        if chosen is None:
            chosen = cheap_buy
            steps.append(f"no built option eligible: {cheap_buy.label}")
        elif cheap_buy.total(n, months) <= chosen.total(n, months) * (1 - d.buy_margin):
            steps.append(
                f"{cheap_buy.label} ${cheap_buy.total(n, months):,.0f} is at least {d.buy_margin:.0%} below "
                f"${chosen.total(n, months):,.0f}: buy"
            )
            chosen = cheap_buy
        else:
            steps.append(
                f"cheapest buy, {cheap_buy.label} ${cheap_buy.total(n, months):,.0f}, is not {d.buy_margin:.0%} "
                f"below ${chosen.total(n, months):,.0f}: build"
            )
    return Decision(chosen, [o.key for o in shortlist], steps, n)
