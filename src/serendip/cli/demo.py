"""`serendip demo`: the main job on the embedded default (what `make demo` runs).

The whole story on one synthetic platform: generate it, analyse it, compare the approaches in
the quick study (the production pipeline included), write the privacy impact assessment, the
decision report and the stakeholder deck from those files, then serve the platform with the
dashboard (the study's leaderboard in it) until Ctrl-C.
"""

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
        True, "--study/--no-study", help="Run the quick study, the report and the deck."
    ),
    serve: bool = typer.Option(
        True, "--serve/--no-serve", help="Serve the platform with the dashboard at the end."
    ),
    port: int = typer.Option(8000, min=0, max=65535, help="Port of the demo server."),
) -> None:
    """Generate the synthetic platform, analyse it, run the quick study with the pipeline,
    write the privacy assessment, the report (HTML, PDF) and the deck, then serve it all:
    recommendations over HTTP and the dashboard at http://127.0.0.1:PORT/ (Ctrl-C stops)."""
    from serendip.data.analysis import analyze_dataset, write_report
    from serendip.data.loaders import load_source
    from serendip.data.synthetic import generate_platform

    steps = 2 + (3 if study else 0) + (1 if serve else 0)
    step = iter(range(1, steps + 1))
    data_dir = out / f"platform-{preset}"
    serve_dir = out / "serve"
    db_url = f"sqlite:///{(serve_dir / 'serendip.db').resolve()}"
    console.print(
        f"[bold]{next(step)}/{steps}[/] generating the '{preset}' synthetic platform into "
        f"{data_dir}"
    )
    generate_platform(preset, seed=seed, out=data_dir)
    console.print(f"[bold]{next(step)}/{steps}[/] analysing it")
    ds = load_source(data_dir)
    analysis = analyze_dataset(ds)
    html = write_report(analysis, out / "analysis")
    console.print(f"analysis report: {html}")
    if study:
        from serendip.cli.study import run_and_report
        from serendip.evaluation.study.config import load_profile, parse_config

        console.print(
            f"[bold]{next(step)}/{steps}[/] the quick study on the same platform, the "
            "production pipeline included"
        )
        # The quick profile, pointed at the platform generated above (not generated twice).
        data = load_profile("quick").model_dump(mode="python")
        name = f"synthetic-{preset}"
        data["seed"] = seed
        data["datasets"] = [{**data["datasets"][0], "name": name, "source": str(data_dir)}]
        data["pipeline"] = {**data.get("pipeline", {}), "enabled": True}
        config = parse_config(data, source="demo study")
        # run_and_report prints where results.json and the leaderboard are.
        run_and_report(config, out / "study", datasets={name: ds})

        console.print(f"[bold]{next(step)}/{steps}[/] the privacy impact assessment")
        _assess(db_url, serve_dir, out / "assessment")

        console.print(f"[bold]{next(step)}/{steps}[/] the decision report and the deck")
        _report(out / "study", out / "report")
    if serve:
        console.print(
            f"[bold]{next(step)}/{steps}[/] serving the platform (seed {seed}) from {serve_dir}"
        )
        _serve(db_url, serve_dir, preset, seed, port, out / "study" if study else None)


def _assess(db_url: str, serve_dir: Path, out: Path) -> None:
    from serendip.reporting.assessment import build_assessment, write_assessment
    from serendip.service.settings import Settings
    from serendip.store import Store

    serve_dir.mkdir(parents=True, exist_ok=True)
    Store.open(db_url).close()  # the schema the server will run on
    assessment = build_assessment(db_url, Settings(db_url=db_url))
    _, html, _ = write_assessment(assessment, out)
    console.print(f"privacy impact assessment: {html}")


def _report(study_dir: Path, out: Path) -> None:
    from serendip.reporting.report import build_report, chromium_path, write_report
    from serendip.reporting.slides import write_deck

    data = build_report(study_dir)
    html, pdf = write_report(data, out, pdf=chromium_path() is not None)
    pptx, deck_html = write_deck(data, out)
    chosen = data.decision.chosen.label if data.decision.chosen else "none (every option blocked)"
    console.print(f"recommendation: [bold]{chosen}[/]")
    console.print(f"report: {html}" + (f" and {pdf}" if pdf else " (no PDF: chromium absent)"))
    console.print(f"deck: {pptx} and {deck_html}")


def _serve(
    db_url: str, serve_dir: Path, preset: str, seed: int, port: int, study_dir: Path | None
) -> None:
    from serendip.service.server import run_server
    from serendip.service.settings import Settings

    settings = Settings(
        db_url=db_url,
        artifacts_dir=serve_dir / "artifacts",
        port=port,
        bootstrap_preset=preset,
        bootstrap_seed=seed,
        study_dir=study_dir,
    )
    console.print(
        f"dashboard: [bold]http://127.0.0.1:{port}/[/]  API docs: http://127.0.0.1:{port}/docs  "
        "(a first start serves a fast model within about 20 s and swaps in the pipeline when "
        "its fit ends; Ctrl-C stops)"
    )
    run_server(settings)


def register(app: typer.Typer) -> None:
    app.command("demo")(demo)
