"""Scratch PostgreSQL schemas: isolated while they live, gone afterwards."""

from __future__ import annotations

import pytest
from sqlalchemy import create_engine, text

from serendip.store import Store
from serendip.store.scratch import drop_scratch_schema, scratch_schema
from tests.store.conftest import POSTGRES_URL, _pg_reason_cached


def _schemas_like(prefix: str) -> set[str]:
    engine = create_engine(POSTGRES_URL)
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                text("SELECT nspname FROM pg_namespace WHERE nspname LIKE :p"), {"p": f"{prefix}%"}
            )
            return {r[0] for r in rows}
    finally:
        engine.dispose()


@pytest.mark.postgres
def test_scratch_schema_holds_the_store_tables_and_is_dropped_after() -> None:
    reason = _pg_reason_cached()
    if reason:
        pytest.skip(reason)
    with scratch_schema(POSTGRES_URL, "scratchtest") as url:
        (schema,) = _schemas_like("scratchtest_")
        store = Store.open(url)
        try:
            assert store.catalog.count() == 0
        finally:
            store.close()
        engine = create_engine(POSTGRES_URL)
        with engine.connect() as conn:
            tables = conn.execute(
                text("SELECT table_name FROM information_schema.tables WHERE table_schema = :s"),
                {"s": schema},
            )
            assert "events" in {r[0] for r in tables}
        engine.dispose()
    assert _schemas_like("scratchtest_") == set()


def test_drop_refuses_a_url_without_a_scratch_schema() -> None:
    with pytest.raises(ValueError, match="not a scratch-schema URL"):
        drop_scratch_schema("postgresql+psycopg://postgres@127.0.0.1:5432/test")
