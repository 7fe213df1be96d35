"""`serendip study`: every model on every dataset and protocol, tuned, measured, compared."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from serendip.cli._common import cli_errors, console

if TYPE_CHECKING:
    from serendip.evaluation.study.config import StudyConfig
    from serendip.evaluation.study.runner import StudyEvent


def select(
    config: StudyConfig,
    *,
    datasets: list[str] | None = None,
    models: list[str] | None = None,
    protocols: list[str] | None = None,
    max_trials: int | None = None,
) -> StudyConfig:
    """The config narrowed (or redirected) by the command-line overrides.

    datasets: names of the config's datasets to keep; a name the config does not have but that
    is a source (ml-100k, lastfm-2k, synthetic:tiny|small, a path) replaces the datasets with
    that source, split by the protocols of the config's first dataset (so
    `--profile quick --dataset synthetic:tiny` runs the quick study on the tiny preset).
    models: names to keep among the config's models and peers; a registry model the config
    does not list is added with no tuning. protocols: protocol names to keep.
    max_trials: caps every model's tuning trials.
    """
    from serendip.errors import ConfigError
    from serendip.evaluation.study.config import (
        REAL_SOURCES,
        DatasetSpec,
        ModelSpec,
        parse_config,
    )
    from serendip.models.registry import MODELS

    data: dict[str, Any] = config.model_dump(mode="python")
    if datasets:
        by_name = {d["name"]: d for d in data["datasets"]}
        by_source = {d["source"]: d for d in data["datasets"]}
        chosen = []
        for name in datasets:
            if name in by_name:
                chosen.append(by_name[name])
            elif name in by_source:
                chosen.append(by_source[name])
            elif name.startswith("synthetic:") or name in REAL_SOURCES or Path(name).exists():
                protocols_of_first = data["datasets"][0]["protocols"]
                spec = DatasetSpec(source=name, protocols=protocols_of_first)
                chosen.append(spec.model_dump(mode="python"))
            else:
                valid = ", ".join(by_name)
                raise ConfigError(
                    f"--dataset '{name}': not a dataset of the config ({valid}) nor a source "
                    "(ml-100k, lastfm-2k, synthetic:tiny, synthetic:small or a path)"
                )
        data["datasets"] = chosen
    if protocols:
        for d in data["datasets"]:
            known = [p["name"] for p in d["protocols"]]
            d["protocols"] = [p for p in d["protocols"] if p["name"] in protocols]
            if not d["protocols"]:
                raise ConfigError(
                    f"--protocol: dataset '{d['name']}' has none of {', '.join(protocols)}; "
                    f"it has {', '.join(known)}"
                )
    if models:
        listed = {m["name"] for m in data["models"]} | {p["name"] for p in data["peers"]}
        for name in models:
            if name not in listed and name not in MODELS:
                raise ConfigError(
                    f"--model '{name}': not a model of the config, a peer or a registry model"
                )
        data["models"] = [m for m in data["models"] if m["name"] in models]
        data["models"] += [
            ModelSpec(name=n).model_dump(mode="python")
            for n in models
            if n not in listed and n in MODELS and n != "pipeline"
        ]
        data["peers"] = [p for p in data["peers"] if p["name"] in models]
        data["pipeline"]["enabled"] = "pipeline" in models
    if max_trials is not None:
        for m in [*data["models"], *data["peers"]]:
            m["trials"] = min(m["trials"], max_trials)
        data["pipeline"]["trials"] = min(data["pipeline"]["trials"], max_trials)
    return parse_config(data, source="command-line overrides")


class _Display:
    """Rich progress: cells done/left and the cell being computed."""

    def __init__(self) -> None:
        from serendip.cli._common import progress

        self.progress = progress()
        self.task: Any = None

    def __call__(self, event: StudyEvent) -> None:
        if event.kind == "note":
            console.print(f"note: {event.message}")
        elif event.kind == "start":
            self.progress.start()
            self.task = self.progress.add_task("cells", total=event.total, completed=event.done)
            if event.done:
                console.print(f"{event.done} of {event.total} cells already finished: reused")
        elif event.kind == "cell" and event.cell is not None:
            self.progress.update(self.task, description=event.cell.label)
        elif event.kind == "done" and event.row is not None:
            self.progress.update(self.task, completed=event.done)
            row = event.row
            if row["status"] == "ok":
                ndcg = row["metrics"].get("ndcg@10")
                shown = f"ndcg@10 {ndcg:.4f}" if ndcg is not None else "ok"
                self.progress.console.print(
                    f"  {row['dataset']}/{row['protocol']}/{row['model']}: {shown} "
                    f"(fit {row['cost']['fit_seconds']:.1f}s)"
                )
            else:
                self.progress.console.print(
                    f"  [red]{row['dataset']}/{row['protocol']}/{row['model']} failed[/]: "
                    f"{row['error']}"
                )

    def stop(self) -> None:
        self.progress.stop()


def run_and_report(
    config: StudyConfig,
    out: Path,
    *,
    fresh: bool = False,
    sources: dict[str, Path] | None = None,
    datasets: dict[str, Any] | None = None,
    leaderboard: bool = True,
) -> dict[str, Any]:
    """Run a study with a progress display and print where its outputs are (also used by
    `serendip demo`). Ctrl-C stops it; finished cells stay cached for the next run."""
    from serendip.evaluation.study.runner import StudyRunner

    display = _Display()
    runner = StudyRunner(
        config,
        out,
        fresh=fresh,
        on_event=display,
        sources=sources,
        datasets=datasets,
        leaderboard=leaderboard,
    )
    try:
        results = runner.run()
    except KeyboardInterrupt:
        display.stop()
        console.print(
            f"interrupted: finished cells are kept under {out / 'cells'}; rerun to resume"
        )
        raise typer.Exit(code=130) from None
    finally:
        display.stop()
    study = results["study"]
    failed = study["failed"]
    console.print(
        f"study done in {study['seconds']:.1f}s: {len(results['rows'])} cells"
        + (f", [red]{failed} failed[/]" if failed else "")
    )
    for note in study["notes"]:
        console.print(f"note: {note}")
    console.print(f"results: {out / 'results.json'} and {out / 'results.csv'}")
    if runner.leaderboard_path is not None:
        console.print(f"leaderboard: {runner.leaderboard_path}")
    return results


@cli_errors
def study(
    out: Annotated[Path, typer.Option("--out", help="Directory of the study's outputs.")],
    config_file: Annotated[
        Path | None, typer.Option("--config", help="Study config (TOML).")
    ] = None,
    profile: Annotated[
        str | None,
        typer.Option("--profile", help="Shipped profile: quick or full (default quick)."),
    ] = None,
    dataset: Annotated[
        list[str] | None,
        typer.Option(
            "--dataset",
            help="Only this dataset (repeatable); a source name (ml-100k, synthetic:tiny, a path) "
            "not in the config replaces its datasets.",
        ),
    ] = None,
    model: Annotated[
        list[str] | None, typer.Option("--model", help="Only this model or peer (repeatable).")
    ] = None,
    protocol: Annotated[
        list[str] | None, typer.Option("--protocol", help="Only this protocol (repeatable).")
    ] = None,
    max_trials: Annotated[
        int | None, typer.Option("--max-trials", min=0, help="Cap every model's tuning trials.")
    ] = None,
    fresh: Annotated[
        bool, typer.Option("--fresh", help="Recompute finished cells instead of reusing them.")
    ] = False,
    leaderboard: Annotated[
        bool,
        typer.Option(
            "--leaderboard/--no-leaderboard", help="Write the HTML leaderboard at the end."
        ),
    ] = True,
) -> None:
    """Tune, fit, measure and compare every model of a study config; resumable."""
    from serendip.errors import ConfigError
    from serendip.evaluation.study.config import load_config, load_profile

    if config_file is not None and profile is not None:
        raise ConfigError("give --config or --profile, not both")
    config = (
        load_config(config_file) if config_file is not None else load_profile(profile or "quick")
    )
    config = select(
        config, datasets=dataset, models=model, protocols=protocol, max_trials=max_trials
    )
    run_and_report(config, out, fresh=fresh, leaderboard=leaderboard)
    sys.stdout.flush()


def register(app: typer.Typer) -> None:
    """Add this module's commands to the app."""
    app.command("study")(study)
