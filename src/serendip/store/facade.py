"""`Store`: the repositories on one database, plus the whole-store operations (training
export, dataset import, a user's data export and erasure).

Privacy rules enforced here, where data enters and leaves:
- an erased user stays out: `import_dataset` skips them and `to_dataset` leaves them out, when
  the store knows how erasures are keyed (`erasure_subject`, set by the service or the CLI from
  the installation's key; the erasure log holds keyed hashes only, never an ID);
- a user who withheld their activity from others (consent `activity_for_others` off) is in
  `to_dataset` without interactions and marked private: no fit learns a shared signal
  (co-occurrence, factors, popularity, social ties) from them, and their own list uses their
  history folded in at request time (the serving layer's live path).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict
from types import TracebackType
from typing import Any, Self

import numpy as np
import pandas as pd
from pandas.api.types import union_categoricals
from sqlalchemy import delete, or_, select, update

from serendip.data.dataset import EVENT_TYPES, Dataset
from serendip.errors import ConfigError
from serendip.store.engine import Database, make_engine, schema_head
from serendip.store.engine import migrate as run_migrations
from serendip.store.operations import (
    EXPOSURES,
    ExperimentRepository,
    Exposure,
    ExposureRepository,
)
from serendip.store.privacy import CONSENTS, ConsentRepository, ErasureRepository
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

_log = logging.getLogger("serendip.store")


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
        #: stored user ID -> its keyed hash in the erasure log (`serendip.privacy.pseudonym.
        #: erasure_subject` under the installation's key); None: erased users cannot be
        #: recognised, and imports and training exports check nothing (a warning says so)
        self.erasure_subject: Callable[[str], str] | None = None

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
        self,
        *,
        since: float | None = None,
        until: float | None = None,
        name: str = "store",
        honour_consent: bool = True,
    ) -> Dataset:
        """The stored platform as a `Dataset`: the retraining input.

        Interactions with `since <= timestamp < until` (either bound optional), oldest first;
        events on deleted items are left out, and deleted items are not in the catalog. The
        user vocabulary is every profile plus every user named by an event or follow edge, in
        sorted order; items are the live catalog (sorted) followed by items that events name
        but the catalog does not list. Extra user attributes are not stored, so not returned.

        Consent (`honour_consent`): users who withheld their activity from others keep their
        profile and follow edges but no interactions, and are marked private, so nothing a
        model shares across users is learnt from them. Erased users (recognised through
        `erasure_subject`) are left out entirely, should any of their rows have come back.
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
            inter = _event_frame(conn.execute(q))
            items = conn.execute(
                select(ITEMS).where(ITEMS.c.deleted_at.is_(None)).order_by(ITEMS.c.item_id)
            ).all()
            users = conn.execute(select(USERS).order_by(USERS.c.user_id)).all()
            follows = conn.execute(
                select(FOLLOWS).order_by(FOLLOWS.c.follower, FOLLOWS.c.followee)
            ).all()

        withheld = self.consents.withheld_activity() if honour_consent else set()
        named_users = set(inter["user"].cat.categories).union(
            (r.user_id for r in users), (r.follower for r in follows), (r.followee for r in follows)
        )
        erased = self.erased_among(named_users)
        if erased or withheld:
            inter = inter[~inter["user"].isin(erased | withheld)].reset_index(drop=True)
        if erased:
            users = [r for r in users if r.user_id not in erased]
            follows = [r for r in follows if r.follower not in erased and r.followee not in erased]
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
        present = inter["user"].cat.remove_unused_categories().cat.categories
        named = set(profiles).union(present, social["follower"], social["followee"])
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
                "private": [
                    u in withheld or (bool(profiles[u].private) if u in profiles else False)
                    for u in ids
                ],
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

        Users erased before (recognised through `erasure_subject`) are skipped with their
        events and follow edges; `counts["erased_skipped"]` says how many such users the
        dataset named.
        """
        batch = max(1, min(batch, MAX_BATCH))
        um = dataset.user_meta
        counts = {"users": 0, "items": 0, "follows": 0, "events": 0}
        user_ids = dataset.users.ids
        m = dataset.item_meta
        named = {str(u) for u in user_ids}
        erased = self.erased_among(named | {str(a) for a in m.author})
        if erased:
            counts["erased_skipped"] = len(erased & named)
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
                    if str(user_ids[j]) not in erased
                ]
            )
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
                        self._author(str(m.author[j]), erased),
                        _opt(m.created_at[j]),
                    )
                    for j in range(i, min(i + batch, len(item_ids)))
                ]
            )
        sf = dataset.social_frame()
        if erased:
            gone = sf["follower"].astype(str).isin(erased) | sf["followee"].astype(str).isin(erased)
            sf = sf[~gone.to_numpy()]
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
        keep: np.ndarray | None = None
        if erased:
            gone_idx = dataset.users.indices(sorted(erased))
            keep = ~np.isin(it.user, gone_idx[gone_idx >= 0])
        for i in range(0, len(it), chunk):
            stop = min(i + chunk, len(it))
            rows = np.arange(i, stop) if keep is None else i + np.flatnonzero(keep[i:stop])
            if len(rows) == 0:
                continue
            counts["events"] += self.events.add_columns(
                [f"{prefix}:{j}" for j in rows.tolist()],
                dataset.users.lookup(it.user[rows]),
                dataset.items.lookup(it.item[rows]),
                names[it.event[rows]],
                it.timestamp[rows],
                it.value[rows].astype(np.float64),
                chunk=chunk,
            )
        return counts

    def erased_among(self, users: Iterable[str]) -> set[str]:
        """Those of `users` (stored IDs) the erasure log names. Empty when nothing was ever
        erased; when something was but the store has no `erasure_subject`, nothing can be
        recognised: a warning says so and the set is empty."""
        subjects = self.erasures.subjects()
        if not subjects:
            return set()
        if self.erasure_subject is None:
            _log.warning(
                "this store has %d erasure records but no erasure key was given: erased users "
                "cannot be recognised on import or export (open it through the service or the "
                "CLI, which set Store.erasure_subject)",
                len(subjects),
            )
            return set()
        fn = self.erasure_subject
        return {u for u in set(users) if fn(u) in subjects}

    def _author(self, author: str, erased: set[str]) -> str:
        """An item's author, or the erased author's tombstone (`author_tombstone`)."""
        return self.author_tombstone(author) if author in erased else author

    def author_tombstone(self, user: str) -> str:
        """What an erased user's items name as their author: `erased~` and 16 hex characters
        of the erasure subject (no ID)."""
        fn = self.erasure_subject
        if fn is None:
            raise ConfigError("no erasure key: set Store.erasure_subject first")
        return "erased~" + fn(user)[:16]

    def is_erased(self, user: str) -> bool:
        return bool(self.erased_among([user]))

    # ----------------------------------------------------------------- privacy
    def export_user(self, user: str) -> dict[str, Any]:
        """Everything stored about `user`, JSON-ready: the profile (None without one), events
        oldest first, follow edges both ways (`following`, `followers`), the unfollow log in
        both directions (`unfollows`), the items naming them as author (`authored_items`,
        deleted ones included), the lists they were shown (`exposures`), the experiments and
        variants those lists were served under (`experiments`) and their consent switches
        (`consent`); the last three as `{"records": [...], "note": ...}`. `has_data` is False
        when nothing at all is stored."""
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
            consent_row = conn.execute(select(CONSENTS).where(CONSENTS.c.user_id == user)).first()
        exposures = self.exposures.for_user(user)
        consent = self.consents.get(user)
        out: dict[str, Any] = {
            "user": user,
            "has_data": bool(
                profile is not None
                or events
                or following
                or followers
                or unfollows
                or authored
                or exposures
                or consent_row is not None
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
            "exposures": {
                "records": [
                    {
                        "request_id": e.request_id,
                        "surface": e.surface,
                        "items": list(e.items),
                        "model_version": e.model_version,
                        "experiment": e.experiment,
                        "variant": e.variant,
                        "teams": list(e.teams),
                        "at": e.at,
                    }
                    for e in exposures
                ],
                "note": "The recommendation lists shown to the user, oldest first: the items in "
                "the order shown, the model version, and the experiment and variant (or the "
                "interleaving teams) that served them.",
            },
            "experiments": {
                "records": _assignments(exposures),
                "note": "The experiments whose lists the user was shown, with the variant they "
                "were assigned to and when it was first and last served to them.",
            },
            "consent": {
                "records": [
                    {
                        "personalization": consent.personalization,
                        "activity_for_others": consent.activity_for_others,
                        "private": bool(profile.private) if profile is not None else False,
                        "updated_at": consent.updated_at,
                        "stored": consent_row is not None,
                    }
                ],
                "note": "Consent switches: personalization (personal lists, else the same "
                "non-personalized list for everyone), activity_for_others (may this user's "
                "activity shape other users' recommendations) and private (may others' "
                "explanations name this user). `stored` false: the defaults, never changed.",
            },
        }
        return out

    def erase_user(self, user: str, *, author_tombstone: str | None = None) -> dict[str, int]:
        """Delete everything stored about `user` in one transaction: events, follow edges
        (both directions), the unfollow log naming them, exposures, consent and profile.
        Items they authored are the platform's content and stay; with `author_tombstone` their
        `author` becomes that value, so no row names the user any more. Returns rows changed
        per table."""
        with self._db.write() as conn:
            n_events = conn.execute(delete(EVENTS).where(EVENTS.c.user_id == user)).rowcount
            n_follows = conn.execute(
                delete(FOLLOWS).where(or_(FOLLOWS.c.follower == user, FOLLOWS.c.followee == user))
            ).rowcount
            n_unfollows = conn.execute(
                delete(UNFOLLOWS).where(
                    or_(UNFOLLOWS.c.follower == user, UNFOLLOWS.c.followee == user)
                )
            ).rowcount
            n_exposures = conn.execute(
                delete(EXPOSURES).where(EXPOSURES.c.user_id == user)
            ).rowcount
            n_consent = conn.execute(delete(CONSENTS).where(CONSENTS.c.user_id == user)).rowcount
            n_profile = conn.execute(delete(USERS).where(USERS.c.user_id == user)).rowcount
            n_authored = 0
            if author_tombstone is not None:
                n_authored = conn.execute(
                    update(ITEMS).where(ITEMS.c.author == user).values(author=author_tombstone)
                ).rowcount
        return {
            "events": int(n_events),
            "follows": int(n_follows),
            "unfollows": int(n_unfollows),
            "exposures": int(n_exposures),
            "consent": int(n_consent),
            "profile": int(n_profile),
            "authored_items_reattributed": int(n_authored),
        }


def _assignments(exposures: list[Exposure]) -> list[dict[str, Any]]:
    """(experiment, variant) pairs of a user's exposures, with the first and last time."""
    seen: dict[tuple[str, str | None], dict[str, Any]] = {}
    for e in exposures:
        if e.experiment is None:
            continue
        key = (e.experiment, e.variant)
        rec = seen.get(key)
        if rec is None:
            seen[key] = {
                "experiment": e.experiment,
                "variant": e.variant,
                "first_exposed_at": e.at,
                "last_exposed_at": e.at,
                "exposures": 1,
            }
        else:
            rec["last_exposed_at"] = max(rec["last_exposed_at"], e.at)
            rec["exposures"] += 1
    return list(seen.values())


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


#: Event rows read from the store per chunk when a dataset is built (see `_event_frame`).
_READ_CHUNK = 500_000


def _event_frame(result: Any) -> pd.DataFrame:
    """The events query's rows (user, item, timestamp, event, value) as a frame, read in chunks
    with user and item IDs as categoricals: 20M rows held as row objects took about 10 GB and
    most of a retrain's time at the platform preset."""
    cols = ["user", "item", "timestamp", "event", "value"]
    parts: list[pd.DataFrame] = []
    for rows in result.partitions(_READ_CHUNK):
        # columns by unpacking the rows: pandas' record reader probes each row object's
        # attributes, and a SQLAlchemy row answers a missing one through an exception (most of
        # the read's time)
        user, item, ts, event, value = zip(*rows, strict=True)
        part = pd.DataFrame(
            {
                "user": pd.Categorical(np.asarray(user, dtype=object).astype(str)),
                "item": pd.Categorical(np.asarray(item, dtype=object).astype(str)),
                "timestamp": pd.to_numeric(pd.Series(ts), errors="coerce").astype("float64"),
                "event": np.asarray(event, dtype=object),
                "value": pd.to_numeric(pd.Series(value), errors="coerce").astype("float64"),
            }
        )
        parts.append(part)
    if not parts:
        empty = pd.DataFrame({c: pd.Series([], dtype=object) for c in cols})
        for c in ("user", "item"):
            empty[c] = empty[c].astype("category")
        for c in ("timestamp", "value"):
            empty[c] = empty[c].astype("float64")
        return empty
    return pd.DataFrame(
        {
            "user": union_categoricals([p["user"] for p in parts]),
            "item": union_categoricals([p["item"] for p in parts]),
            "timestamp": np.concatenate([p["timestamp"].to_numpy() for p in parts]),
            "event": np.concatenate([p["event"].to_numpy(dtype=object) for p in parts]),
            "value": np.concatenate([p["value"].to_numpy() for p in parts]),
        },
        columns=cols,
    )
