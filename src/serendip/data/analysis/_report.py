"""`write_report`: analysis.json, PNG plots and a standalone HTML page.

The plots are written under `plots/` and also embedded in the HTML as base64 data URIs, so
report.html opens anywhere on its own (mailed, attached to a ticket) with every figure.
matplotlib is imported lazily, and only through its object API with the Agg canvas: no pyplot
global state, no display needed.
"""

from __future__ import annotations

import base64
import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

from serendip.data.analysis._model import DatasetAnalysis, Histogram

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = ["style_axes", "write_report"]

_BLUE = "#2563eb"
_TEAL = "#0d9488"
_AMBER = "#d97706"
_GREY = "#94a3b8"
_WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


@dataclass(frozen=True, slots=True)
class _Plot:
    """One figure of the report: file name under plots/, caption, and the PNG as a data URI."""

    file: str
    caption: str
    data_uri: str


def write_report(analysis: DatasetAnalysis, out_dir: str | Path) -> Path:
    """Write `analysis.json`, `plots/*.png` and `report.html` into out_dir (created if needed).

    Returns the path of report.html. Sections the dataset lacks are rendered as a short note.
    """
    out = Path(out_dir)
    (out / "plots").mkdir(parents=True, exist_ok=True)
    data = analysis.to_dict()
    (out / "analysis.json").write_text(
        json.dumps(data, indent=2, allow_nan=False) + "\n", encoding="utf-8"
    )
    plots = _make_plots(analysis, out / "plots")
    html = _render(analysis, plots)
    path = out / "report.html"
    path.write_text(html, encoding="utf-8")
    return path


# --------------------------------------------------------------------------- formatting
def fmt_int(x: Any) -> str:
    return "—" if x is None else f"{int(x):,}"


def fmt_pct(x: Any, digits: int = 1) -> str:
    if x is None:
        return "—"
    v = 100.0 * float(x)
    if 0 < abs(v) < 10 ** (-digits):
        return f"{v:.2g}%"
    return f"{v:.{digits}f}%"


def fmt_num(x: Any, digits: int = 3) -> str:
    """Numbers for people: integers with separators, others with `digits` significant digits."""
    if x is None:
        return "—"
    v = float(x)
    if not math.isfinite(v):
        return "—"
    if v == int(v) and abs(v) < 1e15:
        return f"{int(v):,}"
    if abs(v) >= 1000:
        return f"{v:,.0f}"
    return f"{v:.{digits}g}"


def _summary(a: DatasetAnalysis) -> list[tuple[str, str]]:
    c = a.counts
    rows = [
        ("Users", fmt_int(c.n_users)),
        ("Items", fmt_int(c.n_items)),
        ("Interactions", fmt_int(c.n_interactions)),
        ("Density", fmt_pct(c.density, 3)),
        ("Gini (item popularity)", fmt_num(a.activity.gini_item_popularity)),
        ("Top 20% items' share", fmt_pct(a.activity.top20_items_share)),
    ]
    if a.temporal is not None:
        rows.append(
            (
                "Time span",
                "—" if a.temporal.span_days is None else f"{a.temporal.span_days:,.0f} days",
            )
        )
    if a.social is not None:
        rows.append(("Social edges", fmt_int(a.social.n_edges)))
    if a.in_network is not None:
        rows.append(("In-network share", fmt_pct(a.in_network.share_in_network)))
    n_err = sum(1 for q in a.quality if q.severity == "error")
    n_warn = sum(1 for q in a.quality if q.severity == "warning")
    rows.append(("Quality issues", f"{n_err} errors, {n_warn} warnings"))
    return rows


def _render(a: DatasetAnalysis, plots: dict[str, _Plot]) -> str:
    import jinja2

    source = (
        resources.files("serendip.data.analysis")
        .joinpath("report.html.j2")
        .read_text(encoding="utf-8")
    )
    env = jinja2.Environment(
        autoescape=True, trim_blocks=True, lstrip_blocks=True, undefined=jinja2.StrictUndefined
    )
    env.filters.update(int=fmt_int, pct=fmt_pct, num=fmt_num)
    template = env.from_string(source)
    return template.render(a=a, plots=plots, summary=_summary(a), weekdays=_WEEKDAYS)


# --------------------------------------------------------------------------- plots
def _make_plots(a: DatasetAnalysis, folder: Path) -> dict[str, _Plot]:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import FuncFormatter, ScalarFormatter

    specs: list[tuple[str, str, Callable[[Figure], bool]]] = [
        (
            "activity",
            "Interactions per user and per item (log-log; users/items with at least one).",
            lambda f: _plot_activity(f, a),
        ),
        (
            "long_tail",
            "Cumulative share of interactions held by the most popular items (Lorenz curve).",
            lambda f: _plot_long_tail(f, a),
        ),
        ("events", "Interactions per event type.", lambda f: _plot_events(f, a)),
        ("values", "Distribution of interaction values.", lambda f: _plot_values(f, a)),
        (
            "time_of_day",
            "Interactions by hour of day and weekday (UTC).",
            lambda f: _plot_time_of_day(f, a),
        ),
        ("growth", "Growth over time.", lambda f: _plot_growth(f, a)),
        (
            "item_age",
            "Item age at interaction time (days since the item's created_at).",
            lambda f: _plot_item_age(f, a),
        ),
        (
            "metadata",
            "Share of catalog items with each metadata field.",
            lambda f: _plot_metadata(f, a),
        ),
        (
            "degrees",
            "In- and out-degree of the follow graph (log-log; degree at least 1).",
            lambda f: _plot_degrees(f, a),
        ),
    ]
    out: dict[str, _Plot] = {}
    for name, caption, draw in specs:
        fig = Figure(figsize=(9.0, 3.4), dpi=110, layout="constrained")
        FigureCanvasAgg(fig)
        path = folder / f"{name}.png"
        if not draw(fig):
            # A plot of an earlier report into the same folder would otherwise linger.
            path.unlink(missing_ok=True)
            continue
        for ax in fig.axes:
            for axis in (ax.xaxis, ax.yaxis):
                # Plain numeric axes only: dates, categories and log axes keep their labels.
                if (
                    axis.get_scale() == "linear"
                    and type(axis.get_major_formatter()) is ScalarFormatter
                ):
                    axis.set_major_formatter(FuncFormatter(_short_number))
        fig.savefig(path, format="png")
        uri = "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode("ascii")
        out[name] = _Plot(f"plots/{name}.png", caption, uri)
    return out


def _short_number(value: float, _pos: object = None) -> str:
    """Tick labels for counts: 950, 12k, 1.5M (shares and small numbers stay as they are)."""
    v = abs(value)
    if v >= 1e6:
        return f"{value / 1e6:.3g}M"
    if v >= 1e4:
        return f"{value / 1e3:.3g}k"
    return f"{value:.4g}"


def _percent(axis: Any) -> None:
    from matplotlib.ticker import PercentFormatter

    axis.set_major_formatter(PercentFormatter(1.0, decimals=0))


def style_axes(ax: Axes, title: str, xlabel: str = "", ylabel: str = "") -> None:
    """The report's look for one matplotlib axes: title, axis labels, light grid and spines
    (the study's leaderboard uses it too, so the two pages read as one product)."""
    ax.set_title(title, fontsize=10, loc="left", fontweight="bold", color="#1e293b")
    ax.set_xlabel(xlabel, fontsize=9, color="#475569")
    ax.set_ylabel(ylabel, fontsize=9, color="#475569")
    ax.tick_params(labelsize=8, colors="#475569")
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    for side in ("left", "bottom"):
        ax.spines[side].set_color("#cbd5e1")
    ax.grid(True, color="#e2e8f0", linewidth=0.6)
    ax.set_axisbelow(True)


def _hist(ax: Axes, h: Histogram, color: str) -> None:
    edges = list(h.edges)
    widths = [edges[k + 1] - edges[k] for k in range(len(h.counts))]
    ax.bar(
        edges[:-1],
        h.counts,
        width=widths,
        align="edge",
        color=color,
        alpha=0.85,
        edgecolor="white",
        linewidth=0.3,
    )
    if h.log_scale:
        ax.set_xscale("log")
        if max(h.counts, default=0) > 0:
            ax.set_yscale("log")


def _plot_activity(fig: Figure, a: DatasetAnalysis) -> bool:
    hu, hi = a.activity.user_activity_histogram, a.activity.item_popularity_histogram
    if hu is None and hi is None:
        return False
    ax1, ax2 = fig.subplots(1, 2)
    for ax, h, color, title, xl in (
        (ax1, hu, _BLUE, "User activity", "interactions per user"),
        (ax2, hi, _TEAL, "Item popularity", "interactions per item"),
    ):
        style_axes(ax, title, xl, "count")
        if h is not None:
            _hist(ax, h, color)
    return True


def _plot_long_tail(fig: Figure, a: DatasetAnalysis) -> bool:
    act = a.activity
    if not act.popularity_curve_x:
        return False
    ax = fig.subplots()
    style_axes(
        ax,
        "Popularity concentration",
        "share of items (most popular first)",
        "share of interactions",
    )
    ax.plot(act.popularity_curve_x, act.popularity_curve_y, color=_BLUE, linewidth=2)
    ax.plot([0, 1], [0, 1], color=_GREY, linestyle="--", linewidth=1, label="perfect equality")
    if act.top20_items_share is not None:
        ax.axvline(0.2, color=_AMBER, linewidth=0.8, linestyle=":")
        ax.annotate(
            f"top 20% of items: {100 * act.top20_items_share:.1f}% of interactions",
            (0.2, act.top20_items_share),
            xytext=(0.3, max(0.05, act.top20_items_share - 0.35)),
            fontsize=8,
            arrowprops={"arrowstyle": "->", "color": "#475569"},
        )
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.02)
    _percent(ax.xaxis)
    _percent(ax.yaxis)
    ax.legend(fontsize=8, frameon=False, loc="lower right")
    return True


def _plot_events(fig: Figure, a: DatasetAnalysis) -> bool:
    ev = a.events.counts
    if len(ev) < 2:  # one bar says nothing the table does not
        return False
    ax = fig.subplots()
    style_axes(ax, "Event funnel", "", "interactions")
    names = list(ev)
    bars = ax.bar(names, [ev[n] for n in names], color=_BLUE, alpha=0.85)
    ax.bar_label(bars, labels=[fmt_int(ev[n]) for n in names], fontsize=8, color="#334155")
    return True


def _plot_values(fig: Figure, a: DatasetAnalysis) -> bool:
    v = a.values
    if v is None:
        return False
    ax = fig.subplots()
    style_axes(ax, "Interaction values", "value", "interactions")
    if v.discrete:
        bars = ax.bar([fmt_num(x) for x in v.levels], v.level_counts, color=_TEAL, alpha=0.85)
        ax.bar_label(bars, labels=[fmt_int(c) for c in v.level_counts], fontsize=8, color="#334155")
    elif v.histogram is not None:
        _hist(ax, v.histogram, _TEAL)
    return True


def _plot_time_of_day(fig: Figure, a: DatasetAnalysis) -> bool:
    t = a.temporal
    if t is None or sum(t.by_hour) == 0:
        return False
    ax1, ax2 = fig.subplots(1, 2, width_ratios=[2, 1])
    style_axes(ax1, "By hour of day (UTC)", "hour", "interactions")
    ax1.bar(range(24), t.by_hour, color=_BLUE, alpha=0.85)
    ax1.set_xticks(range(0, 24, 3))
    style_axes(ax2, "By weekday", "", "")
    ax2.bar(_WEEKDAYS, t.by_weekday, color=_TEAL, alpha=0.85)
    return True


def _dates(starts: Sequence[str]) -> list[Any]:
    import datetime as dt

    return [dt.date.fromisoformat(s) for s in starts]


def _plot_growth(fig: Figure, a: DatasetAnalysis) -> bool:
    t = a.temporal
    if t is None or t.growth is None or not t.growth.starts:
        return False
    g = t.growth
    x = _dates(g.starts)
    ax1, ax2 = fig.subplots(1, 2)
    style_axes(ax1, f"Interactions per {g.period}", "", "interactions")
    ax1.plot(
        x,
        g.interactions,
        color=_BLUE,
        linewidth=1.6,
        marker="o" if len(x) < 40 else None,
        markersize=3,
    )
    style_axes(ax2, f"New users and items per {g.period}", "", "first seen")
    ax2.plot(x, g.new_users, color=_TEAL, linewidth=1.6, label="new users")
    ax2.plot(x, g.new_items, color=_AMBER, linewidth=1.6, label="new items")
    if g.items_created is not None:
        ax2.plot(
            x, g.items_created, color=_GREY, linewidth=1.0, linestyle="--", label="items created"
        )
    ax2.legend(fontsize=8, frameon=False)
    from matplotlib.dates import AutoDateLocator, ConciseDateFormatter

    for ax in (ax1, ax2):
        locator = AutoDateLocator(minticks=3, maxticks=8)
        ax.xaxis.set_major_locator(locator)
        ax.xaxis.set_major_formatter(ConciseDateFormatter(locator))
    return True


def _plot_item_age(fig: Figure, a: DatasetAnalysis) -> bool:
    t = a.temporal
    if t is None or t.item_age_histogram is None:
        return False
    ax = fig.subplots()
    style_axes(
        ax,
        "Item age at interaction (up to the 99th percentile)",
        "days since creation",
        "interactions",
    )
    _hist(ax, t.item_age_histogram, _AMBER)
    return True


def _plot_metadata(fig: Figure, a: DatasetAnalysis) -> bool:
    fields = {k: v for k, v in a.metadata.item_fields.items() if k != "any" and v is not None}
    if not fields:
        return False
    ax = fig.subplots()
    style_axes(ax, "Item metadata completeness", "share of items", "")
    names = list(fields)[::-1]
    vals = [fields[n] for n in names]
    bars = ax.barh(names, vals, color=_TEAL, alpha=0.85)
    ax.bar_label(bars, labels=[fmt_pct(v) for v in vals], fontsize=8, padding=3, color="#334155")
    ax.set_xlim(0, 1.12)
    _percent(ax.xaxis)
    return True


def _plot_degrees(fig: Figure, a: DatasetAnalysis) -> bool:
    s = a.social
    if s is None:
        return False
    ax1, ax2 = fig.subplots(1, 2)
    for ax, h, color, title in (
        (ax1, s.in_degree_histogram, _BLUE, "In-degree (followers)"),
        (ax2, s.out_degree_histogram, _TEAL, "Out-degree (followees)"),
    ):
        style_axes(ax, title, "degree", "users")
        if h is not None:
            _hist(ax, h, color)
    return True
