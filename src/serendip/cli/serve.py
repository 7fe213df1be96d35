"""`serendip serve`: run the HTTP API (FastAPI on uvicorn).

Settings come from the environment (`SERENDIP_*`, see `serendip.service.settings`) and the
options here, which win. Without API keys the server refuses any host but localhost.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from serendip.cli._common import cli_errors
from serendip.errors import config_error_from


@cli_errors
def serve(
    db: str | None = typer.Option(
        None, "--db", help="Store URL (default sqlite:///./serendip-data/serendip.db)."
    ),
    artifacts: Path | None = typer.Option(
        None, "--artifacts", help="Model artifacts directory (default ./serendip-data/artifacts)."
    ),
    host: str | None = typer.Option(None, "--host", help="Interface to bind (default 127.0.0.1)."),
    port: int | None = typer.Option(None, "--port", min=0, max=65535, help="Port (default 8000)."),
    study: Path | None = typer.Option(
        None, "--study", help="A `serendip study` output directory for the dashboard's leaderboard."
    ),
    workers: int | None = typer.Option(
        None,
        "--workers",
        min=0,
        max=64,
        help="Server processes sharing the port, the store and the model (0: one per core; "
        "default 1).",
    ),
) -> None:
    """Serve recommendations, events, catalog, users and models over HTTP (docs at /docs).

    On the first start with an empty store it loads a synthetic platform, serves a fast model
    within about 20 s and swaps in the default model (the pipeline) when its fit ends; /readyz
    says which model serves and what the start is doing."""
    from pydantic import ValidationError

    from serendip.service.settings import Settings

    overrides: dict[str, Any] = {
        k: v
        for k, v in {
            "db_url": db,
            "artifacts_dir": artifacts,
            "host": host,
            "port": port,
            "study_dir": study,
            "workers": workers,
        }.items()
        if v is not None
    }
    try:
        settings = Settings(**overrides)
    except ValidationError as exc:
        raise config_error_from(exc, "invalid settings") from None
    settings.check_bind()
    if settings.redis_url is not None:
        from serendip.service.notices import check_client

        check_client()
    from serendip.service.server import configure_logging, run_server

    if settings.workers == 1:
        run_server(settings)
        return
    from serendip.service.workers import auto_workers, run_workers

    configure_logging(settings, "supervisor")
    n = settings.workers or auto_workers()
    code = run_workers(settings, overrides, n)
    if code:
        raise typer.Exit(code)


def register(app: typer.Typer) -> None:
    """Add this module's commands to the app."""
    app.command("serve")(serve)
