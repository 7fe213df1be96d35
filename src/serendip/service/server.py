"""Run one server process: logging, the store, the app, uvicorn (what `serendip serve` and each
worker of `serve --workers` run)."""

from __future__ import annotations

import logging
import socket

from serendip.service.settings import Settings

__all__ = ["configure_logging", "redacted_url", "run_server"]


def configure_logging(settings: Settings, who: str | None = None) -> None:
    """Log to stderr at the settings' level; `who` tags each line (a worker, the supervisor)."""
    tag = f"[{who}] " if who else ""
    logging.basicConfig(
        level=settings.log_level.upper(),
        format=f"%(asctime)s %(levelname)s %(name)s: {tag}%(message)s",
    )


def run_server(settings: Settings, sockets: list[socket.socket] | None = None) -> None:
    """Configure logging and run uvicorn on `settings` (blocking); on `sockets` when given
    (a worker of `serve --workers`), else on the settings' host and port."""
    import uvicorn

    from serendip.service.app import create_app
    from serendip.store import Store

    configure_logging(settings, f"worker {settings.worker_index}" if sockets else None)
    log = logging.getLogger("serendip.service")
    if settings.authenticated:
        log.info("API keys configured: %d; every route checks its scope", len(settings.api_keys))
    else:
        log.warning(
            "no API keys configured: the API is UNAUTHENTICATED and bound to %s only",
            settings.host,
        )
    log.info("store %s, artifacts %s", redacted_url(settings.db_url), settings.artifacts_dir)
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


def redacted_url(url: str) -> str:
    """A database or Redis URL without its password, for the log."""
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return "<unparsable url>"
