"""The dashboard's pages as data: one function per page, frozen dataclasses out.

Every number comes from the store, the runtime, a study's `results.json` or the monitors; nothing
is typed by hand. The functions never raise for a missing optional part (no study directory, no
experiment analysis, no monitors): the page gets a `note` saying what is missing and why.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import and_, case, func, select

from serendip.errors import SerendipError
from serendip.service.runtime import ModelRuntime
from serendip.serving.contract import RecItem
from serendip.store import Item, ModelVersion, Store
from serendip.store.repositories import EVENTS

log = logging.getLogger("serendip.service")

__all__ = [
    "ExperimentsView",
    "Leaderboard",
    "ModelsView",
    "MonitorsView",
    "Overview",
    "UserView",
    "experiments_view",
    "leaderboard",
    "models_view",
    "monitors_view",
    "overview",
    "sample_users",
    "user_view",
    "version_choices",
]

DASH = "–"
_DAY = 86_400.0

#: Metrics the leaderboard shows when a row has them, in this order (the study leaderboard's).
LEADER_METRICS: tuple[tuple[str, str], ...] = (
    ("ndcg@10", "NDCG@10"),
    ("precision@10", "P@10"),
    ("recall@10", "R@10"),
    ("map@10", "MAP@10"),
    ("hit_rate@10", "HitRate@10"),
    ("coverage@10", "Coverage"),
    ("novelty@10", "Novelty"),
    ("ild@10", "Diversity"),
    ("serendipity@10", "Serendipity"),
    ("oon_share@10", "Out-of-network"),
)
#: Study cost columns: (key in the row's `cost`, header).
LEADER_COSTS: tuple[tuple[str, str], ...] = (
    ("fit_seconds", "Fit"),
    ("peak_memory_mb", "Peak mem"),
    ("recommend_single_p50_ms", "p50"),
)


# --------------------------------------------------------------------------- formatting
def number(x: object) -> float | None:
    """`x` as a finite float, else None (strings, None, NaN, booleans are not numbers)."""
    if isinstance(x, bool) or not isinstance(x, (int, float)):
        return None
    v = float(x)
    return v if math.isfinite(v) else None


def fmt_number(x: object, digits: int = 4) -> str:
    v = number(x)
    if v is None:
        return DASH
    if v == int(v) and abs(v) < 1e12:
        return f"{int(v):,}"
    return f"{v:.{digits}g}" if abs(v) >= 1000 else f"{v:.{digits}f}"


def fmt_share(x: object) -> str:
    v = number(x)
    return DASH if v is None else f"{100 * v:.1f}%"


def fmt_time(t: float | None) -> str:
    """Epoch seconds as `YYYY-MM-DD HH:MM UTC`."""
    if t is None or not math.isfinite(t):
        return DASH
    return time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(t))


def fmt_seconds(x: object) -> str:
    v = number(x)
    if v is None:
        return DASH
    if v < 1:
        return f"{1000 * v:.0f} ms"
    return f"{v:.1f} s" if v < 120 else f"{v / 60:.1f} min"


def _fmt_cost(key: str, x: object) -> str:
    v = number(x)
    if v is None:
        return DASH
    if key.endswith("_mb"):
        return f"{v:.0f} MB" if v >= 1 else f"{1024 * v:.0f} KB"
    if key.endswith("_ms"):
        return f"{v:.3g} ms"
    return fmt_seconds(v)


# --------------------------------------------------------------------------- overview
@dataclass(frozen=True, slots=True)
class Share:
    """One labelled count with its share of the total (for a bar)."""

    label: str
    count: int
    share: float


@dataclass(frozen=True, slots=True)
class ActivityRow:
    when: str
    user: str
    item: str
    title: str
    event: str


@dataclass(frozen=True, slots=True)
class Overview:
    counts: tuple[tuple[str, int], ...]
    event_types: tuple[Share, ...]
    days: tuple[Share, ...]  # events per day over the last 14 days of data, oldest first
    recent: tuple[ActivityRow, ...]
    newest: str
    backend: str
    serving: str | None
    not_ready: str | None


def _titles(store: Store, items: Iterable[str]) -> dict[str, Item]:
    ids = sorted(set(items))
    return store.catalog.get_many(ids) if ids else {}


def overview(store: Store, runtime: ModelRuntime | None, not_ready: str | None = None) -> Overview:
    """Counts of users, items, events and follows; events per type; events per day over the
    last 14 days of data (relative to the newest event, so an old data set still shows its
    shape); the 15 latest events."""
    counts = (
        ("Users", store.users.count()),
        ("Items", store.catalog.count()),
        ("Events", store.events.count()),
        ("Follows", store.social.count()),
        ("Model versions", len(store.models.list())),
        ("Exposures logged", store.exposures.count()),
    )
    db = store.database
    with db.read() as conn:
        by_type = conn.execute(
            select(EVENTS.c.event, func.count())
            .group_by(EVENTS.c.event)
            .order_by(func.count().desc())
        ).all()
        latest = conn.execute(
            select(EVENTS.c.user_id, EVENTS.c.item_id, EVENTS.c.event, EVENTS.c.timestamp)
            .order_by(EVENTS.c.timestamp.desc(), EVENTS.c.id.desc())
            .limit(15)
        ).all()
    total = sum(int(n) for _, n in by_type) or 1
    event_types = tuple(Share(str(e), int(n), int(n) / total) for e, n in by_type)
    newest = store.events.newest_timestamp()
    days: tuple[Share, ...] = ()
    if newest is not None:
        last = math.floor(newest / _DAY) * _DAY
        starts = [last - _DAY * d for d in range(13, -1, -1)]
        ts = EVENTS.c.timestamp
        sums = [
            func.coalesce(func.sum(case((and_(ts >= s, ts < s + _DAY), 1), else_=0)), 0)
            for s in starts
        ]
        with db.read() as conn:
            row = conn.execute(select(*sums).where(ts >= starts[0])).one()
        per_day = [int(v or 0) for v in row]
        top = max(per_day) or 1
        days = tuple(
            Share(time.strftime("%m-%d", time.gmtime(s)), n, n / top)
            for s, n in zip(starts, per_day, strict=True)
        )
    items = _titles(store, (r[1] for r in latest))
    recent = tuple(
        ActivityRow(
            fmt_time(float(ts)),
            str(user),
            str(item),
            items[item].title if item in items else "",
            str(event),
        )
        for user, item, event, ts in latest
    )
    return Overview(
        counts=counts,
        event_types=event_types,
        days=days,
        recent=recent,
        newest=fmt_time(newest),
        backend=store.backend,
        serving=None if runtime is None else runtime.active_version,
        not_ready=not_ready,
    )


def sample_users(store: Store, n: int = 12) -> list[str]:
    """Users with the latest events: suggestions for the user explorer's picker."""
    with store.database.read() as conn:
        rows = conn.execute(
            select(EVENTS.c.user_id).order_by(EVENTS.c.timestamp.desc()).limit(20 * n)
        ).all()
    out: list[str] = []
    for (user,) in rows:
        if user not in out:
            out.append(str(user))
        if len(out) == n:
            break
    return out


# --------------------------------------------------------------------------- leaderboard
@dataclass(frozen=True, slots=True)
class LeaderRow:
    rank: int
    model: str
    kind: str
    cells: tuple[str, ...]
    best: bool = False


@dataclass(frozen=True, slots=True)
class LeaderGroup:
    title: str
    headers: tuple[str, ...]
    rows: tuple[LeaderRow, ...]
    failed: tuple[tuple[str, str], ...] = ()  # (model, error)


@dataclass(frozen=True, slots=True)
class Leaderboard:
    source: str  # "study", "models" or "none"
    note: str
    groups: tuple[LeaderGroup, ...]
    study: tuple[tuple[str, str], ...] = ()  # the study's own fields (profile, created, ...)


def _metric_keys(metric_dicts: Sequence[Mapping[str, object]]) -> list[tuple[str, str]]:
    """The leaderboard's metric columns present in any of `metric_dicts`; without any of
    them, the numeric keys found (at most 8) under their own names."""
    present = [(k, h) for k, h in LEADER_METRICS if any(k in m for m in metric_dicts)]
    if present:
        return present
    keys: list[str] = []
    for m in metric_dicts:
        keys += [k for k, v in m.items() if number(v) is not None and k not in keys]
    return [(k, k) for k in keys[:8]]


def _sort_key(metrics: Mapping[str, object], key: str | None) -> float:
    v = number(metrics.get(key)) if key is not None else None
    return -math.inf if v is None else v


def leaderboard(store: Store, study_dir: Path | None) -> Leaderboard:
    """The study's results (`results.json` in `study_dir`) per dataset and protocol, best
    NDCG@10 first; without a study directory, the registered model versions' metrics."""
    if study_dir is not None:
        return _study_leaderboard(Path(study_dir))
    versions = store.models.list()
    if not versions:
        return Leaderboard(
            "none", "No study directory is configured and no model is registered.", ()
        )
    dicts = [dict(v.metrics or {}) for v in versions]
    cols = _metric_keys(dicts)
    sort = cols[0][0] if cols else None
    ordered = sorted(versions, key=lambda v: _sort_key(v.metrics or {}, sort), reverse=True)
    rows = tuple(
        LeaderRow(
            i + 1,
            f"{v.version} ({v.name})",
            v.status,
            tuple(fmt_number((v.metrics or {}).get(k)) for k, _ in cols),
            best=i == 0 and sort is not None,
        )
        for i, v in enumerate(ordered)
    )
    note = (
        "No study directory is configured (serve --study DIR or SERENDIP_STUDY_DIR: a `serendip study` output "
        "directory): the registered model versions, by the metrics recorded with them."
    )
    group = LeaderGroup("Model versions", tuple(h for _, h in cols), rows)
    return Leaderboard("models", note, (group,))


def _study_leaderboard(directory: Path) -> Leaderboard:
    from serendip.evaluation.study.results import read_results

    try:
        results = read_results(directory)
    except (OSError, ValueError) as exc:
        return Leaderboard("none", f"The study in {directory} could not be read: {exc}", ())
    raw_rows = results.get("rows", [])
    rows: list[Mapping[str, object]] = [r for r in raw_rows if isinstance(r, Mapping)]
    study = results.get("study", {})
    info = tuple(
        (str(k), str(v))
        for k, v in (study.items() if isinstance(study, Mapping) else ())
        if k in ("profile", "created", "code_version", "seconds") and v is not None
    )
    keys: list[tuple[str, str]] = []
    for r in rows:
        k = (str(r.get("dataset", "")), str(r.get("protocol", "")))
        if k not in keys:
            keys.append(k)
    groups: list[LeaderGroup] = []
    for dataset, protocol in keys:
        members = [
            r
            for r in rows
            if (str(r.get("dataset", "")), str(r.get("protocol", ""))) == (dataset, protocol)
        ]
        ok = [r for r in members if r.get("status") == "ok"]
        metric_dicts = [_mapping(r.get("metrics")) for r in ok]
        cols = _metric_keys(metric_dicts)
        sort = cols[0][0] if cols else None
        ok.sort(key=lambda r: _sort_key(_mapping(r.get("metrics")), sort), reverse=True)
        headers = tuple(h for _, h in cols) + tuple(h for _, h in LEADER_COSTS)
        leader_rows = tuple(
            LeaderRow(
                i + 1,
                str(r.get("model", "")),
                str(r.get("kind", "")),
                tuple(fmt_number(_mapping(r.get("metrics")).get(k)) for k, _ in cols)
                + tuple(_fmt_cost(k, _mapping(r.get("cost")).get(k)) for k, _ in LEADER_COSTS),
                best=i == 0,
            )
            for i, r in enumerate(ok)
        )
        failed = tuple(
            (str(r.get("model", "")), str(r.get("error", "")) or "failed")
            for r in members
            if r.get("status") != "ok"
        )
        groups.append(LeaderGroup(f"{dataset} · {protocol}", headers, leader_rows, failed))
    note = f"Study results from {directory / 'results.json'}: best NDCG@10 first."
    if not groups:
        note = f"The study in {directory} has no result rows yet."
    return Leaderboard("study", note, tuple(groups), info)


def _mapping(value: object) -> Mapping[str, object]:
    return value if isinstance(value, Mapping) else {}


# --------------------------------------------------------------------------- user explorer
@dataclass(frozen=True, slots=True)
class HistoryEntry:
    when: str
    item: str
    title: str
    event: str


@dataclass(frozen=True, slots=True)
class RecEntry:
    rank: int
    item: str
    title: str
    score: str
    reason: str
    sources: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class RecColumn:
    label: str
    version: str | None
    recs: tuple[RecEntry, ...]
    error: str | None = None


@dataclass(frozen=True, slots=True)
class Choice:
    value: str
    label: str


@dataclass(frozen=True, slots=True)
class UserView:
    user: str
    known: bool
    private: bool
    interests: tuple[str, ...]
    personalized: bool
    history: tuple[HistoryEntry, ...]
    followees: tuple[str, ...]
    followers: int
    columns: tuple[RecColumn, ...]


def version_choices(store: Store, runtime: ModelRuntime | None) -> list[Choice]:
    """What the explorer can compare: every registered version, newest first, labelled with its
    model, whether it serves (active) or is loaded, and the running experiments' variants that
    serve it."""
    active = None if runtime is None else runtime.active_version
    loaded = set(() if runtime is None else runtime.loaded_versions)
    variants: dict[str, list[str]] = {}
    for exp in store.experiments.list(status="running"):
        for name, version in _variants(exp.spec):
            target = version or active
            if target is not None:
                variants.setdefault(target, []).append(f"{exp.experiment_id}: {name}")
    out: list[Choice] = []
    for v in sorted(store.models.list(), key=lambda v: v.created_at, reverse=True):
        tags = [v.name]
        if v.version == active:
            tags.append("active")
        elif v.version in loaded:
            tags.append("loaded")
        if v.status == "failed":
            tags.append("failed")
        tags += [f"variant {x}" for x in variants.get(v.version, [])]
        out.append(Choice(v.version, f"{v.version} ({', '.join(tags)})"))
    return out


def _variants(spec: Mapping[str, object]) -> list[tuple[str, str | None]]:
    raw = spec.get("variants")
    out: list[tuple[str, str | None]] = []
    if isinstance(raw, list):
        for v in raw:
            if isinstance(v, Mapping):
                mv = v.get("model_version")
                out.append((str(v.get("name", "")), None if mv is None else str(mv)))
    return out


def _explanation_parts(explanation: Mapping[str, object] | None) -> tuple[str, tuple[str, ...]]:
    """The reason sentence and the candidate sources (evidence of kind `source`) of one item."""
    if explanation is None:
        return "", ()
    text = str(explanation.get("text") or "")
    sources: list[str] = []
    evidence = explanation.get("evidence")
    if isinstance(evidence, list):
        for ev in evidence:
            if isinstance(ev, Mapping) and ev.get("kind") == "source":
                name = str(ev.get("id", ""))
                if name and name not in sources:
                    sources.append(name)
    src = explanation.get("source")
    if not sources and isinstance(src, str) and src:
        sources.append(src)
    if not sources:
        model = explanation.get("model")
        if isinstance(model, str) and model:
            sources.append(model)
    return text, tuple(sources)


def _rec_column(
    store: Store, runtime: ModelRuntime, user: str, version: str | None, k: int
) -> RecColumn:
    """One version's top-k with reasons for `user` (`version` None: the active one). Served
    straight from the runtime: no exposure is logged, no experiment routes it."""
    label = version or "active model"
    try:
        if version is None or version == runtime.active_version:
            snap = runtime.snapshot
            if snap is None:
                return RecColumn(label, None, (), "No model is active yet.")
        else:
            snap = runtime.variant(version)
        recs: list[RecItem] = runtime.recommend(user, k, explain=True, snapshot=snap)
    except SerendipError as exc:
        return RecColumn(label, version, (), str(exc))
    items = _titles(store, (r.item for r in recs))
    entries = []
    for i, r in enumerate(recs):
        reason, sources = _explanation_parts(r.explanation)
        title = items[r.item].title if r.item in items else ""
        entries.append(RecEntry(i + 1, r.item, title, f"{r.score:.4g}", reason, sources))
    return RecColumn(f"{snap.version}", snap.version, tuple(entries))


def user_view(
    store: Store,
    runtime: ModelRuntime | None,
    user: str,
    versions: Sequence[str | None],
    *,
    k: int = 10,
    history: int = 20,
) -> UserView:
    """A user's profile, latest events (with titles), followees, follower count, and the top-k
    with reasons and sources from each of `versions` (None: the active model) side by side."""
    profile = store.users.get(user)
    events = store.events.recent(user, history)
    followees = store.social.followees(user)
    followers = len(store.social.followers(user))
    items = _titles(store, (e.item for e in events))
    entries = tuple(
        HistoryEntry(
            fmt_time(e.timestamp), e.item, items[e.item].title if e.item in items else "", e.event
        )
        for e in events
    )
    if runtime is None:
        columns: tuple[RecColumn, ...] = (
            RecColumn("active model", None, (), "The runtime is not up yet."),
        )
    else:
        columns = tuple(_rec_column(store, runtime, user, v, k) for v in versions)
    return UserView(
        user=user,
        known=profile is not None or bool(events) or bool(followees),
        private=bool(profile and profile.private),
        interests=tuple(profile.interests) if profile else (),
        personalized=True if runtime is None else runtime.personalized(user),
        history=entries,
        followees=tuple(followees[:50]),
        followers=followers,
        columns=columns,
    )


# --------------------------------------------------------------------------- experiments
@dataclass(frozen=True, slots=True)
class VariantStats:
    name: str
    cells: tuple[str, ...]
    significant: bool


@dataclass(frozen=True, slots=True)
class ExperimentPanel:
    experiment_id: str
    kind: str
    status: str
    created: str
    started: str
    stopped: str
    variants: tuple[str, ...]
    primary_metric: str
    decision: str | None
    headers: tuple[str, ...]
    stats: tuple[VariantStats, ...]
    facts: tuple[tuple[str, str], ...]
    note: str | None


@dataclass(frozen=True, slots=True)
class ExperimentsView:
    available: bool
    note: str | None
    experiments: tuple[ExperimentPanel, ...]


_VARIANT_HEADERS = ("Users", "Exposures", "Outcomes", "Rate [95% CI]", "Lift [95% CI]", "p")


def _interval(x: object) -> tuple[float | None, float | None]:
    if isinstance(x, Mapping):
        lo = x.get("low", x.get("lo", x.get("lower")))
        hi = x.get("high", x.get("hi", x.get("upper")))
        return number(lo), number(hi)
    if isinstance(x, (list, tuple)) and len(x) == 2:
        return number(x[0]), number(x[1])
    return None, None


def _with_ci(value: object, ci: object, fmt: str = "share") -> str:
    f = fmt_share if fmt == "share" else fmt_number
    lo, hi = _interval(ci)
    base = f(value)
    if lo is None or hi is None:
        return base
    return f"{base} [{f(lo)}, {f(hi)}]"


def _variant_stats(v: Mapping[str, object]) -> VariantStats:
    comparison = _mapping(v.get("comparison"))
    lift = _with_ci(comparison.get("lift"), comparison.get("lift_ci")) if comparison else "control"
    p = fmt_number(comparison.get("p_value"), 3) if comparison else DASH
    seq = number(v.get("sequential_p_value"))
    if seq is not None and comparison:
        p = f"{p} (sequential {seq:.3f})"
    cells = (
        fmt_number(v.get("users")),
        fmt_number(v.get("exposures")),
        fmt_number(v.get("outcomes")),
        _with_ci(v.get("rate"), v.get("rate_ci")),
        lift,
        p,
    )
    return VariantStats(str(v.get("name", "")), cells, bool(v.get("significant")))


def _results_of(store: Store, experiment_id: str) -> tuple[dict[str, object] | None, str | None]:
    """The live analysis of one experiment (helper B's `experiment_results`), or why none."""
    try:
        from serendip.service.experiments import experiment_results
    except ImportError:
        return None, "The experiment analysis is not available in this build."
    try:
        return experiment_results(store, experiment_id), None
    except SerendipError as exc:
        return None, str(exc)
    except Exception as exc:  # an analysis bug must not take the page down
        log.exception("analysis of experiment %s failed", experiment_id)
        return None, f"the analysis failed: {type(exc).__name__}: {exc}"


def experiments_view(store: Store) -> ExperimentsView:
    """Every experiment (running first, then newest), with its live statistics once started:
    per variant users, exposures, outcomes, rate and lift with CIs, p-values, the decision."""
    try:
        experiments = store.experiments.list()
    except SerendipError as exc:
        return ExperimentsView(False, f"experiments cannot be read: {exc}", ())
    order = {"running": 0, "draft": 1, "stopped": 2}
    experiments.sort(key=lambda e: (order.get(e.status, 3), -e.created_at))
    panels = []
    for exp in experiments:
        spec = exp.spec
        variants = tuple(
            f"{name} → {version or 'active model'}" for name, version in _variants(spec)
        )
        decision: str | None = None
        stats: tuple[VariantStats, ...] = ()
        facts: list[tuple[str, str]] = []
        note: str | None = None
        if exp.started_at is None:
            note = "Not started: no statistics yet."
        else:
            results, note = _results_of(store, exp.experiment_id)
            if results is not None:
                d = results.get("decision")
                decision = None if d is None else str(d)
                raw = results.get("variants")
                if isinstance(raw, list):
                    stats = tuple(_variant_stats(v) for v in raw if isinstance(v, Mapping))
                for key, value in results.items():
                    if (
                        key in ("variants", "decision", "guardrails")
                        or value is None
                        or isinstance(value, (Mapping, list))
                    ):
                        continue
                    moment = key in ("start", "end") or key.endswith("_at")
                    shown = fmt_time(number(value)) if moment else _fact(value)
                    facts.append((key.replace("_", " "), shown))
                srm = _mapping(results.get("srm"))
                if srm:
                    facts.append(
                        (
                            "sample ratio",
                            f"p = {fmt_number(srm.get('p_value'), 3)}"
                            + (" — MISMATCH" if srm.get("mismatch") else " — ok"),
                        )
                    )
                guardrails = results.get("guardrails")
                if isinstance(guardrails, list):
                    for g in guardrails:
                        if isinstance(g, Mapping):
                            facts.append(
                                (
                                    f"guardrail {g.get('metric')} ({g.get('variant')})",
                                    f"lift {fmt_share(g.get('lift'))}, p = "
                                    f"{fmt_number(g.get('p_value'), 3)}"
                                    + (" — VIOLATED" if g.get("violated") else ""),
                                )
                            )
        panels.append(
            ExperimentPanel(
                experiment_id=exp.experiment_id,
                kind=exp.kind,
                status=exp.status,
                created=fmt_time(exp.created_at),
                started=fmt_time(exp.started_at),
                stopped=fmt_time(exp.stopped_at),
                variants=variants,
                primary_metric=str(spec.get("primary_metric", "click")),
                decision=decision,
                headers=_VARIANT_HEADERS,
                stats=stats,
                facts=tuple(facts),
                note=note,
            )
        )
    return ExperimentsView(True, None, tuple(panels))


def _fact(value: object) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (int, float)):
        return fmt_number(value)
    return DASH if value is None else str(value)


# --------------------------------------------------------------------------- monitors
@dataclass(frozen=True, slots=True)
class MonitorRow:
    name: str
    kind: str
    value: str
    bounds: str
    n: int
    state: str  # "ok", "out" or "no data"
    note: str
    description: str


@dataclass(frozen=True, slots=True)
class MonitorsView:
    available: bool
    note: str | None
    window: str
    rows: tuple[MonitorRow, ...]

    @property
    def out_of_bounds(self) -> int:
        return sum(r.state == "out" for r in self.rows)


def monitors_view(store: Store, monitors_file: Path | None) -> MonitorsView:
    """Every live quality and drift monitor over the current window, against its bounds
    (`serendip.operations.monitors`, thresholds from `monitors_file`)."""
    try:
        from serendip.operations.config import load_monitor_config
        from serendip.operations.monitors import run_monitors
    except ImportError:
        return MonitorsView(False, "The monitors are not available in this build.", "", ())
    try:
        report = run_monitors(store, load_monitor_config(monitors_file))
    except SerendipError as exc:
        return MonitorsView(False, f"The monitors could not run: {exc}", "", ())
    except Exception as exc:  # a monitor bug must not take the page down
        log.exception("monitors failed")
        return MonitorsView(False, f"The monitors failed: {type(exc).__name__}: {exc}", "", ())
    rows = []
    for r in report.results:
        lo, hi = r.bound.min, r.bound.max
        bounds = (
            "none"
            if lo is None and hi is None
            else f"{'' if lo is None else f'≥ {lo:g}'}{' and ' if lo is not None and hi is not None else ''}"
            f"{'' if hi is None else f'≤ {hi:g}'}"
        )
        state = "no data" if r.value is None else ("out" if r.out_of_bounds else "ok")
        try:
            description = r.description
        except KeyError:
            description = ""
        rows.append(
            MonitorRow(r.name, r.kind, fmt_number(r.value), bounds, r.n, state, r.note, description)
        )
    window = (
        f"current window {fmt_time(report.window_start)} – {fmt_time(report.window_end)}; "
        f"reference from {fmt_time(report.reference_start)}"
    )
    return MonitorsView(True, None, window, tuple(rows))


# --------------------------------------------------------------------------- models
@dataclass(frozen=True, slots=True)
class VersionRow:
    version: str
    name: str
    status: str
    active: bool
    loaded: bool
    created: str
    metrics: tuple[str, ...]
    error: str | None
    parent: str | None
    gate: str | None  # the retraining gate's verdict in the version's lineage


@dataclass(frozen=True, slots=True)
class ModelsView:
    active: str | None
    loaded: tuple[str, ...]
    headers: tuple[str, ...]
    versions: tuple[VersionRow, ...]
    authenticated: bool
    not_ready: str | None = None


def models_view(
    store: Store,
    runtime: ModelRuntime | None,
    *,
    authenticated: bool,
    not_ready: str | None = None,
) -> ModelsView:
    """Every registered version, newest first, with its metrics, status and whether it serves
    (active) or is loaded (an experiment variant); activate and roll back act on these."""
    versions: list[ModelVersion] = sorted(
        store.models.list(), key=lambda v: v.created_at, reverse=True
    )
    active = None if runtime is None else runtime.active_version
    loaded = tuple(() if runtime is None else runtime.loaded_versions)
    cols = _metric_keys([dict(v.metrics or {}) for v in versions])[:6]
    rows = tuple(
        VersionRow(
            version=v.version,
            name=v.name,
            status=v.status,
            active=v.version == active,
            loaded=v.version in loaded,
            created=fmt_time(v.created_at),
            metrics=tuple(fmt_number((v.metrics or {}).get(k)) for k, _ in cols),
            error=v.error,
            parent=_parent(v.lineage),
            gate=_gate(v.lineage),
        )
        for v in versions
    )
    return ModelsView(
        active=active,
        loaded=loaded,
        headers=tuple(h for _, h in cols),
        versions=rows,
        authenticated=authenticated,
        not_ready=not_ready,
    )


def _parent(lineage: Mapping[str, object] | None) -> str | None:
    if not lineage:
        return None
    p = lineage.get("parent_version", lineage.get("parent"))
    return None if p is None else str(p)


def _gate(lineage: Mapping[str, object] | None) -> str | None:
    gate = _mapping((lineage or {}).get("gate"))
    if not gate:
        return None
    verdict = "gate passed" if gate.get("passed") else "gate refused"
    reason = gate.get("reason")
    return f"{verdict}: {reason}" if reason else verdict
