"""`serendip demo`: the main job on the embedded default (what `make demo` runs)."""

from __future__ import annotations

from pathlib import Path

import typer

from serendip.cli._common import cli_errors, console


@cli_errors
def demo(
    out: Path = typer.Option(Path("demo-out"), help="Where the demo writes its data and reports."),
    preset: str = typer.Option("small", help="Synthetic platform preset."),
    seed: int = typer.Option(42, help="Random seed."),
    study: bool = typer.Option(
        True, "--study/--no-study", help="Run the quick study after the analysis."
    ),
) -> None:
    """Generate the synthetic platform, analyse it, write the report, then run the quick study
    on the same platform and write its leaderboard."""
    from serendip.data.analysis import analyze_dataset, write_report
    from serendip.data.loaders import load_source
    from serendip.data.synthetic import generate_platform

    steps = 3 if study else 2
    data_dir = out / f"platform-{preset}"
    console.print(
        f"[bold]1/{steps}[/] generating the '{preset}' synthetic platform into {data_dir}"
    )
    generate_platform(preset, seed=seed, out=data_dir)
    console.print(f"[bold]2/{steps}[/] analysing it")
    ds = load_source(data_dir)
    analysis = analyze_dataset(ds)
    html = write_report(analysis, out / "analysis")
    console.print(f"analysis report: {html}")
    if not study:
        return
    from serendip.cli.study import run_and_report
    from serendip.evaluation.study.config import load_profile, parse_config

    console.print(f"[bold]3/{steps}[/] the quick study on the same platform")
    # The quick profile, pointed at the platform generated above (not generated twice).
    data = load_profile("quick").model_dump(mode="python")
    name = f"synthetic-{preset}"
    data["seed"] = seed
    data["datasets"] = [
        {**data["datasets"][0], "name": name, "source": str(data_dir)},
    ]
    config = parse_config(data, source="demo study")
    # run_and_report prints where results.json and the leaderboard are.
    run_and_report(config, out / "study", datasets={name: ds})


def register(app: typer.Typer) -> None:
    app.command("demo")(demo)
