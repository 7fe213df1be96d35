"""Fixtures of the operations tests: a fresh store per test (SQLite, and PostgreSQL in a schema
of its own under the `postgres` marker), holding a small simulated platform."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from serendip.store import Store
from serendip.store.scratch import drop_scratch_schema
from tests.service.conftest import fresh_sqlite, postgres_url


@pytest.fixture(scope="session")
def ops_sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated, empty SQLite file that each test copies."""
    path = tmp_path_factory.mktemp("ops-template") / "serendip.db"
    Store.open(f"sqlite:///{path}").close()
    return path


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store(
    request: pytest.FixtureRequest, tmp_path: Path, ops_sqlite_template: Path
) -> Iterator[Store]:
    if request.param == "sqlite":
        s = Store.open(fresh_sqlite(ops_sqlite_template, tmp_path))
        yield s
        s.close()
        return
    url = postgres_url()
    s = Store.open(url)
    try:
        yield s
    finally:
        s.close()
        drop_scratch_schema(url)


@pytest.fixture
def sqlite_store(tmp_path: Path, ops_sqlite_template: Path) -> Iterator[Store]:
    s = Store.open(fresh_sqlite(ops_sqlite_template, tmp_path))
    yield s
    s.close()


@pytest.fixture(scope="session")
def tiny_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The `tiny` synthetic platform in a SQLite file, built once; tests copy it."""
    from tests.operations.traffic import build_tiny_store

    return build_tiny_store(tmp_path_factory.mktemp("tiny"))


@pytest.fixture
def tiny_url(tiny_db: Path, tmp_path: Path) -> str:
    """URL of a fresh copy of the tiny platform's store."""
    path = tmp_path / "store.db"
    shutil.copyfile(tiny_db, path)
    return f"sqlite:///{path}"
