"""Plain, immutable data classes that cross the store's boundary (in and out).

IDs are external strings; times are float epoch seconds (UTC). The repositories check that what
they are given is storable (non-empty IDs of bounded length, a known event type, finite numbers)
and raise `DataError` naming the row and field; everything else (is this timestamp plausible, is
this user allowed to write) is the API layer's business.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from serendip.errors import DataError

__all__ = [
    "MAX_BATCH",
    "MAX_ID_LENGTH",
    "Event",
    "EventIn",
    "Follow",
    "IngestResult",
    "Item",
    "ItemIn",
    "ModelVersion",
    "NotFoundError",
    "User",
    "UserIn",
]

#: Largest `EventRepository.add_batch` accepted: one transaction, bounded memory and lock time.
MAX_BATCH = 10_000
#: Longest external ID (user, item, event_id, version) the schema stores.
MAX_ID_LENGTH = 256


class NotFoundError(DataError, LookupError):
    """The named thing (a model version, ...) is not in the store; the API answers 404."""


@dataclass(frozen=True, slots=True)
class EventIn:
    """One interaction to store. `timestamp` None means "when the store received it";
    `value` None means no value (a rating or listen count otherwise)."""

    event_id: str
    user: str
    item: str
    event: str = "view"
    timestamp: float | None = None
    value: float | None = None


@dataclass(frozen=True, slots=True)
class Event:
    """A stored interaction; `received_at` is when the store accepted it."""

    event_id: str
    user: str
    item: str
    event: str
    timestamp: float
    value: float | None
    received_at: float


@dataclass(frozen=True, slots=True)
class IngestResult:
    """What `add_batch` did: `accepted` new events, `duplicates` whose event_id was already
    stored (or repeated inside the batch) and so were skipped; `accepted_rows` the positions in
    the batch of the stored ones when some were skipped (None: all or none were stored)."""

    accepted: int
    duplicates: int
    accepted_rows: tuple[int, ...] | None = None


@dataclass(frozen=True, slots=True)
class ItemIn:
    """An item to create or replace. `author` is the author's external user ID ("" unknown)."""

    item: str
    title: str = ""
    text: str = ""
    tags: tuple[str, ...] = ()
    category: str = ""
    author: str = ""
    created_at: float | None = None


@dataclass(frozen=True, slots=True)
class Item:
    """A stored item; `deleted_at` is set (and the item hidden everywhere) once deleted."""

    item: str
    title: str
    text: str
    tags: tuple[str, ...]
    category: str
    author: str
    created_at: float | None
    updated_at: float
    deleted_at: float | None = None


@dataclass(frozen=True, slots=True)
class UserIn:
    """A user profile to create or replace; `private` hides the user's activity from others."""

    user: str
    interests: tuple[str, ...] = ()
    private: bool = False
    created_at: float | None = None


@dataclass(frozen=True, slots=True)
class User:
    user: str
    interests: tuple[str, ...]
    private: bool
    created_at: float | None
    updated_at: float


@dataclass(frozen=True, slots=True)
class Follow:
    follower: str
    followee: str
    created_at: float


@dataclass(frozen=True, slots=True)
class ModelVersion:
    """A registered model artifact. `status`: "registered", "active", "retired" (was active
    once) or "failed" (did not load or validate; see `error`). `lineage`: where the version
    came from (data window, parameters, metrics of the gate, code version, parent version), as
    the retraining job records it; empty for versions registered without one."""

    version: str
    name: str
    path: str
    metrics: dict[str, Any] = field(default_factory=dict)
    created_at: float = 0.0
    status: str = "registered"
    active: bool = False
    error: str | None = None
    lineage: dict[str, Any] = field(default_factory=dict)
