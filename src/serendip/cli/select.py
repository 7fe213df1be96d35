"""`serendip select-blend`: re-derive the weighted hybrid's blend weights on validation data."""

from __future__ import annotations

import json
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from serendip.cli._common import cli_errors, console, progress

if TYPE_CHECKING:
    from serendip.evaluation.selection import BlendSelection


class NormalizationChoice(StrEnum):
    minmax = "minmax"
    zscore = "zscore"
    rank = "rank"
    borda = "borda"


def _seeds(text: str, option: str) -> tuple[int, ...]:
    """Comma-separated integers ("" for none)."""
    from serendip.errors import ConfigError

    try:
        return tuple(int(x) for x in text.split(",") if x.strip())
    except ValueError:
        raise ConfigError(
            f"{option} expects comma-separated integers such as 42,43,44, got {text!r}"
        ) from None


def _members(text: str | None) -> dict[str, dict[str, Any]] | None:
    """--members: a JSON object {key: params}, or comma-separated member keys (each with its
    default parameters); None: the default blend's members."""
    from serendip.errors import ConfigError

    if text is None:
        return None
    if text.lstrip().startswith("{"):
        try:
            value = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ConfigError(
                f"--members is not valid JSON ({exc.msg} at column {exc.colno}); expected an "
                """object such as '{"ease": {"l2": 200}, "ials": {}}' or names: ease,ials"""
            ) from None
        if not isinstance(value, dict) or not all(isinstance(p, dict) for p in value.values()):
            raise ConfigError("--members must map each member key to a JSON object of parameters")
        return value
    names = [x.strip() for x in text.split(",") if x.strip()]
    if not names:
        raise ConfigError("--members names no member")
    return {name: {} for name in names}


@cli_errors
def select_blend(
    source: Annotated[
        Path,
        typer.Argument(
            help="A dataset: a directory written by `serendip generate`, a MovieLens 100K or "
            "Last.fm HetRec directory, a directory of interactions/items/users/social CSV or "
            "Parquet files, or an interactions file."
        ),
    ],
    out: Annotated[
        Path | None,
        typer.Option("--out", help="Write the selection (params, every score) as JSON here."),
    ] = None,
    members: Annotated[
        str | None,
        typer.Option(
            "--members",
            help="Members as a JSON object {key: params} (key: a model name, optionally "
            "name@label) or comma-separated names; default: the default blend's nine members.",
        ),
    ] = None,
    normalization: Annotated[
        NormalizationChoice | None,
        typer.Option("--normalization", help="Per-user score normalisation (default: rank)."),
    ] = None,
    rank_constant: Annotated[
        float | None,
        typer.Option("--rank-constant", min=0.0, help="rank normalisation: c in 1 / (c + rank)."),
    ] = None,
    seeds: Annotated[
        str,
        typer.Option("--seeds", help="Seeds of the carvings the weights are searched on."),
    ] = "42,43,44,45,46,47,48,49,50,51",
    holdout_seeds: Annotated[
        str,
        typer.Option(
            "--holdout-seeds",
            help="Seeds of the carvings that only score the result ('' for none).",
        ),
    ] = "52,53,54,55",
    validation_fraction: Annotated[
        float,
        typer.Option(
            "--validation-fraction", help="Share of each user's interactions a carving holds out."
        ),
    ] = 0.1,
    test_fraction: Annotated[
        float,
        typer.Option(
            "--test-fraction",
            min=0.0,
            max=0.9,
            help="Share of each user's interactions set aside first (random split, --seed) and "
            "never read, as in the protocol that chose the default; 0 searches all the data.",
        ),
    ] = 0.2,
    seed: Annotated[
        int, typer.Option("--seed", help="Seed of the test split and of the search.")
    ] = 42,
    trials: Annotated[
        int, typer.Option("--trials", min=1, help="optuna TPE trials (the equal weights first).")
    ] = 200,
    k: Annotated[int, typer.Option("--k", min=1, help="Optimise NDCG@K.")] = 10,
) -> None:
    """Search the weighted hybrid's member weights on validation carvings of SOURCE.

    Each member is fitted once per carving (a random split of every user's training
    interactions, one per seed), the weights maximising NDCG@K over the search carvings'
    users are searched, and the holdout carvings score them. The defaults are the recipe that
    chose `weighted-hybrid`'s default blend on MovieLens 100K. Prints the blend as
    `weighted-hybrid` parameters (JSON, for `serendip fit --model weighted-hybrid --params`).
    """
    from serendip.data.loaders import load_source
    from serendip.errors import ConfigError
    from serendip.evaluation import random_split
    from serendip.evaluation.selection import select_blend as run

    chosen = _members(members)
    search_seeds = _seeds(seeds, "--seeds")
    hold_seeds = _seeds(holdout_seeds, "--holdout-seeds")
    if not search_seeds:
        raise ConfigError("--seeds names no carving")
    if not 0.0 < validation_fraction < 1.0:
        raise ConfigError(f"--validation-fraction must be in (0, 1), got {validation_fraction}")
    if chosen is not None:
        from serendip.models.hybrid import WeightedHybrid

        WeightedHybrid({"members": chosen})  # unknown models fail before any data is read
    with console.status(f"loading {source}"):
        ds = load_source(source)
        train = (
            random_split(ds, test_fraction=test_fraction, seed=seed, min_interactions=5).train
            if test_fraction > 0
            else ds
        )
    with progress(transient=True) as bar:
        task = bar.add_task("carving", total=1)

        def on_step(step: str, done: int, total: int) -> None:
            bar.update(task, description=step, completed=done, total=total)

        result = run(
            train,
            chosen,
            normalization=None if normalization is None else normalization.value,
            rank_constant=rank_constant,
            seeds=search_seeds,
            holdout_seeds=hold_seeds,
            validation_fraction=validation_fraction,
            k=k,
            trials=trials,
            seed=seed,
            progress=on_step,
        )
    _print_summary(result, ds.name, test_fraction)
    if out is not None:
        doc = {
            "source": str(source),
            "dataset": ds.name,
            "test_fraction": test_fraction,
            "seed": seed,
            **result.to_dict(),
        }
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
        console.print(f"wrote {out}", highlight=False)
    typer.echo(json.dumps(result.params()))


def _print_summary(r: BlendSelection, name: str, test_fraction: float) -> None:
    from rich.table import Table

    held = bool(r.holdout_seeds)
    table = Table(
        title=f"weighted-hybrid blend on {name} ({r.normalization}"
        + (f" c={r.rank_constant:g}" if r.normalization == "rank" else "")
        + f", NDCG@{r.k})",
        title_justify="left",
    )
    table.add_column("member")
    table.add_column("weight", justify="right")
    table.add_column("alone: validation", justify="right")
    if held:
        table.add_column("alone: holdout", justify="right")
    for key, w in r.weights.items():
        row = [key, f"{w:.4f}", f"{r.member_ndcg[key]:.4f}"]
        if held:
            row.append(f"{r.member_holdout_ndcg[key]:.4f}")
        table.add_row(*row)
    blend = ["[bold]blend", "", f"[bold]{r.validation_ndcg:.4f}"]
    equal = ["equal weights", "", f"{r.equal_weights_ndcg:.4f}"]
    if held:
        blend.append(f"[bold]{r.holdout_ndcg:.4f}")
        equal.append(f"{r.equal_weights_holdout_ndcg:.4f}")
    table.add_row(*blend)
    table.add_row(*equal)
    console.print(table)
    kept = (
        f"{test_fraction:.0%} of each user's interactions set aside first; "
        if test_fraction
        else ""
    )
    console.print(
        f"{kept}search: {len(r.seeds)} carving(s), {r.n_users:,} validation users, "
        f"{r.trials} optuna trials; holdout: {len(r.holdout_seeds)} carving(s), "
        f"{r.n_holdout_users:,} users; {r.seconds:.0f}s",
        highlight=False,
    )
    for note in r.notes:
        console.print(f"note: {note}", highlight=False)


def register(app: typer.Typer) -> None:
    """Add this module's commands to the app."""
    app.command("select-blend")(select_blend)
