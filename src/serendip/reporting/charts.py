"""The report's and the deck's own charts (matplotlib, Agg), drawn from the options' numbers."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt

from serendip.reporting.decision import Option

__all__ = ["accuracy_chart", "cost_chart", "scale_cost_chart", "tradeoff_chart"]

_BUILD, _BUY, _CHOSEN = "#4c72b0", "#dd8452", "#55a868"


def _save(fig: plt.Figure, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def accuracy_chart(opts: list[Option], metric: str, chosen: str | None, path: Path) -> Path:
    """Bars of each built option's accuracy."""
    built = [o for o in opts if o.kind == "build" and o.accuracy is not None]
    fig, ax = plt.subplots(figsize=(7, 3.6))
    names = [o.label.removeprefix("Build: ") for o in built]
    vals = [o.accuracy or 0.0 for o in built]
    colors = [_CHOSEN if o.key == chosen else _BUILD for o in built]
    ax.barh(names[::-1], vals[::-1], color=colors[::-1])
    ax.set_xlabel(metric)
    ax.set_title(f"Accuracy of each family's best model ({metric})")
    return _save(fig, path)


def cost_chart(opts: list[Option], users: int, months: int, chosen: str | None, path: Path) -> Path:
    """Total cost over the horizon at `users`: one-time + months x monthly."""
    fig, ax = plt.subplots(figsize=(7, 3.8))
    names = [o.label.removeprefix("Build: ") for o in opts]
    one = [o.one_time.value if o.one_time else 0.0 for o in opts]
    run = [months * o.run[users].monthly for o in opts]
    colors = [_CHOSEN if o.key == chosen else (_BUY if o.kind == "buy" else _BUILD) for o in opts]
    y = range(len(opts))
    ax.barh(list(y), one, color="#bbbbbb", label="build / integrate (one-time)")
    ax.barh(list(y), run, left=one, color=colors, label=f"run, {months} months")
    ax.set_yticks(list(y), names)
    ax.invert_yaxis()
    ax.set_xlabel("US dollars")
    ax.set_title(f"Total cost over {months} months at {users:,} users")
    ax.legend(loc="lower right", fontsize=8)
    return _save(fig, path)


def scale_cost_chart(
    opts: list[Option], sizes: tuple[int, ...], chosen: str | None, path: Path
) -> Path:
    """Monthly run cost of each option at each platform size (log-log)."""
    fig, ax = plt.subplots(figsize=(7, 3.8))
    for o in opts:
        ys = [o.run[n].monthly for n in sizes]
        style = "--" if o.kind == "buy" else "-"
        ax.plot(
            sizes, ys, style, marker="o", label=o.label, linewidth=2.5 if o.key == chosen else 1.2
        )
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("users")
    ax.set_ylabel("US dollars a month")
    ax.set_title("Monthly run cost by platform size")
    ax.legend(fontsize=7)
    return _save(fig, path)


def tradeoff_chart(opts: list[Option], metric: str, users: int, months: int, path: Path) -> Path:
    """Accuracy against total cost, for the built options."""
    built = [o for o in opts if o.kind == "build" and o.accuracy is not None]
    fig, ax = plt.subplots(figsize=(7, 3.8))
    for o in built:
        ax.scatter(o.total(users, months), o.accuracy or 0.0, color=_BUILD)
        ax.annotate(
            o.family,
            (o.total(users, months), o.accuracy or 0.0),
            fontsize=8,
            xytext=(4, 2),
            textcoords="offset points",
        )
    ax.set_xlabel(f"total cost over {months} months at {users:,} users (US dollars)")
    ax.set_ylabel(metric)
    ax.set_title("Accuracy against cost")
    return _save(fig, path)
