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
) -> None:
    """Generate the synthetic platform, analyse it, and write the report."""
    from serendip.data.analysis import analyze_dataset, write_report
    from serendip.data.loaders import load_source
    from serendip.data.synthetic import generate_platform

    data_dir = out / f"platform-{preset}"
    console.print(f"[bold]1/2[/] generating the '{preset}' synthetic platform into {data_dir}")
    generate_platform(preset, seed=seed, out=data_dir)
    console.print("[bold]2/2[/] analysing it")
    ds = load_source(data_dir)
    analysis = analyze_dataset(ds)
    html = write_report(analysis, out / "analysis")
    console.print(f"analysis report: {html}")


def register(app: typer.Typer) -> None:
    app.command("demo")(demo)
