"""Alembic migrations of the store's schema (run by `serendip.store.engine.migrate`)."""
