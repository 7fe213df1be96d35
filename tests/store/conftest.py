"""Store fixtures: every contract test runs against SQLite (a temporary file) and PostgreSQL.

The PostgreSQL run (marker `postgres`) uses the server at 127.0.0.1:5432, database `test`,
trust auth (`.ci/run` starts it), or `SERENDIP_TEST_POSTGRES_URL`. Each test gets its own
schema, put first on the connection's search_path, and dropped afterwards, so parallel runs
never see each other's tables.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from sqlalchemy import create_engine, text

from serendip.store import Store
from serendip.store.scratch import scratch_schema

POSTGRES_URL = os.environ.get(
    "SERENDIP_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)


def _postgres_reason() -> str | None:
    """Why PostgreSQL tests cannot run here, or None when they can."""
    try:
        import psycopg  # noqa: F401
    except ImportError:
        return "psycopg is not installed (pip install 'serendip[postgres]')"
    try:
        engine = create_engine(POSTGRES_URL, connect_args={"connect_timeout": 3})
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        engine.dispose()
    except Exception as exc:  # any connection failure means: skip, saying why
        return f"PostgreSQL not reachable at {POSTGRES_URL}: {type(exc).__name__}"
    return None


_PG_REASON: list[str | None] = []


def _pg_reason_cached() -> str | None:
    if not _PG_REASON:
        _PG_REASON.append(_postgres_reason())
    return _PG_REASON[0]


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store_url(request: pytest.FixtureRequest, tmp_path) -> Iterator[str]:
    """A database URL of an empty database (no tables yet), per backend."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'store.db'}"
        return
    reason = _pg_reason_cached()
    if reason:
        pytest.skip(reason)
    with scratch_schema(POSTGRES_URL, "t") as url:
        yield url


@pytest.fixture
def store(store_url: str) -> Iterator[Store]:
    """A migrated, empty store on each backend."""
    s = Store.open(store_url)
    try:
        yield s
    finally:
        s.close()
