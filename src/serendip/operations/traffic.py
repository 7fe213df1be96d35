"""What the monitors read from the store: events in a time range as columns, the live catalog's
category and author per item, the follow edges of given users, and which users had any event
before a time. Plain SQL over the store's tables, one read transaction per call, no model."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from sqlalchemy import select

from serendip.store import Store
from serendip.store.repositories import EVENTS, FOLLOWS, ITEMS

__all__ = ["Catalog", "events_between", "followed_pairs", "live_catalog", "users_with_history"]

_CHUNK = 1_000


def events_between(store: Store, start: float, end: float) -> pd.DataFrame:
    """Events with `start <= timestamp < end`: columns user, item, event, timestamp (oldest
    first)."""
    e = EVENTS.c
    q = (
        select(e.user_id, e.item_id, e.event, e.timestamp)
        .where(e.timestamp >= start, e.timestamp < end)
        .order_by(e.timestamp, e.id)
    )
    with store.database.read() as conn:
        rows = conn.execute(q).all()
    frame = pd.DataFrame(rows, columns=["user", "item", "event", "timestamp"])
    frame["timestamp"] = frame["timestamp"].astype("float64")
    return frame


@dataclass(frozen=True, slots=True)
class Catalog:
    """The live catalog: item ID -> category and author ("" unknown)."""

    category: dict[str, str]
    author: dict[str, str]

    def __len__(self) -> int:
        return len(self.category)


def live_catalog(store: Store) -> Catalog:
    q = select(ITEMS.c.item_id, ITEMS.c.category, ITEMS.c.author).where(
        ITEMS.c.deleted_at.is_(None)
    )
    with store.database.read() as conn:
        rows = conn.execute(q).all()
    return Catalog({r[0]: r[1] or "" for r in rows}, {r[0]: r[2] or "" for r in rows})


def _chunks(values: Sequence[str]) -> Iterable[Sequence[str]]:
    for i in range(0, len(values), _CHUNK):
        yield values[i : i + _CHUNK]


def followed_pairs(store: Store, users: Iterable[str]) -> set[tuple[str, str]]:
    """(follower, followee) for every follow edge of `users` as followers."""
    wanted = sorted(set(users))
    out: set[tuple[str, str]] = set()
    with store.database.read() as conn:
        for part in _chunks(wanted):
            q = select(FOLLOWS.c.follower, FOLLOWS.c.followee).where(FOLLOWS.c.follower.in_(part))
            out.update((str(a), str(b)) for a, b in conn.execute(q))
    return out


def users_with_history(store: Store, users: Iterable[str], before: float) -> set[str]:
    """Those of `users` with at least one event stamped before `before`."""
    wanted = sorted(set(users))
    out: set[str] = set()
    with store.database.read() as conn:
        for part in _chunks(wanted):
            q = (
                select(EVENTS.c.user_id)
                .where(EVENTS.c.user_id.in_(part), EVENTS.c.timestamp < before)
                .distinct()
            )
            out.update(str(u) for u in conn.execute(q).scalars())
    return out


def counts(values: np.ndarray | pd.Series) -> dict[str, int]:
    """How often each value occurs."""
    s = pd.Series(values).value_counts()
    return {str(k): int(v) for k, v in s.items()}
