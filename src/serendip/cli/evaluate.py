"""`serendip evaluate`: score a recommendations file against a train/test split."""

from __future__ import annotations

import json
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from serendip.cli._common import cli_errors, console


class SliceMethod(StrEnum):
    thresholds = "thresholds"
    quantile = "quantile"


@cli_errors
def evaluate(
    train: Annotated[Path, typer.Option("--train", help="Training interactions (CSV/Parquet).")],
    test: Annotated[Path, typer.Option("--test", help="Test interactions (CSV/Parquet).")],
    recs: Annotated[
        Path,
        typer.Option("--recs", help="Recommendations: user,item,rank[,score], top-K per user."),
    ],
    items: Annotated[
        Path | None,
        typer.Option("--items", help="Item metadata (tags, category, author) for diversity."),
    ] = None,
    social: Annotated[
        Path | None,
        typer.Option("--social", help="Social graph follower,followee for out-of-network metrics."),
    ] = None,
    fold_in: Annotated[
        Path | None,
        typer.Option("--fold-in", help="Fold-in history of cold users (from a cold-users split)."),
    ] = None,
    k: Annotated[
        list[int] | None, typer.Option("--k", help="Cutoff K; repeat for several (default 10).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
    slices: Annotated[
        SliceMethod,
        typer.Option("--slices", help="Activity slices: fixed thresholds or a quantile."),
    ] = SliceMethod.thresholds,
    cold_below: Annotated[
        int, typer.Option("--cold-below", help="Cold: fewer training items than this.")
    ] = 5,
    heavy_above: Annotated[
        int,
        typer.Option("--heavy-above", help="thresholds: heavy = more training items than this."),
    ] = 20,
    heavy_quantile: Annotated[
        float,
        typer.Option("--heavy-quantile", help="quantile: heavy = above this activity quantile."),
    ] = 0.8,
) -> None:
    """Print every metric of RECS at K, overall and per activity slice."""
    from pydantic import ValidationError

    from serendip.errors import ConfigError
    from serendip.evaluation.evaluate import ActivitySlices, evaluate_recommendations
    from serendip.evaluation.io import load_train_test, read_recommendations

    ks = sorted(set(k or [10]))
    try:
        slicing = ActivitySlices(
            method=slices.value,
            cold_below=cold_below,
            heavy_above=heavy_above,
            heavy_quantile=heavy_quantile,
        )
    except ValidationError as exc:
        raise ConfigError("; ".join(e["msg"] for e in exc.errors())) from None
    with console.status("loading train and test"):
        split = load_train_test(train, test, items=items, social=social, fold_in=fold_in)
    with console.status("reading recommendations"):
        lists = read_recommendations(recs, split.train.users, split.train.items, k=max(ks))
    with console.status("scoring") as status:
        result = evaluate_recommendations(
            lists,
            split.train,
            split.test,
            ks,
            slices=slicing,
            fold_in=split.fold_in,
            progress=lambda stage: status.update(f"scoring: {stage}"),
        )
    if as_json:
        typer.echo(json.dumps(result.to_dict(), indent=2))
        return
    _print_table(result)


def _print_table(result: object) -> None:
    from rich.console import Console
    from rich.table import Table

    from serendip.evaluation.evaluate import SLICE_NAMES, EvaluationResult

    assert isinstance(result, EvaluationResult)
    table = Table(title=f"{result.n_users:,} test users", title_justify="left")
    table.add_column("metric")
    table.add_column("all", justify="right")
    shown = [s for s in SLICE_NAMES if s in result.slices]
    for s in shown:
        table.add_column(f"{s} ({result.slice_sizes[s]:,})", justify="right")
    for name, value in result.metrics.items():
        table.add_row(name, f"{value:.4f}", *(f"{result.slices[s][name]:.4f}" for s in shown))
    out = Console()
    out.print(table)
    out.print("slices: " + "; ".join(f"{s} = {b}" for s, b in result.slice_bounds.items()))
    for note in result.notes:
        out.print(f"note: {note}")
    d = result.diagnostics
    if d.get("n_test_users_without_recs"):
        out.print(
            f"note: {int(d['n_test_users_without_recs']):,} test users have no recommendations (scored 0)"
        )
    if d.get("listed_seen_items_share"):
        out.print(
            f"note: {d['listed_seen_items_share']:.1%} of listed items were already seen (train or fold-in)"
        )


def register(app: typer.Typer) -> None:
    """Add this module's commands to the app."""
    app.command("evaluate")(evaluate)
