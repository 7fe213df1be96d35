"""Alembic environment: runs on the connection `serendip.store.engine.migrate` hands over.

There is no alembic.ini and no URL here on purpose: the store owns the engine (and its SQLite
durability settings), and passes a connection that is already inside a transaction.
"""

from __future__ import annotations

from alembic import context

from serendip.store.schema import Base


def run_migrations() -> None:
    connection = context.config.attributes.get("connection")
    if connection is None:
        raise RuntimeError(
            "run Serendip's migrations through serendip.store.Store.open (or "
            "serendip.store.engine.migrate), which passes the connection in"
        )
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()


# Alembic executes this file with `context.config` set; a plain import (doctest collection,
# an IDE) must not try to migrate anything.
if getattr(context, "config", None) is not None:
    run_migrations()
