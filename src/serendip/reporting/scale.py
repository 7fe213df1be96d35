"""The scale file: what the production recommender needs, measured per platform size.

A scale file is a JSON document (schema ``serendip-scale/1``) with one point per platform size::

    {"schema": "serendip-scale/1",
     "generated_by": "serendip.reporting.scale.from_benchmarks" | "<the scale benchmark>",
     "created": "2026-12-06T07:30:00Z",
     "curve": "<how points that were not measured are extrapolated>",
     "points": [
       {"name": "small", "users": 5000, "items": 20000,
        "interactions": 399833,            # events in the store
        "fit_interactions": 399833,        # events the model was fitted on (training window)
        "measured": true,                  # false: every metric projected by `curve`
        "machine": "x86_64, 2 cores",      # where it was measured ("" when projected)
        "sources": {"fit_wall_s": "benchmarks/results/pipeline.json", ...},
        "metrics": {"fit_wall_s": 123.5, "serve_capacity_rps": 675, ...}},   # see METRICS
       ...]}

Every metric is optional (``null`` or absent: not measured at that point). `load_scale` validates
a file and raises `DataError` naming the field. `from_benchmarks` builds one from the measurements
committed in ``benchmarks/results/*.json`` (the small preset, the 100K-user platform) and adds
projected points; the scale benchmark (issue 17) writes the same schema with more measured
points, and `project` reads either.

The curve: metrics whose kind is ``"loglog"`` (fit time, memory, disk) follow
``log y = a + b log x`` with x the interactions fitted on, fitted by least squares over the
measured points that have the metric (one point: b = 1, linear growth); ``"hold"`` metrics
(per-request latency, per-process capacity, per-event ingestion rate) keep the value measured at
the largest measured point, since a request reads precomputed lists whatever the platform size.
A projected point's interactions are its users times the interactions per user of the largest
measured point.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from serendip.errors import DataError

__all__ = [
    "CURVE",
    "METRICS",
    "SCHEMA",
    "MetricSpec",
    "Projection",
    "ScaleFile",
    "ScalePoint",
    "fit_interactions_for",
    "from_benchmarks",
    "load_scale",
    "loglog_slope",
    "parse_scale",
    "project",
    "scale_document",
    "write_scale",
]

SCHEMA = "serendip-scale/1"

CURVE = (
    "log-log linear in the interactions fitted on (log y = a + b log x, least squares over the "
    "measured points; b = 1 with one point) for fit time, memory and disk; per-request latency, "
    "per-process capacity and ingestion rate held at the largest measured point"
)


@dataclass(frozen=True, slots=True)
class MetricSpec:
    unit: str
    label: str
    kind: str  # "loglog" | "hold"


#: Every metric a scale point may carry.
METRICS: dict[str, MetricSpec] = {
    "fit_wall_s": MetricSpec("s", "model fit, wall", "loglog"),
    "fit_cpu_s": MetricSpec("s", "model fit, CPU", "loglog"),
    "precompute_wall_s": MetricSpec("s", "precompute lists for every user, wall", "loglog"),
    "first_start_wall_s": MetricSpec(
        "s", "first start (fit + precompute + activate), wall", "loglog"
    ),
    "peak_memory_mb": MetricSpec("MiB", "peak memory of fit and precompute", "loglog"),
    "artifact_mb": MetricSpec("MiB", "model artifact on disk", "loglog"),
    "lists_mb": MetricSpec("MiB", "precomputed lists on disk", "loglog"),
    "model_load_s": MetricSpec("s", "load the artifact into a server", "loglog"),
    "restart_to_ready_s": MetricSpec("s", "restart to /readyz", "loglog"),
    "serve_p99_ms": MetricSpec("ms", "p99 latency at 200 req/s (one process)", "hold"),
    "serve_cpu_ms_per_request": MetricSpec("ms", "server CPU per request at 200 req/s", "hold"),
    "serve_capacity_rps": MetricSpec(
        "req/s", "highest rate held at p99 <= 100 ms, one process", "hold"
    ),
    "ingest_events_per_s": MetricSpec("events/s", "event ingestion, PostgreSQL", "hold"),
}


@dataclass(frozen=True, slots=True)
class ScalePoint:
    name: str
    users: int
    items: int
    interactions: int
    fit_interactions: int
    measured: bool
    machine: str
    sources: Mapping[str, str]
    metrics: Mapping[str, float | None]


@dataclass(frozen=True, slots=True)
class ScaleFile:
    path: str
    generated_by: str
    created: str
    curve: str
    points: tuple[ScalePoint, ...]
    document: Mapping[str, Any]

    @property
    def measured(self) -> tuple[ScalePoint, ...]:
        return tuple(p for p in self.points if p.measured)


@dataclass(frozen=True, slots=True)
class Projection:
    """One metric at one platform size: the value, whether it was measured there, and how it
    was obtained (the point's JSON pointer into the scale file, or the curve's parameters)."""

    metric: str
    value: float | None
    measured: bool
    source: str


# -- loading -------------------------------------------------------------------------------


def _positive_int(value: Any, file: str, field: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise DataError(f"expected a positive integer, got {value!r}", file=file, field=field)
    return value


def parse_scale(doc: Any, file: str = "<scale>") -> ScaleFile:
    """A validated `ScaleFile` from a parsed JSON document; `DataError` names the bad field."""
    if not isinstance(doc, Mapping):
        raise DataError("a scale file is a JSON object", file=file)
    if doc.get("schema") != SCHEMA:
        raise DataError(
            f"expected schema {SCHEMA!r}, got {doc.get('schema')!r}", file=file, field="schema"
        )
    raw_points = doc.get("points")
    if not isinstance(raw_points, list) or not raw_points:
        raise DataError("expected a non-empty list of points", file=file, field="points")
    points: list[ScalePoint] = []
    names: set[str] = set()
    for i, raw in enumerate(raw_points):
        where = f"points[{i}]"
        if not isinstance(raw, Mapping):
            raise DataError("expected an object", file=file, field=where)
        name = raw.get("name")
        if not isinstance(name, str) or not name:
            raise DataError("expected a non-empty name", file=file, field=f"{where}.name")
        if name in names:
            raise DataError(f"duplicate point name {name!r}", file=file, field=f"{where}.name")
        names.add(name)
        users = _positive_int(raw.get("users"), file, f"{where}.users")
        items = _positive_int(raw.get("items"), file, f"{where}.items")
        inter = _positive_int(raw.get("interactions"), file, f"{where}.interactions")
        fit_inter = _positive_int(
            raw.get("fit_interactions", inter), file, f"{where}.fit_interactions"
        )
        measured = raw.get("measured")
        if not isinstance(measured, bool):
            raise DataError("expected true or false", file=file, field=f"{where}.measured")
        metrics = raw.get("metrics", {})
        if not isinstance(metrics, Mapping):
            raise DataError("expected an object", file=file, field=f"{where}.metrics")
        clean: dict[str, float | None] = {}
        for key, value in metrics.items():
            if key not in METRICS:
                raise DataError(
                    f"unknown metric (valid: {', '.join(METRICS)})",
                    file=file,
                    field=f"{where}.metrics.{key}",
                )
            if value is None:
                clean[key] = None
                continue
            if (
                isinstance(value, bool)
                or not isinstance(value, (int, float))
                or not math.isfinite(value)
                or value < 0
            ):
                raise DataError(
                    f"expected a non-negative number or null, got {value!r}",
                    file=file,
                    field=f"{where}.metrics.{key}",
                )
            clean[key] = float(value)
        sources = raw.get("sources", {})
        if not isinstance(sources, Mapping) or not all(
            isinstance(v, str) for v in sources.values()
        ):
            raise DataError("expected an object of strings", file=file, field=f"{where}.sources")
        machine = raw.get("machine", "")
        points.append(
            ScalePoint(
                name=name,
                users=users,
                items=items,
                interactions=inter,
                fit_interactions=fit_inter,
                measured=measured,
                machine=str(machine),
                sources=dict(sources),
                metrics=clean,
            )
        )
    if not any(p.measured for p in points):
        raise DataError(
            "no point is measured: nothing to extrapolate from", file=file, field="points"
        )
    return ScaleFile(
        path=file,
        generated_by=str(doc.get("generated_by", "")),
        created=str(doc.get("created", "")),
        curve=str(doc.get("curve", CURVE)),
        points=tuple(points),
        document=doc,
    )


def load_scale(path: Path | str) -> ScaleFile:
    """Read and validate a scale file (`DataError` on a missing file, bad JSON or a bad field)."""
    p = Path(path)
    if not p.is_file():
        raise DataError("scale file not found", file=str(p))
    try:
        doc = json.loads(p.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise DataError(f"not valid JSON: {exc.msg}", file=str(p), line=exc.lineno) from None
    return parse_scale(doc, str(p))


# -- projection ------------------------------------------------------------------------------


def _loglog(xs: Sequence[float], ys: Sequence[float]) -> tuple[float, float]:
    """(a, b) of log y = a + b log x by least squares; one point: b = 1."""
    lx = [math.log(x) for x in xs]
    ly = [math.log(max(y, 1e-9)) for y in ys]
    if len(set(lx)) < 2:
        b = 1.0
        return ly[-1] - b * lx[-1], b
    mx, my = sum(lx) / len(lx), sum(ly) / len(ly)
    b = sum((x - mx) * (y - my) for x, y in zip(lx, ly, strict=True)) / sum(
        (x - mx) ** 2 for x in lx
    )
    return my - b * mx, b


def fit_interactions_for(scale: ScaleFile, users: int) -> int:
    """Interactions fitted on at `users`: the point's own when a point has that many users,
    else users x the fit interactions per user of the largest measured point."""
    for p in scale.points:
        if p.users == users:
            return p.fit_interactions
    ref = max(scale.measured, key=lambda p: p.users)
    return round(users * ref.fit_interactions / ref.users)


def project(scale: ScaleFile, users: int) -> dict[str, Projection]:
    """Every metric of METRICS at a platform of `users` users.

    A measured point with exactly `users` users gives its measured values (source: a pointer
    ``points/<i>/metrics/<metric>``); the rest follow the curve from the measured points
    (source: ``curve <metric>: ...`` with its parameters). A metric no measured point has is None.
    """
    index = {p.name: i for i, p in enumerate(scale.points)}
    exact = next((p for p in scale.measured if p.users == users), None)
    x = fit_interactions_for(scale, users)
    out: dict[str, Projection] = {}
    for metric, spec in METRICS.items():
        if exact is not None and exact.metrics.get(metric) is not None:
            out[metric] = Projection(
                metric, exact.metrics[metric], True, f"points/{index[exact.name]}/metrics/{metric}"
            )
            continue
        have = sorted(
            (p for p in scale.measured if p.metrics.get(metric) is not None),
            key=lambda p: p.fit_interactions,
        )
        if not have:
            out[metric] = Projection(metric, None, False, "not measured at any point")
            continue
        if spec.kind == "hold":
            ref = max(have, key=lambda p: p.users)
            out[metric] = Projection(
                metric,
                ref.metrics[metric],
                False,
                f"curve {metric}: held at point '{ref.name}' (points/{index[ref.name]}/metrics/{metric})",
            )
            continue
        xs = [float(p.fit_interactions) for p in have]
        ys = [float(p.metrics[metric] or 0.0) for p in have]
        a, b = _loglog(xs, ys)
        value = math.exp(a + b * math.log(x))
        pts = ", ".join(p.name for p in have)
        out[metric] = Projection(
            metric,
            value,
            False,
            f"curve {metric}: log y = {a:.4f} + {b:.4f} log x over {pts}; x = {x:,} interactions",
        )
    return out


def loglog_slope(scale: ScaleFile, metric: str) -> float:
    """The fitted exponent b of `metric` (1.0 when fewer than two measured points have it)."""
    have = [p for p in scale.measured if p.metrics.get(metric) is not None]
    if len(have) < 2:
        return 1.0
    return _loglog(
        [float(p.fit_interactions) for p in have], [float(p.metrics[metric] or 0) for p in have]
    )[1]


# -- building from the committed benchmarks -------------------------------------------------


def _read(results_dir: Path, name: str) -> dict[str, Any] | None:
    path = results_dir / name
    if not path.is_file():
        return None
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise DataError(f"not valid JSON: {exc.msg}", file=str(path), line=exc.lineno) from None
    return doc if isinstance(doc, dict) else None


def _number(x: Any) -> float | None:
    return float(x) if isinstance(x, (int, float)) and not isinstance(x, bool) else None


def _at_rate(serve: Mapping[str, Any], rate: int, key: str) -> float | None:
    for row in serve.get("latency", []) or []:
        if isinstance(row, Mapping) and row.get("rate") == rate:
            return _number(row.get(key))
    return None


def _serve_metrics(
    serve: Mapping[str, Any], src: str
) -> tuple[dict[str, float | None], dict[str, str]]:
    proc = serve.get("in_process") or {}
    cold = serve.get("cold_start") or {}
    ingest = (serve.get("ingestion") or {}).get("postgresql") or {}
    metrics: dict[str, float | None] = {
        "serve_p99_ms": _at_rate(serve, 200, "p99_ms"),
        "serve_cpu_ms_per_request": _at_rate(serve, 200, "server_cpu_ms"),
        "serve_capacity_rps": _number(serve.get("highest_rate_p99_under_100ms")),
        "model_load_s": _number(proc.get("model_load_wall_s")),
        "restart_to_ready_s": _number(cold.get("restart_to_ready_s")),
        "ingest_events_per_s": _number(ingest.get("events_per_s")),
        "first_start_wall_s": _number(cold.get("first_start_s")),
    }
    return metrics, {k: src for k, v in metrics.items() if v is not None}


# The platform benchmark's note records its fit in prose; these patterns read it.
_NOTE_PATTERNS: dict[str, re.Pattern[str]] = {
    "fit_interactions": re.compile(r"last 14 days of events \(([\d,]+) of"),
    "fit_wall_s": re.compile(r"\bfit (\d+(?:\.\d+)?) s\b"),
    "precompute_wall_s": re.compile(r"precomputed for all [\d,]+ users in (\d+(?:\.\d+)?) s"),
    "lists_mb": re.compile(r"users in \d+(?:\.\d+)? s \((\d+(?:\.\d+)?) MB"),
    "first_start_wall_s": re.compile(r"first start (\d+(?:\.\d+)?) s wall"),
    "fit_cpu_s": re.compile(r"first start \d+(?:\.\d+)? s wall, (\d+(?:\.\d+)?) s CPU"),
    "peak_memory_gb": re.compile(r"peak RSS (\d+(?:\.\d+)?) GB"),
}


def _from_note(note: str) -> dict[str, float]:
    found: dict[str, float] = {}
    for key, pattern in _NOTE_PATTERNS.items():
        m = pattern.search(note)
        if m:
            found[key] = float(m.group(1).replace(",", ""))
    return found


def scale_document(
    results_dir: Path | str, *, targets: Sequence[int] = (50_000, 1_000_000, 10_000_000)
) -> dict[str, Any]:
    """The scale JSON built from ``benchmarks/results``: measured points for the small preset
    (serve-small.json, pipeline.json) and the 100K-user platform (serve.json, its note), plus
    projected points at `targets` users (those no measured point has). `DataError` when neither
    measured point can be built."""
    rdir = Path(results_dir)
    points: list[dict[str, Any]] = []
    small = _read(rdir, "serve-small.json")
    pipe = _read(rdir, "pipeline.json")
    if small is not None:
        metrics, sources = _serve_metrics(small, "benchmarks/results/serve-small.json")
        fit_inter = None
        if pipe is not None:
            ps = (pipe.get("datasets") or {}).get("small") or {}
            fit_inter = ps.get("n_interactions")
            p_pipe = ps.get("pipeline") or {}
            for key, value in (
                ("fit_wall_s", p_pipe.get("fit_s")),
                ("artifact_mb", (ps.get("latency") or {}).get("artifact_mb")),
            ):
                if _number(value) is not None:
                    metrics[key] = _number(value)
                    sources[key] = "benchmarks/results/pipeline.json"
        inter = int(fit_inter) if isinstance(fit_inter, int) else None
        points.append(
            {
                "name": "small",
                "users": int(small["n_users"]),
                "items": int(small["n_items"]),
                "interactions": inter or int(small["n_users"]) * 80,
                "fit_interactions": inter or int(small["n_users"]) * 80,
                "measured": True,
                "machine": str(small.get("machine", "")),
                "sources": sources,
                "metrics": metrics,
            }
        )
    platform = _read(rdir, "serve.json")
    analyze = _read(rdir, "analyze.json")
    if platform is not None:
        metrics, sources = _serve_metrics(platform, "benchmarks/results/serve.json")
        note = _from_note(str(platform.get("note", "")))
        src_note = "benchmarks/results/serve.json (note)"
        for key in (
            "fit_wall_s",
            "precompute_wall_s",
            "lists_mb",
            "first_start_wall_s",
            "fit_cpu_s",
        ):
            if key in note:
                metrics[key] = note[key]
                sources[key] = src_note
        if "peak_memory_gb" in note:
            metrics["peak_memory_mb"] = note["peak_memory_gb"] * 1024.0
            sources["peak_memory_mb"] = src_note
        interactions = None
        if analyze is not None:
            interactions = (analyze.get("dataset") or {}).get("interactions")
        n_users = int(platform["n_users"])
        inter = int(interactions) if isinstance(interactions, int) else n_users * 200
        points.append(
            {
                "name": "platform",
                "users": n_users,
                "items": int(platform["n_items"]),
                "interactions": inter,
                "fit_interactions": int(note.get("fit_interactions", inter)),
                "measured": True,
                "machine": str(platform.get("machine", "")),
                "sources": sources,
                "metrics": metrics,
            }
        )
    if not points:
        raise DataError(
            "no serve-small.json or serve.json benchmark to build a scale file from", file=str(rdir)
        )
    doc: dict[str, Any] = {
        "schema": SCHEMA,
        "generated_by": "serendip.reporting.scale.from_benchmarks",
        "created": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "curve": CURVE,
        "points": points,
    }
    measured = parse_scale(doc, str(rdir))
    ref = max(measured.measured, key=lambda p: p.users)
    for users in targets:
        if any(p["users"] == users for p in points):
            continue
        proj = project(measured, users)
        points.append(
            {
                "name": f"{users:,} users (projected)",
                "users": users,
                "items": round(users * ref.items / ref.users),
                "interactions": round(users * ref.interactions / ref.users),
                "fit_interactions": fit_interactions_for(measured, users),
                "measured": False,
                "machine": "",
                "sources": {k: v.source for k, v in proj.items() if v.value is not None},
                "metrics": {k: v.value for k, v in proj.items()},
            }
        )
    return doc


def from_benchmarks(results_dir: Path | str) -> ScaleFile:
    """The scale file built from the committed benchmark results (see `scale_document`)."""
    return parse_scale(scale_document(results_dir), str(results_dir))


def write_scale(doc: Mapping[str, Any], path: Path | str) -> Path:
    """Write a scale document as indented JSON (validated first)."""
    parse_scale(doc, str(path))
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
    return p
