"""Serendip's storage: events, catalog, users, social graph and model versions in SQL.

One SQLAlchemy 2 implementation behind small repositories, chosen by database URL:
`sqlite:///path.db` (the default; WAL, durable commits) or `postgresql+psycopg://...` at
scale. The schema changes only through the Alembic migrations shipped in this package, which
`Store.open` runs (idempotently) unless told not to.

>>> store = Store.open("sqlite:///:memory:")
>>> store.events.add_batch([EventIn("e1", "alice", "post-1", "like", 1.7e9)])
IngestResult(accepted=1, duplicates=0)
>>> store.close()
"""

from __future__ import annotations

from serendip.store.facade import Store
from serendip.store.repositories import (
    CatalogRepository,
    EventRepository,
    ModelRepository,
    SocialRepository,
    UserRepository,
)
from serendip.store.types import (
    MAX_BATCH,
    MAX_ID_LENGTH,
    Event,
    EventIn,
    Follow,
    IngestResult,
    Item,
    ItemIn,
    ModelVersion,
    NotFoundError,
    User,
    UserIn,
)

__all__ = [
    "MAX_BATCH",
    "MAX_ID_LENGTH",
    "CatalogRepository",
    "Event",
    "EventIn",
    "EventRepository",
    "Follow",
    "IngestResult",
    "Item",
    "ItemIn",
    "ModelRepository",
    "ModelVersion",
    "NotFoundError",
    "SocialRepository",
    "Store",
    "User",
    "UserIn",
    "UserRepository",
]
