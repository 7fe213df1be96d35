"""`write_leaderboard`: the study's results.json as a standalone HTML page with PNG plots.

The page answers "which approach should this platform run, at what cost?": per dataset x protocol a
table of every model (accuracy, NDCG@10 against the best baseline with its bootstrap interval and a
significance marker, beyond-accuracy metrics and cost), the accuracy/coverage and accuracy/novelty
trade-off, a forest plot of the NDCG differences, and per dataset the cold-start and cost bars.

It reads only the results.json dict (rows, significance, study), so a leaderboard can be rebuilt
from an old results file. Anything a cell lacks (no social graph -> no out-of-network share, a
failed cell, a cost that was not measured) shows as "–" and never stops the page. Plots are written
to `plots/` and embedded as data URIs (the page opens on its own, mailed or attached), the way
`serendip.data.analysis` writes its report; matplotlib is used through its object API with the Agg
canvas only, imported lazily.
"""

from __future__ import annotations

import base64
import json
import math
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

from serendip.errors import ConfigError
from serendip.evaluation.study.significance import pick_baselines

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = ["PROTOCOL_ORDER", "write_leaderboard"]

#: Protocols in the order the page shows them; unknown ones follow, in order of appearance.
PROTOCOL_ORDER: tuple[str, ...] = ("random", "temporal", "leave-last", "cold-users", "cold-items")
_COLD_PROTOCOLS = ("cold-users", "cold-items")
_SLICES = ("cold", "light", "heavy")
_PLOT_PREFIXES = ("tradeoff-", "ci-", "cold-start-", "cost-")
_DASH = "–"
_METRIC = "ndcg@10"

# One colour and marker per kind of row, shared by the table badges and every plot.
_KIND_STYLE: dict[str, tuple[str, str, str]] = {
    # kind: (colour, marker, legend label)
    "model": ("#2563eb", "o", "Serendip model"),
    "baseline": ("#64748b", "s", "baseline"),
    "peer": ("#d97706", "^", "peer library"),
    "pipeline": ("#0d9488", "*", "Serendip pipeline"),
}
_RED = "#b91c1c"
_SERIES_COLOURS = ("#1e3a8a", "#0d9488", "#94a3b8", "#60a5fa", "#d97706")


# --------------------------------------------------------------------------- view model
@dataclass(frozen=True, slots=True)
class _Plot:
    """One figure: file under plots/, caption, and the PNG as a data URI."""

    file: str
    caption: str
    data_uri: str


@dataclass(frozen=True, slots=True)
class _Cell:
    text: str
    sort: float | None = None
    title: str = ""
    sub: str = ""  # a second, smaller line (NDCG difference and interval)
    marker: str = ""
    marker_class: str = ""


@dataclass(frozen=True, slots=True)
class _Column:
    key: str
    header: str
    title: str
    make: Callable[[_Row], _Cell]
    numeric: bool = True


@dataclass(slots=True)
class _Row:
    """One ok result row, flattened for the table and the plots."""

    model: str
    kind: str  # "model" | "peer" | "pipeline" (as given)
    family: str
    is_baseline: bool
    metrics: Mapping[str, Any]
    slices: Mapping[str, Any]
    cost: Mapping[str, Any]
    params: Any
    tuning: Any
    comparison: Mapping[str, Any] | None
    cells: list[_Cell] = field(default_factory=list)
    audit: Mapping[str, Any] = field(default_factory=dict)
    audit_cells: list[_Cell] = field(default_factory=list)

    @property
    def style_kind(self) -> str:
        """The colour/marker key: baselines apart from other models, unknown kinds as models."""
        if self.is_baseline:
            return "baseline"
        return self.kind if self.kind in _KIND_STYLE else "model"

    def metric(self, name: str) -> float | None:
        return _number(self.metrics.get(name))


@dataclass(slots=True)
class _Group:
    """One dataset x protocol: its table, plots and failed cells."""

    dataset: str
    protocol: str
    anchor: str
    baseline: str | None
    rows: list[_Row]
    failed: list[Mapping[str, Any]]
    columns: list[_Column] = field(default_factory=list)
    comparisons: list[Mapping[str, Any]] = field(default_factory=list)
    plots: list[_Plot] = field(default_factory=list)
    audit_anchor: str = ""
    audit_columns: list[_Column] = field(default_factory=list)


@dataclass(slots=True)
class _DatasetView:
    name: str
    anchor: str
    groups: list[_Group]
    plots: list[_Plot] = field(default_factory=list)


# --------------------------------------------------------------------------- entry point
def write_leaderboard(results: Mapping[str, Any], out_dir: Path | str) -> Path:
    """Write `leaderboard.html` and `plots/*.png` into out_dir (created) from a results.json dict.

    results: {"study": {...}, "rows": [row, ...], "significance": [comparison, ...]} as the study
    runner writes it (see the row shape in the study docs); `study` and `significance` may be absent.
    Returns out_dir / "leaderboard.html". Raises ConfigError when `rows` is missing or a row lacks
    its dataset, protocol or model; missing metrics and costs are shown as "–".

    >>> results = json.loads(Path("out/study/results.json").read_text())  # doctest: +SKIP
    >>> write_leaderboard(results, Path("out/study"))  # doctest: +SKIP
    PosixPath('out/study/leaderboard.html')
    """
    rows = _validated_rows(results)
    out = Path(out_dir)
    plots_dir = out / "plots"
    plots_dir.mkdir(parents=True, exist_ok=True)
    # Plots of an earlier leaderboard in the same folder (another dataset, a removed protocol)
    # would otherwise linger next to the new page.
    for old in plots_dir.glob("*.png"):
        if old.name.startswith(_PLOT_PREFIXES):
            old.unlink()

    study = results.get("study")
    study = study if isinstance(study, Mapping) else {}
    significance = results.get("significance")
    comparisons = (
        [c for c in significance if isinstance(c, Mapping)]
        if isinstance(significance, list)
        else []
    )
    datasets = _build(rows, comparisons)
    names = _UniqueNames()
    for ds in datasets:
        for g in ds.groups:
            g.columns = _columns(g)
            for r in g.rows:
                r.cells = [c.make(r) for c in g.columns]
            if any(r.audit for r in g.rows):
                g.audit_columns = _audit_columns(g)
                for r in g.rows:
                    r.audit_cells = [c.make(r) for c in g.audit_columns]
            g.plots = _group_plots(g, plots_dir, names)
        ds.plots = _dataset_plots(ds, plots_dir, names)

    failures = [r for r in rows if r.get("status") != "ok"]
    html = _render(study, datasets, failures, rows, _privacy_view(results.get("dp_sweep")))
    path = out / "leaderboard.html"
    path.write_text(html, encoding="utf-8")
    return path


def _validated_rows(results: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    if not isinstance(results, Mapping):
        raise ConfigError(f"results must be the results.json object, got {type(results).__name__}")
    rows = results.get("rows")
    if not isinstance(rows, list):
        raise ConfigError("results has no 'rows' list (expected the study's results.json)")
    for i, row in enumerate(rows):
        if not isinstance(row, Mapping):
            raise ConfigError(f"results rows[{i}] must be an object, got {type(row).__name__}")
        for key in ("dataset", "protocol", "model"):
            if not isinstance(row.get(key), str) or not row[key]:
                raise ConfigError(f"results rows[{i}] has no '{key}' (a non-empty string)")
    return rows


def _build(
    rows: Sequence[Mapping[str, Any]], comparisons: Sequence[Mapping[str, Any]]
) -> list[_DatasetView]:
    by_cell: dict[tuple[str, str, str], Mapping[str, Any]] = {}
    baseline_of: dict[tuple[str, str], str] = {}
    for c in comparisons:
        key = (str(c.get("dataset")), str(c.get("protocol")), str(c.get("model")))
        by_cell[key] = c
        if isinstance(c.get("baseline"), str):
            baseline_of.setdefault(key[:2], c["baseline"])
    for cell, name in pick_baselines(rows, metric=_METRIC).items():
        baseline_of.setdefault(cell, name)

    cells: dict[str, dict[str, list[Mapping[str, Any]]]] = {}
    for row in rows:
        cells.setdefault(row["dataset"], {}).setdefault(row["protocol"], []).append(row)

    anchors = _UniqueNames()
    datasets: list[_DatasetView] = []
    for dataset, protocols in cells.items():
        groups: list[_Group] = []
        for protocol in _ordered_protocols(protocols):
            baseline = baseline_of.get((dataset, protocol))
            ok: list[_Row] = []
            failed: list[Mapping[str, Any]] = []
            for row in protocols[protocol]:
                if row.get("status") != "ok":
                    failed.append(row)
                    continue
                ok.append(
                    _Row(
                        model=row["model"],
                        kind=str(row.get("kind") or "model"),
                        family=str(row.get("family") or ""),
                        is_baseline=row["model"] == baseline,
                        metrics=_mapping(row.get("metrics")),
                        slices=_mapping(row.get("slices")),
                        cost=_mapping(row.get("cost")),
                        params=row.get("params"),
                        tuning=row.get("tuning"),
                        comparison=by_cell.get((dataset, protocol, row["model"])),
                        audit=_mapping(row.get("audit")),
                    )
                )
            ok.sort(key=lambda r: (-(r.metric(_METRIC) or -math.inf), r.model))
            group_comparisons = [
                c for (d, p, _), c in by_cell.items() if d == dataset and p == protocol
            ]
            group_comparisons.sort(key=lambda c: -(_number(c.get("mean_diff")) or 0.0))
            groups.append(
                _Group(
                    dataset=dataset,
                    protocol=protocol,
                    anchor=anchors.get(f"{dataset}-{protocol}"),
                    baseline=baseline,
                    rows=ok,
                    failed=failed,
                    comparisons=group_comparisons,
                    audit_anchor=anchors.get(f"audit-{dataset}-{protocol}"),
                )
            )
        datasets.append(_DatasetView(dataset, anchors.get(dataset), groups))
    return datasets


def _ordered_protocols(protocols: Iterable[str]) -> list[str]:
    names = list(protocols)
    known = [p for p in PROTOCOL_ORDER if p in names]
    return known + [p for p in names if p not in PROTOCOL_ORDER]


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


class _UniqueNames:
    """File-name and anchor slugs, unique within one page ("ml-100k", then "ml-100k-2")."""

    def __init__(self) -> None:
        self._seen: set[str] = set()

    def get(self, text: str) -> str:
        base = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "x"
        name, n = base, 1
        while name in self._seen:
            n += 1
            name = f"{base}-{n}"
        self._seen.add(name)
        return name


# --------------------------------------------------------------------------- formatting
def _number(x: Any) -> float | None:
    """A finite float, or None for anything else (missing, None, NaN, text)."""
    if isinstance(x, bool) or not isinstance(x, int | float):
        return None
    v = float(x)
    return v if math.isfinite(v) else None


def fmt_metric(x: Any, digits: int = 4) -> str:
    v = _number(x)
    return _DASH if v is None else f"{v:.{digits}f}"


def fmt_share(x: Any) -> str:
    v = _number(x)
    return _DASH if v is None else f"{100 * v:.1f}%"


def fmt_signed(x: Any, digits: int = 4) -> str:
    v = _number(x)
    return _DASH if v is None else f"{v:+.{digits}f}"


def fmt_seconds(x: Any) -> str:
    v = _number(x)
    if v is None:
        return _DASH
    if v < 1:
        return f"{1000 * v:.0f} ms"
    if v < 120:
        return f"{v:.1f} s"
    if v < 7200:
        return f"{v / 60:.1f} min"
    return f"{v / 3600:.1f} h"


def fmt_mb(x: Any) -> str:
    v = _number(x)
    if v is None:
        return _DASH
    if v < 1:
        return f"{1024 * v:.0f} KB"
    if v < 1024:
        return f"{v:.3g} MB" if v < 100 else f"{v:.0f} MB"
    return f"{v / 1024:.2f} GB"


def fmt_ms(x: Any) -> str:
    v = _number(x)
    if v is None:
        return _DASH
    if v < 0.1:
        return f"{1000 * v:.0f} µs"
    return f"{v:.3g} ms" if v < 100 else f"{v:.0f} ms"


def fmt_p(x: Any) -> str:
    v = _number(x)
    if v is None:
        return _DASH
    return "< 0.0001" if v < 1e-4 else f"{v:.4f}"


# --------------------------------------------------------------------------- table columns
def _metric_column(key: str, header: str, title: str, fmt: Callable[[Any], str]) -> _Column:
    def make(r: _Row) -> _Cell:
        v = r.metric(key)
        return _Cell(fmt(v), v)

    return _Column(key, header, title, make)


def _cost_column(key: str, header: str, title: str, fmt: Callable[[Any], str]) -> _Column:
    def make(r: _Row) -> _Cell:
        v = _number(r.cost.get(key))
        return _Cell(fmt(v), v)

    return _Column(key, header, title, make)


def _ndcg_cell(r: _Row) -> _Cell:
    value = r.metric(_METRIC)
    text = fmt_metric(value)
    if r.is_baseline:
        return _Cell(
            text, value, "the best baseline: the reference of the comparisons", "reference"
        )
    c = r.comparison
    if c is None:
        return _Cell(text, value)
    diff, low, high = (_number(c.get(k)) for k in ("mean_diff", "ci_low", "ci_high"))
    sub = f"Δ {fmt_signed(diff)} [{fmt_signed(low)}, {fmt_signed(high)}]"
    p, p_adj = c.get("p_value"), c.get("p_adjusted")
    significant = bool(c.get("significant"))
    title = (
        f"vs {c.get('baseline', 'baseline')}: mean difference {fmt_signed(diff)}, "
        f"bootstrap interval [{fmt_signed(low)}, {fmt_signed(high)}], "
        f"Wilcoxon p = {fmt_p(p)}, adjusted p = {fmt_p(p_adj)}"
    )
    if significant and (diff or 0.0) > 0:
        marker, cls = "▲", "sig-up"
    elif significant:
        marker, cls = "▼", "sig-down"
    else:
        marker, cls = "n.s.", "sig-ns"
    return _Cell(text, value, title, sub, marker, cls)


def _columns(g: _Group) -> list[_Column]:
    def name_cell(r: _Row) -> _Cell:
        params = r.params if isinstance(r.params, Mapping) else {}
        title = ", ".join(f"{k}={v}" for k, v in params.items())
        return _Cell(r.model, None, title)

    cols = [
        _Column(
            "model",
            "Model",
            "model name (hover: hyperparameters of the test run)",
            name_cell,
            numeric=False,
        ),
        _Column(
            "kind",
            "Kind",
            "Serendip model, peer library or the production pipeline; family",
            lambda r: _Cell(r.kind, None, r.family, r.family),
            numeric=False,
        ),
        _Column(
            _METRIC,
            "NDCG@10",
            "NDCG@10; Δ = mean per-user difference to the best baseline [bootstrap interval]; "
            "▲/▼ significantly better/worse after the multiple-comparison correction",
            _ndcg_cell,
        ),
        _metric_column("precision@10", "P@10", "precision at 10", fmt_metric),
        _metric_column("recall@10", "R@10", "recall at 10", fmt_metric),
        _metric_column("map@10", "MAP@10", "mean average precision at 10", fmt_metric),
        _metric_column(
            "hit_rate@10", "HitRate@10", "share of users with a hit in the top 10", fmt_metric
        ),
        _metric_column(
            "coverage@10", "Coverage", "distinct recommended items / catalog (top 10)", fmt_share
        ),
        _metric_column(
            "novelty@10",
            "Novelty",
            "mean self-information of the top 10, bits",
            lambda v: fmt_metric(v, 2),
        ),
        _metric_column(
            "ild@10",
            "Diversity",
            "intra-list diversity of the top 10 (content distance)",
            lambda v: fmt_metric(v, 3),
        ),
        _metric_column(
            "serendipity@10",
            "Serendipity",
            "hits the popularity top 10 would not show, / 10",
            fmt_metric,
        ),
    ]
    if any(r.metric("oon_share@10") is not None for r in g.rows):
        cols.append(
            _metric_column(
                "oon_share@10",
                "Out-of-network",
                "share of the top 10 from outside the user's network",
                fmt_share,
            )
        )
    cols += [
        _cost_column(
            "fit_seconds", "Fit", "fit time on the full train (after tuning)", fmt_seconds
        ),
        _cost_column("peak_memory_mb", "Peak mem", "peak memory during fit", fmt_mb),
        _cost_column("model_size_mb", "Size", "model size on disk", fmt_mb),
        _cost_column(
            "recommend_single_p50_ms", "p50", "latency of one user's recommendation, median", fmt_ms
        ),
        _cost_column(
            "recommend_single_p99_ms",
            "p99",
            "latency of one user's recommendation, 99th percentile",
            fmt_ms,
        ),
    ]
    return cols


# --------------------------------------------------------------------------- audit table
def _audit_value(key: str, fmt: Callable[[Any], str]) -> Callable[[_Row], _Cell]:
    def make(r: _Row) -> _Cell:
        v = _number(r.audit.get(key))
        return _Cell(fmt(v), v)

    return make


def _group_title(r: _Row, key: str, fmt: Callable[[Any], str]) -> str:
    """Per activity group values of `key` for a cell's hover text: "q1 (1-4 items) 0.12; ..."."""
    groups = _mapping(r.audit.get("groups"))
    parts = []
    for name, g in groups.items():
        g = _mapping(g)
        parts.append(
            f"{name} ({g.get('min_history', '?')}–{g.get('max_history', '?')} items): "
            f"{fmt(g.get(key))}"
        )
    return "; ".join(parts)


def _fmt_pct(v: Any) -> str:
    return fmt_metric(v, 3)


def _audit_columns(g: _Group) -> list[_Column]:
    """The bias and discovery audit of each model of a group (`serendip.evaluation.audit`)."""
    from serendip.evaluation.audit import AUDIT_DESCRIPTIONS as D

    def with_groups(key: str, group_key: str, fmt: Callable[[Any], str]) -> Callable[[_Row], _Cell]:
        def make(r: _Row) -> _Cell:
            v = _number(r.audit.get(key))
            return _Cell(fmt(v), v, _group_title(r, group_key, fmt))

        return make

    cols = [
        _Column("model", "Model", "model name", lambda r: _Cell(r.model), numeric=False),
        _Column(
            "rec_pct",
            "Pop. pct recs",
            D["rec_popularity_pct"],
            _audit_value("rec_popularity_pct", _fmt_pct),
        ),
        _Column(
            "hist_pct",
            "Pop. pct history",
            D["history_popularity_pct"],
            _audit_value("history_popularity_pct", _fmt_pct),
        ),
        _Column(
            "lift",
            "Popularity lift",
            D["popularity_lift"],
            _audit_value("popularity_lift", fmt_share),
        ),
        _Column(
            "tail",
            "Long-tail share",
            D["tail_share"] + " (hover: per activity group)",
            with_groups("tail_share", "tail_share", fmt_share),
        ),
        _Column(
            "new",
            "New-author share",
            D["new_author_share"],
            _audit_value("new_author_share", fmt_share),
        ),
        _Column(
            "gap",
            "NDCG gap",
            D["ndcg_gap"] + " (hover: NDCG per activity quartile, lightest first)",
            with_groups("ndcg_gap", "ndcg", fmt_metric),
        ),
        _Column("ratio", "NDCG ratio", D["ndcg_ratio"], _audit_value("ndcg_ratio", _fmt_pct)),
    ]
    if any(_number(r.audit.get("oon_share")) is not None for r in g.rows):
        cols += [
            _Column(
                "oon", "Out-of-network recs", D["oon_share"], _audit_value("oon_share", fmt_share)
            ),
            _Column(
                "oon_hits",
                "Out-of-network hits",
                D["oon_hit_share"],
                _audit_value("oon_hit_share", fmt_share),
            ),
        ]
    return cols


def audit_reference(g: _Group) -> str:
    """The catalog's own long-tail and new-author shares (the same for every model)."""
    for r in g.rows:
        tail, new = (
            _number(r.audit.get("tail_catalog_share")),
            _number(r.audit.get("new_author_catalog_share")),
        )
        if tail is not None:
            text = f"long tail = {fmt_share(tail)} of the catalog"
            hist = _number(r.audit.get("tail_history_share"))
            if hist is not None:
                text += f" and {fmt_share(hist)} of the users' histories"
            if new is not None:
                text += f"; new authors' items = {fmt_share(new)} of the catalog"
            return text
    return ""


# --------------------------------------------------------------------------- privacy sweep
@dataclass(frozen=True, slots=True)
class _PrivacyRow:
    model: str
    point: str
    mechanism: str
    max_per_user: str
    scale: str
    ndcg: str
    change: str
    change_class: str
    recall: str
    coverage: str
    lift: str
    tail: str
    released: str
    status: str


@dataclass(frozen=True, slots=True)
class _PrivacyGroup:
    dataset: str
    protocol: str
    rows: list[_PrivacyRow]


def _privacy_view(sweep: Any) -> dict[str, Any] | None:
    """The DP sweep's table per dataset x protocol, or None when the study ran none."""
    if not isinstance(sweep, Mapping) or not isinstance(sweep.get("rows"), list):
        return None
    groups: dict[tuple[str, str], list[Mapping[str, Any]]] = {}
    for row in sweep["rows"]:
        if isinstance(row, Mapping):
            groups.setdefault((str(row.get("dataset")), str(row.get("protocol"))), []).append(row)
    out = []
    for (dataset, protocol), rows in groups.items():
        reference = {
            str(r.get("model")): _number(_mapping(r.get("metrics")).get(_METRIC))
            for r in rows
            if _mapping(r.get("dp")).get("point") == "none"
        }
        view = []
        for r in rows:
            dp = _mapping(r.get("dp"))
            release = _mapping(dp.get("release"))
            params = _mapping(r.get("params"))
            metrics = _mapping(r.get("metrics"))
            audit = _mapping(r.get("audit"))
            ndcg = _number(metrics.get(_METRIC))
            ref = reference.get(str(r.get("model")))
            change, cls = _DASH, ""
            if ndcg is not None and ref and dp.get("point") != "none":
                rel = ndcg / ref - 1.0
                change, cls = f"{100 * rel:+.1f}%", ("sig-down" if rel < -0.01 else "sig-ns")
            point = str(dp.get("point", ""))
            label = {"none": "none (exact)", "clip": "∞ (bound only)"}.get(point, f"ε = {point}")
            if release:
                mech = str(release.get("mechanism", ""))
                if release.get("delta"):
                    mech += f" (δ = {release['delta']:g})"
            else:
                mech = _DASH
            view.append(
                _PrivacyRow(
                    model=str(r.get("model")),
                    point=label,
                    mechanism=mech,
                    max_per_user=str(
                        release.get("max_per_user", params.get("dp_max_per_user", _DASH))
                    )
                    if release
                    else _DASH,
                    scale=fmt_metric(release.get("scale"), 3) if release else _DASH,
                    ndcg=fmt_metric(ndcg),
                    change=change,
                    change_class=cls,
                    recall=fmt_metric(metrics.get("recall@10")),
                    coverage=fmt_share(metrics.get("coverage@10")),
                    lift=fmt_share(audit.get("popularity_lift")),
                    tail=fmt_share(audit.get("tail_share")),
                    released=str(release.get("released", "item counts")) if release else _DASH,
                    status=str(r.get("status", "")) if r.get("status") != "ok" else "",
                )
            )
        out.append(_PrivacyGroup(dataset, protocol, view))
    note = sweep.get("note")
    return {"groups": out, "note": str(note) if isinstance(note, str) else ""}


# --------------------------------------------------------------------------- plots
def _group_plots(g: _Group, folder: Path, names: _UniqueNames) -> list[_Plot]:
    label = f"{g.dataset} · {g.protocol}"
    specs: list[tuple[str, str, Callable[[Figure], bool], tuple[float, float]]] = [
        (
            names.get(f"tradeoff-{g.dataset}-{g.protocol}"),
            f"Accuracy vs. catalog coverage and vs. novelty ({label}): up and right is better on both.",
            lambda f: _plot_tradeoff(f, g),
            (10.0, 4.0),
        ),
        (
            names.get(f"ci-{g.dataset}-{g.protocol}"),
            f"NDCG@10 difference to the best baseline ({g.baseline}) with its bootstrap interval "
            f"({label}); filled: significant after correction.",
            lambda f: _plot_forest(f, g),
            (9.0, max(2.2, 0.32 * len(g.comparisons) + 1.2)),
        ),
    ]
    return _draw(specs, folder)


def _main_group(ds: _DatasetView) -> _Group | None:
    """The group whose cost and activity slices represent the dataset: the first non-cold one."""
    warm = [g for g in ds.groups if g.protocol not in _COLD_PROTOCOLS and g.rows]
    return warm[0] if warm else None


def _dataset_plots(ds: _DatasetView, folder: Path, names: _UniqueNames) -> list[_Plot]:
    main = _main_group(ds)
    where = f"{main.protocol} split" if main is not None else ""
    n_models = len(main.rows) if main is not None else 0
    specs: list[tuple[str, str, Callable[[Figure], bool], tuple[float, float]]] = [
        (
            names.get(f"cold-start-{ds.name}"),
            f"Cold start on {ds.name}: NDCG@10 on the cold-user and cold-item protocols, and per "
            f"user-activity slice of the {where or 'main split'}.",
            lambda f: _plot_cold_start(f, ds, main),
            (10.0, 4.0),
        ),
        (
            names.get(f"cost-{ds.name}"),
            f"Fit time and peak memory on {ds.name} ({where or 'main split'}; log scale).",
            lambda f: _plot_cost(f, main),
            (10.0, max(2.4, 0.3 * n_models + 1.2)),
        ),
    ]
    return _draw(specs, folder)


def _draw(
    specs: Sequence[tuple[str, str, Callable[[Figure], bool], tuple[float, float]]], folder: Path
) -> list[_Plot]:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    out: list[_Plot] = []
    for name, caption, draw, size in specs:
        fig = Figure(figsize=size, dpi=100, layout="constrained")
        FigureCanvasAgg(fig)
        if not draw(fig):
            continue
        path = folder / f"{name}.png"
        fig.savefig(path, format="png")
        uri = "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode("ascii")
        out.append(_Plot(f"plots/{name}.png", caption, uri))
    return out


def _style(ax: Axes, title: str, xlabel: str = "", ylabel: str = "") -> None:
    # The dataset analysis report's look, so the two pages read as one product.
    from serendip.data.analysis import style_axes

    style_axes(ax, title, xlabel, ylabel)


def _no_data(ax: Axes, text: str) -> None:
    ax.text(
        0.5,
        0.5,
        text,
        ha="center",
        va="center",
        fontsize=9,
        color="#94a3b8",
        transform=ax.transAxes,
    )
    ax.set_xticks([])
    ax.set_yticks([])


def _kind_legend(ax: Axes, kinds: Iterable[str]) -> None:
    from matplotlib.lines import Line2D

    seen = set(kinds)
    present = [k for k in _KIND_STYLE if k in seen]
    handles = [
        Line2D(
            [],
            [],
            linestyle="",
            marker=_KIND_STYLE[k][1],
            color=_KIND_STYLE[k][0],
            label=_KIND_STYLE[k][2],
        )
        for k in present
    ]
    if handles:
        ax.legend(handles=handles, fontsize=7, frameon=False, loc="best")


def _plot_tradeoff(fig: Figure, g: _Group) -> bool:
    if not any(r.metric(_METRIC) is not None for r in g.rows):
        return False
    axes = fig.subplots(1, 2)
    for ax, key, xlabel in (
        (axes[0], "coverage@10", "catalog coverage@10"),
        (axes[1], "novelty@10", "novelty@10 (bits)"),
    ):
        _style(ax, f"NDCG@10 vs. {xlabel.split('@')[0]}", xlabel, "NDCG@10")
        points = [
            (r, x, y)
            for r in g.rows
            if (x := r.metric(key)) is not None and (y := r.metric(_METRIC)) is not None
        ]
        if not points:
            _no_data(ax, f"no {key} measured")
            continue
        for r, x, y in points:
            colour, marker, _ = _KIND_STYLE[r.style_kind]
            big = r.style_kind == "pipeline"
            ax.scatter(
                [x],
                [y],
                color=colour,
                marker=marker,
                s=110 if big else 42,
                zorder=3,
                edgecolors="white",
                linewidths=0.6,
            )
            ax.annotate(
                r.model,
                (x, y),
                xytext=(4, 3),
                textcoords="offset points",
                fontsize=7,
                color="#334155",
            )
        if key == "coverage@10":
            from matplotlib.ticker import PercentFormatter

            ax.xaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))
        ax.margins(x=0.15, y=0.12)
        _kind_legend(ax, (r.style_kind for r, _, _ in points))
    return True


def _plot_forest(fig: Figure, g: _Group) -> bool:
    comps = [
        c
        for c in g.comparisons
        if all(_number(c.get(k)) is not None for k in ("mean_diff", "ci_low", "ci_high"))
    ]
    if not comps:
        return False
    comps = comps[::-1]  # the largest gain on top
    ax = fig.subplots()
    baseline = g.baseline or str(comps[0].get("baseline", "baseline"))
    _style(
        ax, f"NDCG@10 − {baseline} (per-user mean, bootstrap interval)", "difference in NDCG@10", ""
    )
    kinds = {r.model: r.style_kind for r in g.rows}
    for y, c in enumerate(comps):
        diff = float(c["mean_diff"])
        low, high = float(c["ci_low"]), float(c["ci_high"])
        sig = bool(c.get("significant"))
        colour = (_KIND_STYLE["pipeline"][0] if diff > 0 else _RED) if sig else "#94a3b8"
        marker = _KIND_STYLE[kinds.get(str(c.get("model")), "model")][1]
        ax.plot([low, high], [y, y], color=colour, linewidth=2, solid_capstyle="round")
        ax.scatter(
            [diff],
            [y],
            color=colour if sig else "white",
            edgecolors=colour,
            marker=marker,
            s=46,
            zorder=3,
            linewidths=1.4,
        )
    ax.axvline(0.0, color="#475569", linewidth=0.9, linestyle="--")
    ax.set_yticks(range(len(comps)), [str(c.get("model")) for c in comps])
    ax.set_ylim(-0.6, len(comps) - 0.4)
    return True


def _plot_cold_start(fig: Figure, ds: _DatasetView, main: _Group | None) -> bool:
    series: list[tuple[str, dict[str, float]]] = []
    for g in ds.groups:
        if g.protocol in _COLD_PROTOCOLS:
            values = {r.model: v for r in g.rows if (v := r.metric(_METRIC)) is not None}
            if values:
                series.append((f"{g.protocol} protocol", values))
    if main is not None:
        for name in _SLICES:
            values = {
                r.model: v
                for r in main.rows
                if (v := _number(_mapping(r.slices.get(name)).get(_METRIC))) is not None
            }
            if values:
                series.append((f"{name} users ({main.protocol})", values))
    if not series:
        return False
    # Models in the main table's order (best first), then those only seen in cold protocols.
    order = [r.model for r in main.rows] if main is not None else []
    for _, values in series:
        order += [m for m in values if m not in order]
    kinds = {r.model: r.style_kind for g in ds.groups for r in g.rows}
    ax = fig.subplots()
    _style(ax, f"Cold start on {ds.name}", "", "NDCG@10")
    width = 0.8 / len(series)
    for i, (label, values) in enumerate(series):
        xs = [j + (i - (len(series) - 1) / 2) * width for j, m in enumerate(order) if m in values]
        ys = [values[m] for m in order if m in values]
        ax.bar(
            xs,
            ys,
            width=width * 0.95,
            color=_SERIES_COLOURS[i % len(_SERIES_COLOURS)],
            label=label,
            alpha=0.9,
        )
    ax.set_xticks(range(len(order)), order, rotation=30, ha="right", fontsize=8)
    for tick, model in zip(ax.get_xticklabels(), order, strict=True):
        tick.set_color(_KIND_STYLE[kinds.get(model, "model")][0])
    ax.legend(fontsize=7, frameon=False, ncols=min(3, len(series)))
    return True


def _plot_cost(fig: Figure, main: _Group | None) -> bool:
    if main is None:
        return False
    panels = [
        ("fit_seconds", "Fit time", "seconds (log)", fmt_seconds),
        ("peak_memory_mb", "Peak memory", "MB (log)", fmt_mb),
    ]
    if not any(_number(r.cost.get(key)) is not None for r in main.rows for key, *_ in panels):
        return False
    axes = fig.subplots(1, 2)
    for ax, (key, title, xlabel, fmt) in zip(axes, panels, strict=True):
        _style(ax, title, xlabel, "")
        measured = [(r, v) for r in main.rows if (v := _number(r.cost.get(key))) is not None]
        positive = [v for _, v in measured if v > 0]
        if not positive:
            _no_data(ax, "not measured")
            continue
        # A log axis has no zero: a cost that rounds to zero is drawn as a stub and labelled so.
        floor = min(positive) / 4
        measured.sort(key=lambda b: b[1])
        missing = [r for r in main.rows if _number(r.cost.get(key)) is None]
        labels = [r.model for r in missing] + [r.model for r, _ in measured]
        values = [floor] * len(missing) + [max(v, floor) for _, v in measured]
        texts = ["not measured"] * len(missing) + [fmt(v) if v > 0 else "≈ 0" for _, v in measured]
        colours = ["#e2e8f0"] * len(missing) + [_KIND_STYLE[r.style_kind][0] for r, _ in measured]
        drawn = ax.barh(labels, values, color=colours, alpha=0.88)
        ax.set_xscale("log")
        ax.bar_label(drawn, labels=texts, fontsize=7, padding=3, color="#334155")
        ax.set_xlim(floor / 2, max(values) * 8)  # room for the value labels
        ax.tick_params(axis="y", labelsize=8)
    _kind_legend(axes[1], (r.style_kind for r in main.rows))
    return True


# --------------------------------------------------------------------------- page
def _render(
    study: Mapping[str, Any],
    datasets: Sequence[_DatasetView],
    failures: Sequence[Mapping[str, Any]],
    rows: Sequence[Mapping[str, Any]],
    privacy: Mapping[str, Any] | None = None,
) -> str:
    import jinja2

    source = (
        resources.files("serendip.evaluation.study")
        .joinpath("templates/leaderboard.html.j2")
        .read_text(encoding="utf-8")
    )
    env = jinja2.Environment(
        autoescape=True, trim_blocks=True, lstrip_blocks=True, undefined=jinja2.StrictUndefined
    )
    env.filters.update(
        metric=fmt_metric, signed=fmt_signed, p=fmt_p, seconds=fmt_seconds, sort_value=_sort_value
    )
    models = {r["model"] for r in rows}
    config = study.get("config")
    summary = [
        ("Datasets", str(len(datasets))),
        ("Protocols", str(len({g.protocol for d in datasets for g in d.groups}))),
        ("Models", str(len(models))),
        ("Cells run", str(len(rows) - len(failures))),
        ("Cells failed", str(len(failures))),
    ]
    return env.from_string(source).render(
        study=study,
        profile=str(study.get("profile") or ""),
        config_json=json.dumps(config, indent=2, sort_keys=True, default=str) if config else "",
        datasets=datasets,
        failures=failures,
        summary=summary,
        kind_style=_KIND_STYLE,
        dash=_DASH,
        privacy=privacy,
        audit_reference=audit_reference,
    )


def _sort_value(x: float | None) -> str:
    return "" if x is None else repr(x)
