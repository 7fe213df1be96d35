"""Engines by URL, durability settings, and the Alembic migrations."""

from __future__ import annotations

import pytest
from alembic import command
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, text

from serendip.errors import ConfigError
from serendip.store import EventIn, Store
from serendip.store.engine import _alembic_config, migrate, schema_head

TABLES = {"events", "items", "users", "follows", "model_versions", "model_activations", "unfollows"}


def _revision(store: Store) -> str | None:
    with store.database.read() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def test_migrations_build_the_schema_on_an_empty_database_and_are_idempotent(
    store_url: str,
) -> None:
    with Store.open(store_url) as store:
        assert _revision(store) == schema_head() == "0004"
        names = set(inspect(store.database.engine).get_table_names())
        assert names >= TABLES | {"alembic_version"}
        store.events.add(EventIn("e", "u", "i", "view", 1.0))
        assert migrate(store.database) == "0004"  # again: nothing to do
    with Store.open(store_url) as again:  # reopening migrates nothing and keeps the data
        assert again.events.count() == 1


def test_migrations_downgrade_and_upgrade(store_url: str) -> None:
    with Store.open(store_url) as store:
        cfg = _alembic_config()
        with store.database.write() as conn:
            cfg.attributes["connection"] = conn
            command.downgrade(cfg, "base")
        assert not (set(inspect(store.database.engine).get_table_names()) & TABLES)
        assert migrate(store.database) == "0004"
        assert set(inspect(store.database.engine).get_table_names()) >= TABLES


def test_a_0001_database_with_data_upgrades_to_the_unfollow_log(store_url: str) -> None:
    with Store.open(store_url) as store:
        store.social.follow("a", "b", 1.0)
        cfg = _alembic_config()
        with store.database.write() as conn:
            cfg.attributes["connection"] = conn
            command.downgrade(cfg, "0001")
        assert "unfollows" not in set(inspect(store.database.engine).get_table_names())
        assert migrate(store.database) == "0004"
        assert store.social.followees("a") == ["b"]  # the data survived
        assert store.social.unfollow("a", "b") is True
        assert [c[0] for c in store.social.changes_since(0.0)] == ["unfollow"]


def test_migrate_false_refuses_an_unmigrated_database(store_url: str) -> None:
    with pytest.raises(ConfigError, match="migrate=True"):
        Store.open(store_url, migrate=False)
    Store.open(store_url).close()
    with Store.open(store_url, migrate=False) as store:
        assert store.events.count() == 0


def test_unknown_url_scheme_lists_the_valid_ones() -> None:
    with pytest.raises(ConfigError, match=r"valid: sqlite.*postgresql\+psycopg"):
        Store.open("mysql://localhost/db")
    with pytest.raises(ConfigError, match="not a URL"):
        Store.open("no scheme here")


def test_sqlite_file_is_durable_wal(tmp_path) -> None:
    with Store.open(f"sqlite:///{tmp_path / 'nested' / 's.db'}") as store:
        assert store.backend == "sqlite"
        with store.database.read() as conn:
            assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
            assert conn.execute(text("PRAGMA synchronous")).scalar() == 2  # FULL


def test_in_memory_sqlite_is_shared_across_threads() -> None:
    import threading

    with Store.open("sqlite:///:memory:") as store:
        t = threading.Thread(target=store.events.add, args=(EventIn("e", "u", "i"),))
        t.start()
        t.join()
        assert store.events.count() == 1


def test_migrated_schema_matches_the_declarative_models(store_url: str) -> None:
    from alembic.autogenerate import compare_metadata

    from serendip.store.schema import Base

    with Store.open(store_url) as store, store.database.read() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert diff == []
