"""`serendip generate`: write a synthetic social platform (a `serendip-platform` directory)."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import typer

from serendip.cli._common import cli_errors, progress
from serendip.errors import ConfigError

_STAGES = {
    "world": "users & follow graph",
    "items": "items",
    "interactions": "interactions (days)",
    "truth": "ground truth",
}


def _parse_sets(pairs: list[str]) -> dict[str, Any]:
    """KEY=VALUE strings; values stay strings, the config model converts and validates them."""
    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--set expects KEY=VALUE, got '{pair}'")
        out[key.strip().replace("-", "_")] = value.strip()
    return out


@cli_errors
def generate(
    out: Path = typer.Option(..., "--out", "-o", help="Directory to write the platform into."),
    preset: str = typer.Option(
        "small", help="Preset: tiny (tests), small (demo) or platform (100K users, 1M items)."
    ),
    seed: int = typer.Option(
        0, min=0, help="Random seed; the same seed gives byte-identical files."
    ),
    users: int | None = typer.Option(None, "--users", help="Override the number of users."),
    items: int | None = typer.Option(None, "--items", help="Override the number of items."),
    interactions: int | None = typer.Option(
        None, "--interactions", help="Override the target interaction rows."
    ),
    days: int | None = typer.Option(None, "--days", help="Override the simulated window (days)."),
    in_network_share: float | None = typer.Option(
        None,
        "--in-network-share",
        help="Share of interactions on followees' content (default 0.6).",
    ),
    set_: list[str] = typer.Option(
        [],
        "--set",
        help="Any other config field, KEY=VALUE (repeatable), e.g. --set like_rate=0.05.",
    ),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
) -> None:
    """Generate a seeded synthetic social platform: users, follows, items, interactions, truth."""
    from serendip.data.synthetic import generate_platform

    overrides: dict[str, Any] = _parse_sets(set_)
    named = {
        "n_users": users,
        "n_items": items,
        "n_interactions": interactions,
        "days": days,
        "in_network_share": in_network_share,
    }
    overrides.update({k: v for k, v in named.items() if v is not None})

    started = time.perf_counter()
    if quiet:
        generate_platform(preset, seed=seed, out=out, **overrides)
    else:
        with progress() as bar:
            tasks: dict[str, Any] = {}

            def report(stage: str, done: int, total: int) -> None:
                if stage not in tasks:
                    tasks[stage] = bar.add_task(_STAGES.get(stage, stage), total=total)
                bar.update(tasks[stage], completed=done, total=total)

            generate_platform(preset, seed=seed, out=out, progress=report, **overrides)
    elapsed = time.perf_counter() - started

    manifest = json.loads((out / "manifest.json").read_text())
    counts = manifest["counts"]
    target = manifest["config"]["in_network_share"]
    typer.echo(
        f"wrote {counts['users']:,} users, {counts['items']:,} items, {counts['interactions']:,} interactions "
        f"({manifest['in_network_share']:.1%} in network, target {target:.0%}), "
        f"{counts['social_edges']:,} follows to {out} in {elapsed:.1f} s"
    )


def register(app: typer.Typer) -> None:
    """Add this module's commands to the app."""
    app.command("generate")(generate)
