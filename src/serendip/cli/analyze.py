"""`serendip analyze`: load a dataset and write its analysis (report.html, analysis.json, plots/)."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from serendip.cli._common import cli_errors, console, progress

if TYPE_CHECKING:
    from serendip.data.analysis import DatasetAnalysis, QualityIssue
    from serendip.data.loaders import LoadReport


class SourceFormatChoice(StrEnum):
    platform = "platform"
    movielens = "movielens"
    lastfm = "lastfm"
    csv = "csv"
    parquet = "parquet"


class OnBadRowsChoice(StrEnum):
    raise_ = "raise"
    drop = "drop"


@cli_errors
def analyze(
    source: Annotated[
        Path,
        typer.Argument(
            help="A dataset: a directory written by `serendip generate`, a MovieLens 100K or "
            "Last.fm HetRec directory, or an interactions CSV/Parquet file."
        ),
    ],
    out: Annotated[
        Path, typer.Option("--out", help="Directory for report.html, analysis.json and plots/.")
    ],
    format: Annotated[
        SourceFormatChoice | None,
        typer.Option("--format", help="Source format (default: detected)."),
    ] = None,
    items: Annotated[
        Path | None, typer.Option("--items", help="Items CSV/Parquet (csv/parquet sources).")
    ] = None,
    social: Annotated[
        Path | None, typer.Option("--social", help="Social edges CSV/Parquet: follower,followee.")
    ] = None,
    users: Annotated[
        Path | None, typer.Option("--users", help="Users CSV/Parquet (csv/parquet sources).")
    ] = None,
    on_bad_rows: Annotated[
        OnBadRowsChoice,
        typer.Option(
            "--on-bad-rows", help="Stop at the first malformed row, or drop and count them."
        ),
    ] = OnBadRowsChoice.raise_,
    sample: Annotated[
        int,
        typer.Option(
            "--in-network-sample",
            min=1,
            help="Rows sampled for the in-network check when an exact pass is too large.",
        ),
    ] = 200_000,
    seed: Annotated[int, typer.Option("--seed", help="Seed of that sample.")] = 0,
) -> None:
    """Analyse SOURCE: counts, distributions, funnel, time, metadata, social graph, data quality.

    Writes OUT/report.html (standalone, plots embedded), OUT/analysis.json (every number) and
    OUT/plots/*.png, and prints the report's path.
    """
    from serendip.data.analysis import analyze_dataset, write_report
    from serendip.data.loaders import LoadReport, format_load_report, load_source

    report = LoadReport()
    with console.status(f"loading {source}") as status:
        ds = load_source(
            source,
            format=None if format is None else format.value,
            items=items,
            users=users,
            social=social,
            on_bad_rows=on_bad_rows.value,  # type: ignore[arg-type]
            report=report,
            progress=lambda msg: status.update(f"loading {source}: {msg}"),
        )
    if report.n_dropped:
        for line in format_load_report(report):
            console.print(line, markup=False, highlight=False)

    with progress(transient=True) as bar:
        task = bar.add_task("analysing", total=1)

        def on_step(step: str, done: int, total: int) -> None:
            bar.update(task, description=f"analysing: {step}", completed=done, total=total)

        analysis = analyze_dataset(
            ds,
            in_network_sample=sample,
            seed=seed,
            progress=on_step,
            extra_issues=_load_issues(report),
        )
    with console.status("writing the report"):
        path = write_report(analysis, out)
    _print_summary(analysis)
    typer.echo(str(path))


def _load_issues(report: LoadReport) -> list[QualityIssue]:
    """Rows the loader dropped, as data-quality errors of the report."""
    from serendip.data.analysis import QualityIssue

    issues = []
    for bad in report.bad_rows:
        where = f"{bad.unit}s " + ", ".join(str(x) for x in bad.examples) if bad.examples else None
        field = f" (field '{bad.field}')" if bad.field else ""
        issues.append(
            QualityIssue(
                "error",
                f"{bad.file}: {bad.problem}{field}; rows dropped while loading",
                bad.count,
                where,
            )
        )
    return issues


def _pct(x: float | None, digits: int = 1) -> str:
    return "-" if x is None else f"{100 * x:.{digits}f}%"


def _print_summary(a: DatasetAnalysis) -> None:
    from rich.table import Table

    t = Table(title=a.name, show_header=False, title_justify="left", box=None, padding=(0, 2))
    c = a.counts
    t.add_row(
        "users / items / interactions", f"{c.n_users:,} / {c.n_items:,} / {c.n_interactions:,}"
    )
    t.add_row("density", _pct(c.density, 4))
    gini = a.activity.gini_item_popularity
    t.add_row("gini (item popularity)", "-" if gini is None else f"{gini:.3f}")
    if a.social is not None:
        t.add_row(
            "social edges / reciprocity", f"{a.social.n_edges:,} / {_pct(a.social.reciprocity)}"
        )
    if a.in_network is not None:
        t.add_row(
            "in-network share", f"{_pct(a.in_network.share_in_network)} ({a.in_network.method})"
        )
    for section, reason in a.absent.items():
        t.add_row(section, f"[dim]absent: {reason}[/dim]")
    n = {s: sum(1 for q in a.quality if q.severity == s) for s in ("error", "warning", "info")}
    t.add_row("data quality", f"{n['error']} errors, {n['warning']} warnings, {n['info']} notes")
    console.print(t)


def register(app: typer.Typer) -> None:
    """Add this module's commands to the app."""
    app.command("analyze")(analyze)
