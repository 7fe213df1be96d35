"""`serendip assess`: write the privacy impact assessment of a store and its settings.

The data inventory comes from the live schema of `--db`, the settings from the environment
(`SERENDIP_*`, as `serendip serve` reads them; `--db` wins), and every mitigation listed has
its enforcing code and its proving test checked to exist (`serendip.reporting.assessment`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from serendip.cli._common import cli_errors


@cli_errors
def assess(
    db: Annotated[
        str,
        typer.Option("--db", help="Store URL, e.g. sqlite:///./serendip-data/serendip.db."),
    ],
    out: Annotated[
        Path, typer.Option("--out", help="Directory for the .md, .html and .json documents.")
    ],
    repo: Annotated[
        Path | None,
        typer.Option(
            "--repo",
            help="Repository whose tests/ prove the mitigations (default: this checkout).",
        ),
    ] = None,
) -> None:
    """Write the privacy impact assessment (Markdown, HTML, JSON) of the store at --db under
    the current settings: data inventory, settings, purposes, risks, and the mitigations whose
    code and test exist (the others listed as missing)."""
    from pydantic import ValidationError

    from serendip.errors import ConfigError, config_error_from
    from serendip.reporting.assessment import build_assessment, write_assessment
    from serendip.service.settings import Settings

    if db.startswith("sqlite:///") and ":memory:" not in db:
        path = Path(db.removeprefix("sqlite:///"))
        if not path.is_file():
            raise ConfigError(f"--db {db}: no such database file")
    if repo is not None and not (repo / "tests").is_dir():
        raise ConfigError(f"--repo {repo}: no tests/ directory there")
    try:
        settings = Settings(db_url=db)
    except ValidationError as exc:
        raise config_error_from(exc, "invalid settings") from None
    assessment = build_assessment(db, settings, root=repo)
    md, html, _ = write_assessment(assessment, out)
    personal = len(assessment.personal_tables)
    typer.echo(
        f"{len(assessment.tables)} tables ({personal} with personal data), "
        f"{len(assessment.mitigations)} mitigations in place, "
        f"{len(assessment.missing)} missing: {md} and {html}"
    )
    for note in assessment.notes:
        typer.echo(f"note: {note}", err=True)


def register(app: typer.Typer) -> None:
    """Add this module's commands to the app."""
    app.command("assess")(assess)
