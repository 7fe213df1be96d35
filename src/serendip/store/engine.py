"""Engines by URL, the SQLite settings that make commits durable, and running the migrations.

SQLite runs in WAL mode with `synchronous=FULL`: every commit fsyncs the write-ahead log before
it returns, so an acknowledged write survives a process kill *and* a power loss or OS crash.
(`NORMAL` would survive a process SIGKILL too, since the WAL is already in the OS page cache,
but could lose the last commits on power loss; with batched ingestion the extra fsync per
commit costs little, so we take the stronger guarantee.) Write transactions start with
`BEGIN IMMEDIATE`, so two writers queue on the busy timeout instead of failing with
"database is locked" when one of them upgrades a read lock.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError
from sqlalchemy.pool import StaticPool

from serendip.errors import ConfigError

__all__ = ["VALID_SCHEMES", "Database", "make_engine", "migrate", "schema_head"]

#: URL schemes `Store.open` accepts (plain "postgresql://" means psycopg 3).
VALID_SCHEMES = ("sqlite", "sqlite+pysqlite", "postgresql", "postgresql+psycopg")

_MIGRATIONS = Path(__file__).resolve().parent / "migrations"
#: pg_advisory_xact_lock key that serialises concurrent migrations of one database.
_PG_MIGRATION_LOCK = 0x5E4E_D1B0
_SQLITE_BUSY_TIMEOUT_MS = 30_000


def make_engine(url: str, *, echo: bool = False) -> Engine:
    """An engine for `url`, configured per backend; unknown schemes fail with the valid list."""
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise ConfigError(
            f"database URL '{url}' is not a URL; expected e.g. sqlite:///serendip.db or "
            "postgresql+psycopg://user@host:5432/db"
        ) from exc
    scheme = parsed.drivername
    if scheme not in VALID_SCHEMES:
        raise ConfigError(
            f"unsupported database URL scheme '{scheme}'; valid: {', '.join(VALID_SCHEMES)}"
        )
    if scheme.startswith("sqlite"):
        return _sqlite_engine(parsed.database, echo=echo)
    if scheme == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg")
    try:
        return create_engine(parsed, echo=echo, pool_pre_ping=True, pool_size=8, max_overflow=8)
    except ModuleNotFoundError as exc:  # psycopg not installed
        raise ConfigError(
            "PostgreSQL needs the psycopg package: pip install 'serendip[postgres]'"
        ) from exc


def _sqlite_engine(database: str | None, *, echo: bool) -> Engine:
    memory = database in (None, "", ":memory:")
    if memory:
        # One shared connection, or every pooled connection would see its own empty database.
        engine = create_engine(
            "sqlite://",
            echo=echo,
            poolclass=StaticPool,
            connect_args={"check_same_thread": False},
        )
    else:
        assert database is not None
        Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(
            f"sqlite:///{Path(database).expanduser()}",
            echo=echo,
            connect_args={"timeout": _SQLITE_BUSY_TIMEOUT_MS / 1000},
        )

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Hand transaction control to SQLAlchemy (the `begin` hook below), not to sqlite3's
        # implicit BEGIN before DML, so reads get a snapshot and writes lock up front.
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        if not memory:
            cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=FULL")
        cur.execute(f"PRAGMA busy_timeout={_SQLITE_BUSY_TIMEOUT_MS}")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        write = conn.get_execution_options().get("serendip_write", False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")

    return engine


class Database:
    """An engine plus the two ways the repositories use it: a read snapshot and a write
    transaction (committed when the block exits, rolled back on an exception)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.dialect = engine.dialect.name  # "sqlite" | "postgresql"

    @contextmanager
    def read(self) -> Iterator[Connection]:
        with self.engine.connect() as conn, conn.begin():
            yield conn

    @contextmanager
    def write(self) -> Iterator[Connection]:
        with self.engine.connect() as conn:
            conn.execution_options(serendip_write=True)
            with conn.begin():
                yield conn


def _alembic_config() -> Any:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(_MIGRATIONS))
    return cfg


def schema_head() -> str | None:
    """The newest migration revision shipped with this Serendip."""
    from alembic.script import ScriptDirectory

    head: str | None = ScriptDirectory.from_config(_alembic_config()).get_current_head()
    return head


def migrate(db: Database) -> str | None:
    """Upgrade the schema to the newest migration; a no-op when it is already there.

    Returns the revision the database is at afterwards. Safe to call from several processes
    at once: SQLite serialises on the write lock, PostgreSQL on an advisory lock.
    """
    from alembic import command
    from alembic.runtime.migration import MigrationContext

    cfg = _alembic_config()
    head = schema_head()
    with db.read() as conn:
        if MigrationContext.configure(conn).get_current_revision() == head:
            return head
    with db.write() as conn:
        if db.dialect == "postgresql":
            conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_MIGRATION_LOCK})
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")
        current: str | None = MigrationContext.configure(conn).get_current_revision()
    return current
