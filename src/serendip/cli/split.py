"""`serendip split`: divide a dataset into train and test files by one protocol."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer

from serendip.cli._common import cli_errors, console


class SplitMethod(StrEnum):
    random = "random"
    temporal = "temporal"
    leave_last = "leave-last"
    cold_users = "cold-users"
    cold_items = "cold-items"


class ColdItemsBy(StrEnum):
    auto = "auto"
    created_at = "created-at"
    first_interaction = "first-interaction"


#: Which parameter --test-fraction sets for each method.
_FRACTION_PARAM = {
    "random": "test_fraction",
    "temporal": "test_fraction",
    "cold-users": "user_fraction",
    "cold-items": "item_fraction",
}


@cli_errors
def split(
    source: Annotated[
        Path,
        typer.Argument(
            help="A dataset: a directory written by `serendip generate`, MovieLens 100K, "
            "Last.fm HetRec, or an interactions CSV/Parquet file."
        ),
    ],
    out: Annotated[
        Path, typer.Option("--out", help="Directory for train.csv, test.csv and split.json.")
    ],
    method: Annotated[
        SplitMethod, typer.Option("--method", help="Splitting protocol.")
    ] = SplitMethod.random,
    test_fraction: Annotated[
        float | None,
        typer.Option(
            "--test-fraction",
            help="random/temporal: share of each user's items / of interactions in test (0.2); "
            "cold-users: share of users held out (0.1); cold-items: share of items held out (0.1).",
        ),
    ] = None,
    n: Annotated[
        int | None, typer.Option("--n", help="leave-last: items per user in test (1).")
    ] = None,
    seed: Annotated[
        int, typer.Option("--seed", help="Random seed (random, leave-last ties, cold-users).")
    ] = 0,
    by: Annotated[
        ColdItemsBy | None,
        typer.Option(
            "--by",
            help="cold-items: newest by item created_at, by first interaction, or auto "
            "(created_at when the items have it).",
        ),
    ] = None,
    cut: Annotated[
        str | None,
        typer.Option(
            "--cut", help="temporal: cut time (epoch seconds or ISO 8601) instead of a fraction."
        ),
    ] = None,
) -> None:
    """Split SOURCE into train.csv and test.csv (fold_in.csv for cold users) plus split.json."""
    from serendip.errors import ConfigError
    from serendip.evaluation.io import load_dataset, write_split
    from serendip.evaluation.splits import split_dataset

    name = method.value
    params: dict[str, Any] = {}
    if test_fraction is not None:
        if name not in _FRACTION_PARAM:
            raise ConfigError(f"--test-fraction does not apply to --method {name}; use --n")
        params[_FRACTION_PARAM[name]] = test_fraction
    if n is not None:
        if name != "leave-last":
            raise ConfigError(f"--n applies only to --method leave-last, not {name}")
        params["n"] = n
    if cut is not None:
        if name != "temporal":
            raise ConfigError(f"--cut applies only to --method temporal, not {name}")
        params["cut"] = cut
    if by is not None:
        if name != "cold-items":
            raise ConfigError(f"--by applies only to --method cold-items, not {name}")
        params["by"] = by.value.replace("-", "_")
    if name in ("random", "leave-last", "cold-users"):
        params["seed"] = seed
    ds = load_dataset(source)
    with console.status(f"splitting {ds.n_interactions:,} interactions ({name})"):
        result = split_dataset(ds, name, **params)
        summary = write_split(result, out)
    fold = f", fold-in {summary['fold_in']['interactions']:,} rows" if "fold_in" in summary else ""
    typer.echo(
        f"{name} split of {ds.name}: train {summary['train']['interactions']:,} rows, "
        f"test {summary['test']['interactions']:,} rows ({summary['test']['users']:,} users){fold}, "
        f"{summary['params'].get('n_excluded', 0):,} excluded -> {out}/"
    )


def register(app: typer.Typer) -> None:
    """Add this module's commands to the app."""
    app.command("split")(split)
