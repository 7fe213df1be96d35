"""One small repository per area, all on SQLAlchemy Core over a shared `Database`.

Writes use Core `insert()` with executemany (one round trip per batch on psycopg 3's pipeline,
one prepared statement on SQLite), never ORM objects: ingestion is the hot path. Idempotency
comes from the database (`ON CONFLICT DO NOTHING` on unique keys), so a retried batch, or two
workers sending the same event, store it once.

Repositories check only that data is storable (IDs non-empty and at most `MAX_ID_LENGTH`
characters, known event types, finite numbers) and raise `DataError` naming the row and field;
a database exception never reaches the caller for input the caller could have fixed.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import Table, and_, delete, func, select, text, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Row
from sqlalchemy.exc import IntegrityError

from serendip.data.dataset import EVENT_TYPES
from serendip.errors import DataError, SerendipError
from serendip.store.engine import Database
from serendip.store.schema import (
    EventRow,
    FollowRow,
    ItemRow,
    ModelActivationRow,
    ModelVersionRow,
    UnfollowRow,
    UserRow,
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
    "CatalogRepository",
    "EventRepository",
    "ModelRepository",
    "SocialRepository",
    "UserRepository",
]

Clock = Callable[[], float]

# SQLAlchemy types a mapped class's `__table__` as the wider `FromClause`; a declarative class
# with `__tablename__` always gets a `Table`, which the dialect INSERTs below need.
EVENTS: Table = EventRow.__table__  # type: ignore[assignment]
ITEMS: Table = ItemRow.__table__  # type: ignore[assignment]
USERS: Table = UserRow.__table__  # type: ignore[assignment]
FOLLOWS: Table = FollowRow.__table__  # type: ignore[assignment]
MODELS: Table = ModelVersionRow.__table__  # type: ignore[assignment]
ACTIVATIONS: Table = ModelActivationRow.__table__  # type: ignore[assignment]
UNFOLLOWS: Table = UnfollowRow.__table__  # type: ignore[assignment]

_EVENT_SET = frozenset(EVENT_TYPES)
#: pg_advisory_xact_lock key serialising model-version changes.
_PG_MODELS_LOCK = 0x5E4E_D1B1
#: Rows per IN (...) list: well under SQLite's and PostgreSQL's bound-parameter limits.
_IN_CHUNK = 1_000
#: Most tags (or interests) on one item (or user).
_MAX_TAGS = 1_000


# --------------------------------------------------------------------- validation helpers
def _check_id(value: Any, field: str, row: int | None = None) -> str:
    if not isinstance(value, str) or not value:
        raise DataError(f"must be a non-empty string, got {value!r}", field=field, row=row)
    if len(value) > MAX_ID_LENGTH:
        raise DataError(
            f"is {len(value)} characters long; at most {MAX_ID_LENGTH} allowed",
            field=field,
            row=row,
        )
    if "\x00" in value:  # PostgreSQL cannot store NUL in text
        raise DataError("contains a NUL character", field=field, row=row)
    return value


def _is_id(value: Any) -> bool:
    """What `_check_id` accepts, as a bool (the vectorised checks of bulk imports)."""
    return isinstance(value, str) and 0 < len(value) <= MAX_ID_LENGTH and "\x00" not in value


def _first(mask: np.ndarray) -> int:
    """1-based row of the first True."""
    return int(np.argmax(mask)) + 1


def _check_number(value: Any, field: str, row: int | None = None) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise DataError(f"must be a number, got {value!r}", field=field, row=row)
    out = float(value)
    if not math.isfinite(out):
        raise DataError(f"must be finite, got {value!r}", field=field, row=row)
    return out


def _check_str(value: Any, field: str, row: int | None, max_len: int | None = None) -> str:
    if not isinstance(value, str):
        raise DataError(f"must be a string, got {type(value).__name__}", field=field, row=row)
    if max_len is not None and len(value) > max_len:
        raise DataError(
            f"is {len(value)} characters long; at most {max_len} allowed", field=field, row=row
        )
    if "\x00" in value:
        raise DataError("contains a NUL character", field=field, row=row)
    return value


def _check_tags(value: Any, field: str, row: int | None) -> list[str]:
    if isinstance(value, str) or not isinstance(value, Iterable):
        raise DataError("must be a list of strings", field=field, row=row)
    out = [_check_str(t, field, row, MAX_ID_LENGTH) for t in value]
    if len(out) > _MAX_TAGS:
        raise DataError(f"has {len(out)} entries; at most {_MAX_TAGS}", field=field, row=row)
    return out


def _chunks(seq: Sequence[str], n: int = _IN_CHUNK) -> Iterable[Sequence[str]]:
    for i in range(0, len(seq), n):
        yield seq[i : i + n]


class _Repository:
    def __init__(self, db: Database, clock: Clock = time.time) -> None:
        self._db = db
        self._clock = clock

    def _insert(self, table: Table) -> Any:
        """The dialect's INSERT, which has `on_conflict_do_nothing/do_update`."""
        if self._db.dialect == "postgresql":
            return postgresql.insert(table)
        return sqlite.insert(table)

    def _count(self, table: Table, *where: Any) -> int:
        """Rows of `table` matching the `where` clauses (all rows when none)."""
        q = select(func.count()).select_from(table).where(*where)
        with self._db.read() as conn:
            return int(conn.execute(q).scalar_one())

    def _upsert(
        self,
        table: Table,
        key: str,
        rows: Sequence[dict[str, Any]],
        replaced: Sequence[str],
        now: float,
    ) -> None:
        """Insert `rows`, or update the columns `replaced` of those whose `key` exists, in one
        transaction. A row's `created_at` None means "not given": a new row gets `now`, an
        existing one keeps its stored creation time. (Two statements, since `created_at` is
        either in a statement's update set or not.)"""
        with_created = [r for r in rows if r["created_at"] is not None]
        without_created = [{**r, "created_at": now} for r in rows if r["created_at"] is None]
        ins = self._insert(table)
        with self._db.write() as conn:
            for part, cols in (
                (with_created, [*replaced, "created_at"]),
                (without_created, list(replaced)),
            ):
                if part:
                    stmt = ins.on_conflict_do_update(
                        index_elements=[key], set_={c: ins.excluded[c] for c in cols}
                    )
                    conn.execute(stmt, part)


# --------------------------------------------------------------------- events
class EventRepository(_Repository):
    """The interaction log: append-only, idempotent by `event_id`."""

    def add_batch(self, events: Sequence[EventIn]) -> IngestResult:
        """Store up to `MAX_BATCH` events in one transaction; durable when this returns.

        Events whose `event_id` is already stored (or repeats inside the batch) are skipped and
        counted as duplicates, so a client may resend a batch it got no answer for. The whole
        batch is checked first: one bad event rejects the batch (DataError naming its 1-based
        row) and stores nothing.
        """
        if len(events) > MAX_BATCH:
            raise DataError(f"batch of {len(events)} events; at most {MAX_BATCH} per batch")
        if not events:
            return IngestResult(0, 0)
        now = self._clock()
        rows = [_event_row(e, now) for e in events]
        if None in rows:  # the fast check failed somewhere: find the first culprit and say why
            for i, e in enumerate(events, start=1):
                _explain_bad_event(e, i)
            raise DataError("the batch holds an event that cannot be stored")  # not reached
        with self._db.write() as conn:
            if self._db.dialect == "postgresql":
                # One statement over arrays: as fast as psycopg's pipelined executemany and,
                # unlike it, reports how many rows it inserted.
                cols = dict(zip(_EVENT_COLUMNS, map(list, zip(*rows, strict=True)), strict=True))
                accepted = conn.execute(_PG_EVENT_INSERT, cols).rowcount
            else:
                # Straight to sqlite3's executemany with tuples: SQLAlchemy's per-row parameter
                # processing would cost as much as the inserts themselves.
                accepted = conn.exec_driver_sql(_SQLITE_EVENT_INSERT, rows).rowcount
            kept = None
            if 0 < accepted < len(rows):  # which ones: those this insert stamped `now`
                ids = list({e.event_id for e in events})
                mine: set[str] = set()
                for chunk in _chunks(ids):
                    q = select(EVENTS.c.event_id).where(
                        EVENTS.c.event_id.in_(chunk), EVENTS.c.received_at == now
                    )
                    mine.update(conn.execute(q).scalars())
                first: list[int] = []
                for i, e in enumerate(events):
                    if e.event_id in mine:
                        mine.discard(e.event_id)  # a repeat inside the batch was skipped
                        first.append(i)
                kept = tuple(first)
        return IngestResult(accepted=accepted, duplicates=len(rows) - accepted, accepted_rows=kept)

    def add_columns(
        self,
        event_id: Sequence[str] | np.ndarray,
        user: Sequence[str] | np.ndarray,
        item: Sequence[str] | np.ndarray,
        event: Sequence[str] | np.ndarray,
        timestamp: np.ndarray,
        value: np.ndarray | None = None,
        *,
        chunk: int = 500_000,
    ) -> int:
        """Bulk import of events given as columns (a dataset, a replay): the fast path for
        millions of rows. Same rules as `add_batch` -- checked first (vectorised; one bad row
        rejects the whole import and stores nothing), idempotent by `event_id`, durable once
        this returns -- but written `chunk` rows per transaction with no per-event objects.
        timestamp NaN: the import time; value NaN: none. Returns how many rows were new.

        A failure part-way leaves whole committed chunks stored; running the import again
        adds only the rest (duplicates are skipped)."""
        n = len(event_id)
        if not (len(user) == len(item) == len(event) == len(timestamp) == n) or (
            value is not None and len(value) != n
        ):
            raise DataError("event columns differ in length")
        if n == 0:
            return 0
        now = self._clock()
        ts = np.asarray(timestamp, dtype=np.float64)
        if np.isinf(ts).any():
            raise DataError(
                "timestamp is not a finite number", field="timestamp", row=_first(np.isinf(ts))
            )
        ts = np.where(np.isnan(ts), now, ts)
        vals: list[float | None] | None = None
        if value is not None:
            v = np.asarray(value, dtype=np.float64)
            if np.isinf(v).any():
                raise DataError(
                    "value is not a finite number", field="value", row=_first(np.isinf(v))
                )
            vals = [None if math.isnan(x) else x for x in v.tolist()]
        columns = {"event_id": event_id, "user": user, "item": item}
        for name, col in columns.items():
            s = pd.Series(np.asarray(col, dtype=object))
            ok = s.map(_is_id).to_numpy(dtype=bool)
            if not ok.all():
                row = _first(~ok)
                _check_id(s.iloc[row - 1], name, row)  # raises, naming the field and row
        ev = pd.Series(np.asarray(event, dtype=object))
        bad = ~ev.isin(list(_EVENT_SET)).to_numpy(dtype=bool)
        if bad.any():
            row = _first(bad)
            raise DataError(
                f"unknown event type {ev.iloc[row - 1]!r}; valid: {', '.join(EVENT_TYPES)}",
                field="event",
                row=row,
            )
        ids, users_, items_, events = (
            list(map(str, event_id)),
            list(map(str, user)),
            list(map(str, item)),
            ev.tolist(),
        )
        times = ts.tolist()
        accepted = 0
        for start in range(0, n, chunk):
            stop = min(start + chunk, n)
            rows = zip(
                ids[start:stop],
                users_[start:stop],
                items_[start:stop],
                events[start:stop],
                times[start:stop],
                vals[start:stop] if vals is not None else [None] * (stop - start),
                [now] * (stop - start),
                strict=True,
            )
            with self._db.write() as conn:
                if self._db.dialect == "postgresql":
                    block = list(rows)
                    cols = dict(
                        zip(_EVENT_COLUMNS, map(list, zip(*block, strict=True)), strict=True)
                    )
                    accepted += conn.execute(_PG_EVENT_INSERT, cols).rowcount
                else:
                    # sqlite3's executemany straight from the tuples, one transaction per chunk
                    accepted += conn.exec_driver_sql(_SQLITE_EVENT_INSERT, list(rows)).rowcount
        return accepted

    def newest_timestamp(self) -> float | None:
        """The latest event timestamp stored (None: no events); one index lookup."""
        with self._db.read() as conn:
            value = conn.execute(select(func.max(EVENTS.c.timestamp))).scalar()
        return None if value is None else float(value)

    def last_row_id(self) -> int:
        """The highest row ID stored (0: none): where a follower of new events starts."""
        with self._db.read() as conn:
            value = conn.execute(select(func.max(EVENTS.c.id))).scalar()
        return int(value or 0)

    def after_row(self, row_id: int, limit: int = 10_000) -> list[tuple[int, Event]]:
        """Events stored after row `row_id` in insertion order, with their row IDs (a primary
        key range scan): what other servers on the same store ingested since a look."""
        q = select(EVENTS).where(EVENTS.c.id > row_id).order_by(EVENTS.c.id).limit(int(limit))
        with self._db.read() as conn:
            return [(int(r.id), _event(r)) for r in conn.execute(q)]

    def add(self, event: EventIn) -> bool:
        """Store one event; False when its `event_id` was already stored."""
        return self.add_batch([event]).accepted == 1

    def recent(self, user: str, n: int = 50) -> list[Event]:
        """The user's `n` most recent events, newest first (by event timestamp)."""
        q = (
            select(EVENTS)
            .where(EVENTS.c.user_id == user)
            .order_by(EVENTS.c.timestamp.desc(), EVENTS.c.id.desc())
            .limit(max(0, int(n)))
        )
        with self._db.read() as conn:
            return [_event(r) for r in conn.execute(q)]

    def since(self, timestamp: float, limit: int | None = None) -> list[Event]:
        """Events with event timestamp >= `timestamp`, oldest first (for warming online state)."""
        q = (
            select(EVENTS)
            .where(EVENTS.c.timestamp >= timestamp)
            .order_by(EVENTS.c.timestamp, EVENTS.c.id)
        )
        if limit is not None:
            q = q.limit(limit)
        with self._db.read() as conn:
            return [_event(r) for r in conn.execute(q)]

    def get(self, event_id: str) -> Event | None:
        with self._db.read() as conn:
            row = conn.execute(select(EVENTS).where(EVENTS.c.event_id == event_id)).first()
        return None if row is None else _event(row)

    def count(self) -> int:
        return self._count(EVENTS)


def _event_row(e: EventIn, now: float) -> tuple[Any, ...] | None:
    """The insert tuple of a storable event (columns as `_EVENT_COLUMNS`), else None.

    The hot path of ingestion: written inline (no helper calls) because it runs per event.
    `_explain_bad_event` says what is wrong with an event this refuses.
    """
    if not isinstance(e, EventIn):
        return None
    eid, user, item, ts, value = e.event_id, e.user, e.item, e.timestamp, e.value
    if not (
        isinstance(eid, str)
        and isinstance(user, str)
        and isinstance(item, str)
        and 0 < len(eid) <= MAX_ID_LENGTH
        and 0 < len(user) <= MAX_ID_LENGTH
        and 0 < len(item) <= MAX_ID_LENGTH
        and "\x00" not in eid
        and "\x00" not in user
        and "\x00" not in item
        and e.event in _EVENT_SET
    ):
        return None
    if ts is None:
        ts = now
    elif isinstance(ts, bool) or not isinstance(ts, float | int) or not math.isfinite(ts):
        return None
    if value is not None and (
        isinstance(value, bool) or not isinstance(value, float | int) or not math.isfinite(value)
    ):
        return None
    return (
        eid,
        user,
        item,
        e.event,
        float(ts),
        None if value is None else float(value),
        now,
    )


def _explain_bad_event(e: object, row: int) -> None:
    """Raise the DataError that says what is wrong with event `row` (if anything is)."""
    if not isinstance(e, EventIn):
        raise DataError(f"expected an EventIn, got {type(e).__name__}", row=row)
    _check_id(e.event_id, "event_id", row)
    _check_id(e.user, "user", row)
    _check_id(e.item, "item", row)
    if e.event not in _EVENT_SET:
        raise DataError(
            f"unknown event type {e.event!r}; valid: {', '.join(EVENT_TYPES)}",
            field="event",
            row=row,
        )
    _check_number(e.timestamp, "timestamp", row)
    _check_number(e.value, "value", row)


_EVENT_COLUMNS = ("event_id", "user_id", "item_id", "event", "timestamp", "value", "received_at")
_SQLITE_EVENT_INSERT = (
    "INSERT INTO events (event_id, user_id, item_id, event, timestamp, value, received_at) "
    "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (event_id) DO NOTHING"
)
_SQLITE_FOLLOW_INSERT = (
    "INSERT INTO follows (follower, followee, created_at) VALUES (?, ?, ?) "
    "ON CONFLICT (follower, followee) DO NOTHING"
)
_PG_FOLLOW_INSERT = text(
    "INSERT INTO follows (follower, followee, created_at) "
    "SELECT * FROM unnest(CAST(:follower AS text[]), CAST(:followee AS text[]), "
    "CAST(:created_at AS double precision[])) ON CONFLICT (follower, followee) DO NOTHING"
)
_PG_EVENT_INSERT = text(
    "INSERT INTO events (event_id, user_id, item_id, event, timestamp, value, received_at) "
    "SELECT * FROM unnest(CAST(:event_id AS text[]), CAST(:user_id AS text[]), "
    "CAST(:item_id AS text[]), CAST(:event AS text[]), CAST(:timestamp AS double precision[]), "
    "CAST(:value AS double precision[]), CAST(:received_at AS double precision[])) "
    "ON CONFLICT (event_id) DO NOTHING"
)


def _event(r: Row[Any]) -> Event:
    return Event(r.event_id, r.user_id, r.item_id, r.event, r.timestamp, r.value, r.received_at)


# --------------------------------------------------------------------- catalog
class CatalogRepository(_Repository):
    """Items and their metadata. Deletion is soft: `deleted_at` hides an item from every
    query here and from `Store.to_dataset`; upserting a deleted item brings it back."""

    def upsert(self, items: Sequence[ItemIn]) -> int:
        """Create or replace items (all fields); returns how many were written.

        `created_at` None keeps the stored creation time (or, for a new item, uses now).
        """
        if not items:
            return 0
        now = self._clock()
        rows: list[dict[str, Any]] = []
        for i, it in enumerate(items, start=1):
            if not isinstance(it, ItemIn):
                raise DataError(f"expected an ItemIn, got {type(it).__name__}", row=i)
            rows.append(
                {
                    "item_id": _check_id(it.item, "item", i),
                    "title": _check_str(it.title, "title", i),
                    "text": _check_str(it.text, "text", i),
                    "tags": _check_tags(it.tags, "tags", i),
                    "category": _check_str(it.category, "category", i, MAX_ID_LENGTH),
                    "author": _check_str(it.author, "author", i, MAX_ID_LENGTH),
                    "created_at": _check_number(it.created_at, "created_at", i),
                    "updated_at": now,
                    "deleted_at": None,
                }
            )
        replaced = ["title", "text", "tags", "category", "author", "updated_at", "deleted_at"]
        self._upsert(ITEMS, "item_id", rows, replaced, now)
        return len(items)

    def delete(self, item_ids: Sequence[str]) -> int:
        """Soft-delete items; returns how many were live before. An ID the catalog never saw
        is recorded as deleted too, so events that name it stay out of training."""
        ids = list(dict.fromkeys(_check_id(x, "item", i) for i, x in enumerate(item_ids, 1)))
        if not ids:
            return 0
        now = self._clock()
        n = 0
        with self._db.write() as conn:
            for chunk in _chunks(ids):
                res = conn.execute(
                    update(ITEMS)
                    .where(ITEMS.c.item_id.in_(chunk), ITEMS.c.deleted_at.is_(None))
                    .values(deleted_at=now, updated_at=now)
                )
                n += res.rowcount
                tomb: list[dict[str, Any]] = [
                    {
                        "item_id": x,
                        "tags": [],
                        "created_at": None,
                        "updated_at": now,
                        "deleted_at": now,
                    }
                    for x in chunk
                ]
                conn.execute(
                    self._insert(ITEMS).on_conflict_do_nothing(index_elements=["item_id"]), tomb
                )
        return n

    def get(self, item_id: str, *, include_deleted: bool = False) -> Item | None:
        q = select(ITEMS).where(ITEMS.c.item_id == item_id)
        if not include_deleted:
            q = q.where(ITEMS.c.deleted_at.is_(None))
        with self._db.read() as conn:
            row = conn.execute(q).first()
        return None if row is None else _item(row)

    def get_many(self, item_ids: Sequence[str]) -> dict[str, Item]:
        """Live items among `item_ids`, by ID (missing and deleted ones left out)."""
        out: dict[str, Item] = {}
        with self._db.read() as conn:
            for chunk in _chunks(list(item_ids)):
                q = select(ITEMS).where(ITEMS.c.item_id.in_(chunk), ITEMS.c.deleted_at.is_(None))
                out.update((r.item_id, _item(r)) for r in conn.execute(q))
        return out

    def deleted_since(self, timestamp: float) -> list[str]:
        """IDs deleted at or after `timestamp` (and still deleted), oldest deletion first."""
        q = (
            select(ITEMS.c.item_id)
            .where(ITEMS.c.deleted_at >= timestamp)
            .order_by(ITEMS.c.deleted_at, ITEMS.c.item_id)
        )
        with self._db.read() as conn:
            return list(conn.execute(q).scalars())

    def updated_since(self, timestamp: float) -> list[Item]:
        """Live items inserted or updated at or after `timestamp`, oldest update first."""
        # deleted rows are dropped here, not in SQL: with `deleted_at IS NULL` in the query,
        # SQLite without statistics walks the deleted_at index (every live item: 0.1-0.5 s at
        # 1M items, on every follower poll) instead of the updated_at one
        q = (
            select(ITEMS)
            .where(ITEMS.c.updated_at >= timestamp)
            .order_by(ITEMS.c.updated_at, ITEMS.c.item_id)
        )
        with self._db.read() as conn:
            return [_item(r) for r in conn.execute(q) if r.deleted_at is None]

    def all_ids(self) -> list[str]:
        """Every live (not deleted) item ID, sorted."""
        q = select(ITEMS.c.item_id).where(ITEMS.c.deleted_at.is_(None)).order_by(ITEMS.c.item_id)
        with self._db.read() as conn:
            return list(conn.execute(q).scalars())

    def count(self) -> int:
        """Live items."""
        return self._count(ITEMS, ITEMS.c.deleted_at.is_(None))


def _item(r: Row[Any]) -> Item:
    return Item(
        r.item_id,
        r.title,
        r.text,
        tuple(r.tags or ()),
        r.category,
        r.author,
        r.created_at,
        r.updated_at,
        r.deleted_at,
    )


# --------------------------------------------------------------------- users
class UserRepository(_Repository):
    """User profiles: declared interests and the activity-privacy flag."""

    def upsert(self, users: Sequence[UserIn]) -> int:
        """Create or replace profiles; `created_at` None keeps the stored one (new: now)."""
        if not users:
            return 0
        now = self._clock()
        rows: list[dict[str, Any]] = []
        for i, u in enumerate(users, start=1):
            if not isinstance(u, UserIn):
                raise DataError(f"expected a UserIn, got {type(u).__name__}", row=i)
            if not isinstance(u.private, bool):
                raise DataError(f"must be true or false, got {u.private!r}", field="private", row=i)
            rows.append(
                {
                    "user_id": _check_id(u.user, "user", i),
                    "interests": _check_tags(u.interests, "interests", i),
                    "private": u.private,
                    "created_at": _check_number(u.created_at, "created_at", i),
                    "updated_at": now,
                }
            )
        self._upsert(USERS, "user_id", rows, ["interests", "private", "updated_at"], now)
        return len(users)

    def updated_since(self, timestamp: float) -> list[User]:
        """Profiles inserted or updated at or after `timestamp`, oldest update first."""
        q = (
            select(USERS)
            .where(USERS.c.updated_at >= timestamp)
            .order_by(USERS.c.updated_at, USERS.c.user_id)
        )
        with self._db.read() as conn:
            return [_user(r) for r in conn.execute(q)]

    def get(self, user_id: str) -> User | None:
        with self._db.read() as conn:
            row = conn.execute(select(USERS).where(USERS.c.user_id == user_id)).first()
        return None if row is None else _user(row)

    def private_ids(self) -> set[str]:
        """Users whose activity must not be shown to others (e.g. named in explanations)."""
        with self._db.read() as conn:
            return set(conn.execute(select(USERS.c.user_id).where(USERS.c.private)).scalars())

    def count(self) -> int:
        return self._count(USERS)


def _user(r: Row[Any]) -> User:
    return User(r.user_id, tuple(r.interests or ()), bool(r.private), r.created_at, r.updated_at)


# --------------------------------------------------------------------- social graph
class SocialRepository(_Repository):
    """Directed follow edges; follow and unfollow are idempotent."""

    def follow(self, follower: str, followee: str, at: float | None = None) -> bool:
        """Add follower -> followee; False when the edge already existed."""
        return (
            self.follow_many([Follow(follower, followee, self._clock() if at is None else at)]) == 1
        )

    def follow_columns(
        self,
        followers: Sequence[str] | np.ndarray,
        followees: Sequence[str] | np.ndarray,
        created_at: np.ndarray,
        *,
        chunk: int = 500_000,
    ) -> int:
        """Bulk import of edges given as columns (a dataset's social graph): checked first
        (vectorised; one bad edge stores nothing), idempotent, `chunk` edges per transaction.
        created_at NaN: now. Returns how many edges were new."""
        n = len(followers)
        if len(followees) != n or len(created_at) != n:
            raise DataError("follow columns differ in length")
        if n == 0:
            return 0
        a = pd.Series(np.asarray(followers, dtype=object))
        b = pd.Series(np.asarray(followees, dtype=object))
        for name, col in (("follower", a), ("followee", b)):
            ok = col.map(_is_id).to_numpy(dtype=bool)
            if not ok.all():
                row = _first(~ok)
                _check_id(col.iloc[row - 1], name, row)
        self_loop = (a == b).to_numpy(dtype=bool)
        if self_loop.any():
            row = _first(self_loop)
            raise DataError(
                f"user '{a.iloc[row - 1]}' cannot follow themselves", field="followee", row=row
            )
        at = np.asarray(created_at, dtype=np.float64)
        if np.isinf(at).any():
            raise DataError(
                "created_at is not a finite number", field="created_at", row=_first(np.isinf(at))
            )
        times = np.where(np.isnan(at), self._clock(), at).tolist()
        fa, fb = a.tolist(), b.tolist()
        added = 0
        for start in range(0, n, chunk):
            stop = min(start + chunk, n)
            with self._db.write() as conn:
                if self._db.dialect == "postgresql":
                    cols = {
                        "follower": fa[start:stop],
                        "followee": fb[start:stop],
                        "created_at": times[start:stop],
                    }
                    added += conn.execute(_PG_FOLLOW_INSERT, cols).rowcount
                else:
                    rows = list(zip(fa[start:stop], fb[start:stop], times[start:stop], strict=True))
                    added += conn.exec_driver_sql(_SQLITE_FOLLOW_INSERT, rows).rowcount
        return added

    def follow_many(self, edges: Sequence[Follow]) -> int:
        """Add many edges in one transaction; returns how many were new."""
        rows = []
        for i, e in enumerate(edges, start=1):
            a = _check_id(e.follower, "follower", i)
            b = _check_id(e.followee, "followee", i)
            if a == b:
                raise DataError(f"user '{a}' cannot follow themselves", field="followee", row=i)
            at = _check_number(e.created_at, "created_at", i)
            rows.append(
                {"follower": a, "followee": b, "created_at": self._clock() if at is None else at}
            )
        if not rows:
            return 0
        stmt = (
            self._insert(FOLLOWS)
            .on_conflict_do_nothing(index_elements=["follower", "followee"])
            .returning(FOLLOWS.c.follower)
        )
        with self._db.write() as conn:
            # RETURNING counts the new edges on both backends (executemany's rowcount is -1
            # on psycopg).
            return len(conn.execute(stmt, rows).all())

    def unfollow(self, follower: str, followee: str) -> bool:
        """Remove follower -> followee; False when there was no such edge. Every unfollow is
        logged (for `changes_since`), even of an edge this store never held: a model fitted
        elsewhere may know it, and a restarted server must still forget it."""
        _check_id(follower, "follower")
        _check_id(followee, "followee")
        with self._db.write() as conn:
            res = conn.execute(
                delete(FOLLOWS).where(
                    and_(FOLLOWS.c.follower == follower, FOLLOWS.c.followee == followee)
                )
            )
            conn.execute(
                self._insert(UNFOLLOWS).values(
                    follower=follower, followee=followee, at=self._clock()
                )
            )
            return res.rowcount == 1

    def changes_since(self, timestamp: float) -> list[tuple[str, str, str, float]]:
        """Graph changes at or after `timestamp`, oldest first: ("follow" | "unfollow",
        follower, followee, at) -- follows that still exist (by their created_at) and logged
        unfollows. Replayed in order they give each edge's current state (an edge unfollowed
        and followed again is a follow row newer than its unfollow)."""
        with self._db.read() as conn:
            follows = conn.execute(
                select(FOLLOWS.c.follower, FOLLOWS.c.followee, FOLLOWS.c.created_at).where(
                    FOLLOWS.c.created_at >= timestamp
                )
            ).all()
            unfollows = conn.execute(
                select(UNFOLLOWS.c.follower, UNFOLLOWS.c.followee, UNFOLLOWS.c.at)
                .where(UNFOLLOWS.c.at >= timestamp)
                .order_by(UNFOLLOWS.c.id)
            ).all()
        out = [("follow", r.follower, r.followee, float(r.created_at)) for r in follows]
        out += [("unfollow", r.follower, r.followee, float(r.at)) for r in unfollows]
        out.sort(key=lambda c: c[3])  # stable: unfollows keep their log order at equal times
        return out

    def followees(self, follower: str) -> list[str]:
        """Whom `follower` follows, sorted."""
        q = (
            select(FOLLOWS.c.followee)
            .where(FOLLOWS.c.follower == follower)
            .order_by(FOLLOWS.c.followee)
        )
        with self._db.read() as conn:
            return list(conn.execute(q).scalars())

    def followers(self, followee: str) -> list[str]:
        """Who follows `followee`, sorted."""
        q = (
            select(FOLLOWS.c.follower)
            .where(FOLLOWS.c.followee == followee)
            .order_by(FOLLOWS.c.follower)
        )
        with self._db.read() as conn:
            return list(conn.execute(q).scalars())

    def count(self) -> int:
        return self._count(FOLLOWS)


# --------------------------------------------------------------------- model versions
class ModelRepository(_Repository):
    """Registered model artifacts, which one is active, and the activation history that
    `rollback` walks back through (each activate pushes, each rollback pops)."""

    def register(
        self,
        name: str,
        path: str,
        metrics: dict[str, Any] | None = None,
        *,
        version: str | None = None,
        lineage: dict[str, Any] | None = None,
    ) -> ModelVersion:
        """Record an artifact directory; the version is `version` or the next "v<N>".
        `lineage` (JSON) says where it came from: data window, parameters, metrics, code
        version, parent version (`serendip.operations.retrain` writes it)."""
        _check_id(name, "name")
        _check_str(str(path), "path", None)
        if version is not None:
            _check_id(version, "version")
        metrics = dict(metrics or {})
        for _attempt in range(5):
            now = self._clock()
            try:
                with self._db.write() as conn:
                    self._lock(conn)
                    v = version
                    if v is None:
                        top = conn.execute(select(func.max(MODELS.c.id))).scalar()
                        v = f"v{(top or 0) + 1}"
                    conn.execute(
                        MODELS.insert().values(
                            version=v,
                            name=name,
                            path=str(path),
                            metrics=metrics,
                            created_at=now,
                            status="registered",
                            active=False,
                            lineage=dict(lineage) if lineage else None,
                        )
                    )
            except IntegrityError as exc:
                if version is not None:
                    raise DataError(
                        f"model version '{version}' already exists", field="version"
                    ) from exc
                continue  # another writer took the same number: try the next one
            found = self.get(v)
            assert found is not None
            return found
        raise SerendipError("could not allocate a model version number; try again")

    def get(self, version: str) -> ModelVersion | None:
        with self._db.read() as conn:
            row = conn.execute(select(MODELS).where(MODELS.c.version == version)).first()
        return None if row is None else _model(row)

    def list(self) -> list[ModelVersion]:
        """Every version, oldest first."""
        with self._db.read() as conn:
            return [_model(r) for r in conn.execute(select(MODELS).order_by(MODELS.c.id))]

    def active(self) -> ModelVersion | None:
        with self._db.read() as conn:
            row = conn.execute(select(MODELS).where(MODELS.c.active)).first()
        return None if row is None else _model(row)

    def activate(self, version: str) -> ModelVersion:
        """Make `version` the active one (the previous one becomes "retired")."""
        with self._db.write() as conn:
            self._lock(conn)
            self._require(conn, version)
            current = conn.execute(select(MODELS.c.version).where(MODELS.c.active)).scalar()
            if current != version:
                self._switch(conn, version)
                conn.execute(
                    ACTIVATIONS.insert().values(
                        version=version, action="activate", at=self._clock()
                    )
                )
        out = self.get(version)
        assert out is not None
        return out

    def rollback(self) -> ModelVersion:
        """Re-activate the version that was active before the current one."""
        with self._db.write() as conn:
            self._lock(conn)
            log = conn.execute(
                select(ACTIVATIONS.c.version, ACTIVATIONS.c.action).order_by(ACTIVATIONS.c.id)
            ).all()
            stack: list[str] = []
            for v, action in log:
                if action == "activate":
                    stack.append(v)
                elif stack:
                    stack.pop()
            if len(stack) < 2:
                raise SerendipError("no earlier model version to roll back to")
            target = stack[-2]
            self._require(conn, target)
            self._switch(conn, target)
            conn.execute(
                ACTIVATIONS.insert().values(version=stack[-1], action="rollback", at=self._clock())
            )
        out = self.get(target)
        assert out is not None
        return out

    def mark_failed(self, version: str, error: str) -> ModelVersion:
        """Record that `version` did not load or validate (it stays inactive)."""
        with self._db.write() as conn:
            self._lock(conn)
            self._require(conn, version)
            conn.execute(
                update(MODELS)
                .where(MODELS.c.version == version, MODELS.c.active.is_(False))
                .values(status="failed", error=str(error))
            )
        out = self.get(version)
        assert out is not None
        return out

    def _lock(self, conn: Any) -> None:
        """Serialise changes to the model table. SQLite's write transactions already do
        (BEGIN IMMEDIATE); on PostgreSQL, READ COMMITTED would let two concurrent activations
        each switch off only the row they saw and leave two versions active."""
        if self._db.dialect == "postgresql":
            conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_MODELS_LOCK})

    @staticmethod
    def _require(conn: Any, version: str) -> None:
        if conn.execute(select(MODELS.c.id).where(MODELS.c.version == version)).first() is None:
            raise NotFoundError(f"no model version '{version}'", field="version")

    @staticmethod
    def _switch(conn: Any, version: str) -> None:
        conn.execute(update(MODELS).where(MODELS.c.active).values(active=False, status="retired"))
        conn.execute(
            update(MODELS)
            .where(MODELS.c.version == version)
            .values(active=True, status="active", error=None)
        )


def _model(r: Row[Any]) -> ModelVersion:
    return ModelVersion(
        r.version,
        r.name,
        r.path,
        dict(r.metrics or {}),
        r.created_at,
        r.status,
        bool(r.active),
        r.error,
        dict(r.lineage or {}),
    )
