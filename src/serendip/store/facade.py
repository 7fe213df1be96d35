"""`Store`: the repositories on one database, plus the whole-store operations (training
export, dataset import, a user's data export and erasure)."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import asdict
from types import TracebackType
from typing import Any, Self

import numpy as np
import pandas as pd
from sqlalchemy import delete, or_, select

from serendip.data.dataset import EVENT_TYPES, Dataset
from serendip.errors import ConfigError
from serendip.store.engine import Database, make_engine, schema_head
from serendip.store.engine import migrate as run_migrations
from serendip.store.operations import ExperimentRepository, ExposureRepository
from serendip.store.privacy import ConsentRepository, ErasureRepository
from serendip.store.repositories import (
    EVENTS,
    FOLLOWS,
    ITEMS,
    UNFOLLOWS,
    USERS,
    CatalogRepository,
    EventRepository,
    ModelRepository,
    SocialRepository,
    UserRepository,
    _event,
    _user,
)
from serendip.store.types import MAX_BATCH, ItemIn, UserIn

__all__ = ["Store"]


class Store:
    """Events, catalog, users, social graph and model versions in one SQL database.

    Thread-safe: every call takes its own pooled connection and transaction, so the API's
    worker threads and the runtime share one `Store`.

    >>> store = Store.open("sqlite:///:memory:")
    >>> store.social.follow("alice", "bob", 1.0)
    True
    >>> store.social.followees("alice")
    ['bob']
    >>> store.close()
    """

    def __init__(self, db: Database, *, url: str, clock: Callable[[], float] = time.time) -> None:
        self._db = db
        self.url = url
        self.events = EventRepository(db, clock)
        self.catalog = CatalogRepository(db, clock)
        self.users = UserRepository(db, clock)
        self.social = SocialRepository(db, clock)
        self.models = ModelRepository(db, clock)
        self.exposures = ExposureRepository(db, clock)
        self.experiments = ExperimentRepository(db, clock)
        self.consents = ConsentRepository(db, clock)
        self.erasures = ErasureRepository(db, clock)

    @classmethod
    def open(
        cls,
        url: str,
        *,
        migrate: bool = True,
        echo: bool = False,
        clock: Callable[[], float] = time.time,
    ) -> Store:
        """Connect to `url` ("sqlite:///path.db", "sqlite:///:memory:",
        "postgresql+psycopg://user@host:5432/db") and bring the schema up to date.

        `migrate=False` skips the migrations (when a deploy step runs them) but still checks
        that the schema is current. Raises ConfigError for an unknown URL scheme, a missing
        driver or (with migrate=False) an out-of-date schema.
        """
        db = Database(make_engine(url, echo=echo))
        if migrate:
            run_migrations(db)
        else:
            _check_schema(db)
        return cls(db, url=url, clock=clock)

    @property
    def backend(self) -> str:
        """ "sqlite" or "postgresql"."""
        return self._db.dialect

    @property
    def database(self) -> Database:
        return self._db

    def close(self) -> None:
        """Release the connection pool (committed data is already durable)."""
        self._db.engine.dispose()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # ----------------------------------------------------------------- training export
    def to_dataset(
        self, *, since: float | None = None, until: float | None = None, name: str = "store"
    ) -> Dataset:
        """The stored platform as a `Dataset`: the retraining input.

        Interactions with `since <= timestamp < until` (either bound optional), oldest first;
        events on deleted items are left out, and deleted items are not in the catalog. The
        user vocabulary is every profile plus every user named by an event or follow edge, in
        sorted order; items are the live catalog (sorted) followed by items that events name
        but the catalog does not list. Extra user attributes are not stored, so not returned.
        """
        e = EVENTS.c
        q = (
            select(e.user_id, e.item_id, e.timestamp, e.event, e.value)
            .select_from(EVENTS.outerjoin(ITEMS, ITEMS.c.item_id == e.item_id))
            .where(ITEMS.c.deleted_at.is_(None))
            .order_by(e.timestamp, e.id)
        )
        if since is not None:
            q = q.where(e.timestamp >= since)
        if until is not None:
            q = q.where(e.timestamp < until)
        with self._db.read() as conn:  # one snapshot for all four tables
            ev = conn.execute(q).all()
            items = conn.execute(
                select(ITEMS).where(ITEMS.c.deleted_at.is_(None)).order_by(ITEMS.c.item_id)
            ).all()
            users = conn.execute(select(USERS).order_by(USERS.c.user_id)).all()
            follows = conn.execute(
                select(FOLLOWS).order_by(FOLLOWS.c.follower, FOLLOWS.c.followee)
            ).all()

        inter = pd.DataFrame(ev, columns=["user", "item", "timestamp", "event", "value"])
        inter["value"] = pd.to_numeric(inter["value"], errors="coerce").astype("float64")
        items_df = pd.DataFrame(
            {
                "item": [r.item_id for r in items],
                "title": [r.title for r in items],
                "text": [r.text for r in items],
                "tags": [tuple(r.tags or ()) for r in items],
                "category": [r.category for r in items],
                "author": [r.author for r in items],
                "created_at": np.array(
                    [np.nan if r.created_at is None else r.created_at for r in items], dtype=float
                ),
            }
        )
        social = pd.DataFrame(
            {
                "follower": [r.follower for r in follows],
                "followee": [r.followee for r in follows],
                "created_at": np.array([r.created_at for r in follows], dtype=float),
            }
        )
        profiles = {r.user_id: r for r in users}
        named = set(profiles).union(inter["user"], social["follower"], social["followee"])
        ids = sorted(named)
        users_df = pd.DataFrame(
            {
                "user": ids,
                "created_at": np.array(
                    [
                        np.nan
                        if u not in profiles or profiles[u].created_at is None
                        else profiles[u].created_at
                        for u in ids
                    ],
                    dtype=float,
                ),
                "interests": [
                    tuple(profiles[u].interests or ()) if u in profiles else () for u in ids
                ],
                "private": [bool(profiles[u].private) if u in profiles else False for u in ids],
            }
        )
        return Dataset.from_frames(inter, items_df, users_df, social, name=name)

    def import_dataset(
        self, dataset: Dataset, *, batch: int = MAX_BATCH, chunk: int = 500_000
    ) -> dict[str, int]:
        """Load a `Dataset` (e.g. the synthetic demo platform) into the store.

        Idempotent: event IDs are "<dataset name>:<row>", so importing twice adds nothing.
        Interactions without a timestamp get the import time. Returns rows written per table.
        Follows and events take the bulk paths (`follow_columns`, `add_columns`) `chunk` rows
        at a time, so memory stays bounded on the 20M-event `platform` preset; each chunk is
        committed on its own, and an interrupted import completes when run again.
        """
        batch = max(1, min(batch, MAX_BATCH))
        um = dataset.user_meta
        counts = {"users": 0, "items": 0, "follows": 0, "events": 0}
        user_ids = dataset.users.ids
        for i in range(0, len(user_ids), batch):
            counts["users"] += self.users.upsert(
                [
                    UserIn(
                        str(user_ids[j]),
                        tuple(um.interests[j]),
                        bool(um.private[j]),
                        _opt(um.created_at[j]),
                    )
                    for j in range(i, min(i + batch, len(user_ids)))
                ]
            )
        m = dataset.item_meta
        item_ids = dataset.items.ids
        for i in range(0, len(item_ids), batch):
            counts["items"] += self.catalog.upsert(
                [
                    ItemIn(
                        str(item_ids[j]),
                        str(m.title[j]),
                        str(m.text[j]),
                        tuple(str(t) for t in m.tags[j] if t),
                        str(m.category[j]),
                        str(m.author[j]),
                        _opt(m.created_at[j]),
                    )
                    for j in range(i, min(i + batch, len(item_ids)))
                ]
            )
        sf = dataset.social_frame()
        for i in range(0, len(sf), chunk):
            part = sf.iloc[i : i + chunk]
            counts["follows"] += self.social.follow_columns(
                part["follower"].astype(str).to_numpy(),
                part["followee"].astype(str).to_numpy(),
                part["created_at"].to_numpy(dtype=np.float64),
            )
        it = dataset.interactions
        names = np.asarray(EVENT_TYPES, dtype=object)
        prefix = dataset.name
        for i in range(0, len(it), chunk):
            stop = min(i + chunk, len(it))
            counts["events"] += self.events.add_columns(
                [f"{prefix}:{j}" for j in range(i, stop)],
                dataset.users.lookup(it.user[i:stop]),
                dataset.items.lookup(it.item[i:stop]),
                names[it.event[i:stop]],
                it.timestamp[i:stop],
                it.value[i:stop].astype(np.float64),
                chunk=chunk,
            )
        return counts

    # ----------------------------------------------------------------- privacy
    def export_user(self, user: str) -> dict[str, Any]:
        """Everything stored about `user`, JSON-ready: the profile (None without one), events
        oldest first, follow edges both ways (`following`, `followers`), the unfollow log in
        both directions (`unfollows`) and the items naming them as author (`authored_items`,
        deleted ones included). Kinds of record this store does not keep yet (`exposures`,
        `experiments`, `consent`) are present as empty sections with a `note`, so the shape
        stays the same when they are added. `has_data` is False when nothing at all is stored."""
        with self._db.read() as conn:
            profile = conn.execute(select(USERS).where(USERS.c.user_id == user)).first()
            events = conn.execute(
                select(EVENTS)
                .where(EVENTS.c.user_id == user)
                .order_by(EVENTS.c.timestamp, EVENTS.c.id)
            ).all()
            following = conn.execute(
                select(FOLLOWS).where(FOLLOWS.c.follower == user).order_by(FOLLOWS.c.followee)
            ).all()
            followers = conn.execute(
                select(FOLLOWS).where(FOLLOWS.c.followee == user).order_by(FOLLOWS.c.follower)
            ).all()
            unfollows = conn.execute(
                select(UNFOLLOWS)
                .where(or_(UNFOLLOWS.c.follower == user, UNFOLLOWS.c.followee == user))
                .order_by(UNFOLLOWS.c.id)
            ).all()
            authored = conn.execute(
                select(ITEMS.c.item_id, ITEMS.c.title, ITEMS.c.created_at, ITEMS.c.deleted_at)
                .where(ITEMS.c.author == user)
                .order_by(ITEMS.c.item_id)
            ).all()
        out: dict[str, Any] = {
            "user": user,
            "has_data": bool(
                profile is not None or events or following or followers or unfollows or authored
            ),
            "profile": None if profile is None else _jsonable(asdict(_user(profile))),
            "events": [_jsonable(asdict(_event(r))) for r in events],
            "following": [{"followee": r.followee, "created_at": r.created_at} for r in following],
            "followers": [{"follower": r.follower, "created_at": r.created_at} for r in followers],
            "unfollows": [
                {"follower": r.follower, "followee": r.followee, "at": r.at} for r in unfollows
            ],
            "authored_items": [
                {
                    "item": r.item_id,
                    "title": r.title,
                    "created_at": r.created_at,
                    "deleted_at": r.deleted_at,
                }
                for r in authored
            ],
        }
        for section, note in _NOT_KEPT.items():
            out[section] = {"records": [], "note": note}
        return out

    def erase_user(self, user: str) -> dict[str, int]:
        """Delete `user`'s events, follow edges (both directions) and profile, in one
        transaction; returns rows deleted per table. Items the user authored stay (they are
        the platform's content; delete them through the catalog if required)."""
        with self._db.write() as conn:
            n_events = conn.execute(delete(EVENTS).where(EVENTS.c.user_id == user)).rowcount
            n_follows = conn.execute(
                delete(FOLLOWS).where(or_(FOLLOWS.c.follower == user, FOLLOWS.c.followee == user))
            ).rowcount
            conn.execute(
                delete(UNFOLLOWS).where(
                    or_(UNFOLLOWS.c.follower == user, UNFOLLOWS.c.followee == user)
                )
            )
            n_profile = conn.execute(delete(USERS).where(USERS.c.user_id == user)).rowcount
        return {"events": n_events, "follows": n_follows, "profile": n_profile}


#: Sections of a user's export for records this store does not keep yet (always empty).
_NOT_KEPT = {
    "exposures": "Serendip keeps no record of the items shown to users (exposures) yet.",
    "experiments": "Serendip keeps no experiment assignments yet.",
    "consent": "Serendip keeps no consent records yet; the activity-privacy setting is the "
    "profile's `private`.",
}


def _opt(x: Any) -> float | None:
    """A float, or None for NaN/None (missing)."""
    if x is None:
        return None
    f = float(x)
    return None if math.isnan(f) else f


def _jsonable(d: dict[str, Any]) -> dict[str, Any]:
    return {k: list(v) if isinstance(v, tuple) else v for k, v in d.items()}


def _check_schema(db: Database) -> None:
    """Fail with a clear message when the database is not at the newest migration."""
    from alembic.runtime.migration import MigrationContext

    head = schema_head()
    with db.read() as conn:
        current = MigrationContext.configure(conn).get_current_revision()
    if current != head:
        raise ConfigError(
            f"database schema is at revision {current or 'none (empty database)'}, this "
            f"Serendip needs {head}; open the store with migrate=True to upgrade it"
        )
