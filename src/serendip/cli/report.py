"""`serendip report` and `serendip slides`: the decision report (HTML + PDF) and the stakeholder
deck (PPTX + HTML) from a study's output, a scale file and a costs file."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from serendip.cli._common import cli_errors

StudyOpt = Annotated[Path, typer.Option("--study", help="Output directory of `serendip study`.")]
OutOpt = Annotated[Path, typer.Option("--out", help="Directory to write into (created).")]
ScaleOpt = Annotated[
    Path | None,
    typer.Option(
        "--scale",
        help="Scale file (JSON, schema serendip-scale/1); default: built from benchmarks/results.",
    ),
]
CostsOpt = Annotated[
    Path | None,
    typer.Option("--costs", help="Costs TOML (prices, assumptions); default: the shipped one."),
]
AnalysisOpt = Annotated[
    Path | None,
    typer.Option(
        "--analysis",
        help="analysis.json of `serendip analyze` or its directory; default: <study>/../analysis.",
    ),
]
AssessmentOpt = Annotated[
    Path | None,
    typer.Option(
        "--assessment",
        help="The privacy impact assessment: the output directory of `serendip assess` or one of "
        "its files (.json, .html, .md); default: <study>/../assessment when present.",
    ),
]


@cli_errors
def report(
    study: StudyOpt,
    out: OutOpt,
    scale: ScaleOpt = None,
    costs: CostsOpt = None,
    analysis: AnalysisOpt = None,
    assessment: AssessmentOpt = None,
    pdf: Annotated[
        bool, typer.Option("--pdf/--no-pdf", help="Print report.pdf with headless Chromium.")
    ] = True,
) -> None:
    """Write report.html and report.pdf: the recommendation by a stated rule, the literature,
    the data, the prototypes compared, infrastructure and cost at 100K, 1M and 10M users."""
    from serendip.reporting.report import build_report, write_report

    data = build_report(study, scale=scale, costs=costs, analysis=analysis, assessment=assessment)
    html, pdf_path = write_report(data, out, pdf=pdf)
    chosen = data.decision.chosen.label if data.decision.chosen else "none (every option blocked)"
    typer.echo(f"recommendation: {chosen}")
    typer.echo(f"report: {html}" + (f" and {pdf_path}" if pdf_path else ""))


@cli_errors
def slides(
    study: StudyOpt,
    out: OutOpt,
    scale: ScaleOpt = None,
    costs: CostsOpt = None,
    analysis: AnalysisOpt = None,
    assessment: AssessmentOpt = None,
) -> None:
    """Write deck.pptx and deck.html: the stakeholder deck with the key charts, the cost
    comparison and the decision."""
    from serendip.reporting.report import build_report
    from serendip.reporting.slides import write_deck

    data = build_report(study, scale=scale, costs=costs, analysis=analysis, assessment=assessment)
    pptx, html = write_deck(data, out)
    chosen = data.decision.chosen.label if data.decision.chosen else "none (every option blocked)"
    typer.echo(f"recommendation: {chosen}")
    typer.echo(f"slides: {pptx} and {html}")


def register(app: typer.Typer) -> None:
    """Add this module's commands to the app."""
    app.command("report")(report)
    app.command("slides")(slides)
