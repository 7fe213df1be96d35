"""`serendip serve`: run the HTTP API (FastAPI on uvicorn).

Settings come from the environment (`SERENDIP_*`, see `serendip.service.settings`) and the
options here, which win. Without API keys the server refuses any host but localhost.
"""

from __future__ import annotations

import logging
import socket
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
    if settings.workers == 1:
        run(settings)
        return
    from serendip.service.workers import auto_workers, run_workers

    _log_to_stderr(settings, "supervisor")
    n = settings.workers or auto_workers()
    code = run_workers(settings, overrides, n)
    if code:
        raise typer.Exit(code)


def _log_to_stderr(settings: Any, who: str | None) -> None:
    tag = f"[{who}] " if who else ""
    logging.basicConfig(
        level=settings.log_level.upper(),
        format=f"%(asctime)s %(levelname)s %(name)s: {tag}%(message)s",
    )


def run(settings: Any, sockets: list[socket.socket] | None = None) -> None:
    """Configure logging and run uvicorn on `settings` (blocking); on `sockets` when given
    (a worker of `serve --workers`), else on the settings' host and port."""
    import uvicorn

    from serendip.service.app import create_app
    from serendip.store import Store

    _log_to_stderr(settings, f"worker {settings.worker_index}" if sockets else None)
    log = logging.getLogger("serendip.service")
    if settings.authenticated:
        log.info("API keys configured: %d; every route checks its scope", len(settings.api_keys))
    else:
        log.warning(
            "no API keys configured: the API is UNAUTHENTICATED and bound to %s only",
            settings.host,
        )
    log.info("store %s, artifacts %s", _redact(settings.db_url), settings.artifacts_dir)
    if settings.leads:
        log.info("dashboard at http://%s:%d/", settings.host, settings.port)
    # Open the store here, not in the app's lifespan, so a bad URL or an unreachable database is
    # one `error:` line (cli_errors), not a server traceback.
    store = Store.open(settings.db_url)
    try:
        app = create_app(settings, store=store)
        config = uvicorn.Config(
            app,
            host=settings.host,
            port=settings.port,
            log_level=settings.log_level,
            access_log=False,
            timeout_graceful_shutdown=5,
        )
        uvicorn.Server(config).run(sockets=sockets)
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
