"""`serendip serve`: run the HTTP API (FastAPI on uvicorn).

Settings come from the environment (`SERENDIP_*`, see `serendip.service.settings`) and the
options here, which win. Without API keys the server refuses any host but localhost.
"""

from __future__ import annotations

import logging
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
        }.items()
        if v is not None
    }
    try:
        settings = Settings(**overrides)
    except ValidationError as exc:
        raise config_error_from(exc, "invalid settings") from None
    settings.check_bind()
    run(settings)


def run(settings: Any) -> None:
    """Configure logging and run uvicorn on `settings` (blocking)."""
    import uvicorn

    from serendip.service.app import create_app
    from serendip.store import Store

    level = settings.log_level.upper()
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    log = logging.getLogger("serendip.service")
    if settings.authenticated:
        log.info("API keys configured: %d; every route checks its scope", len(settings.api_keys))
    else:
        log.warning(
            "no API keys configured: the API is UNAUTHENTICATED and bound to %s only",
            settings.host,
        )
    log.info("store %s, artifacts %s", _redact(settings.db_url), settings.artifacts_dir)
    log.info("dashboard at http://%s:%d/", settings.host, settings.port)
    # Open the store here, not in the app's lifespan, so a bad URL or an unreachable database is
    # one `error:` line (cli_errors), not a server traceback.
    store = Store.open(settings.db_url)
    try:
        app = create_app(settings, store=store)
        uvicorn.run(
            app,
            host=settings.host,
            port=settings.port,
            log_level=settings.log_level,
            access_log=False,
            timeout_graceful_shutdown=5,
        )
    finally:
        store.close()


def _redact(url: str) -> str:
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return "<unparsable url>"


def register(app: typer.Typer) -> None:
    """Add this module's commands to the app."""
    app.command("serve")(serve)
