"""The live state a server keeps between fits: per-user recent events, catalog additions,
updates and deletions, follows and unfollows, privacy flags, and time-decayed event counts.

Consent and erasure act here at once: each user's share of the live counts is kept, so a user
who withholds their activity from others (`withhold`) leaves the counts behind trending
exactly (their later events enter their own history only), and an erased user (`forget_user`)
leaves no history, follow, unfollow or count behind.

`OnlineState` survives model swaps. Every method takes one short lock; readers get copies. It
also stamps freshness: `user_version` grows with a user's events and follows, `catalog_version`
with catalog changes, so caches built from the state can tell when they went stale.
"""

from __future__ import annotations

import heapq
import math
import threading
import time
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from serendip.errors import ConfigError
from serendip.serving.contract import LiveEvent, LiveUser

__all__ = ["ItemInfo", "OnlineState", "field_of"]


def field_of(obj: object, name: str, default: object = None) -> object:
    """Attribute of a dataclass/pydantic object, or key of a mapping (API and store types)."""
    if isinstance(obj, Mapping):
        return obj.get(name, default)
    return getattr(obj, name, default)


def _time(value: object) -> float | None:
    """An epoch-seconds value of an event or item (number or numeric string); None: absent."""
    if value is None:
        return None
    if isinstance(value, (int, float, str)):
        return float(value)
    raise TypeError(f"not a time: {value!r}")


@dataclass(frozen=True, slots=True)
class ItemInfo:
    """A live catalog item's category, author and creation time (NaN unknown)."""

    category: str
    author: str
    created_at: float


class OnlineState:
    """Thread-safe live state. Every method takes one short lock; readers get copies.

    history_size: events kept per user (the oldest fall off); half_life_s: the decay of the live
    event counts behind `trending` (relative to the newest event time seen, so replayed or
    synthetic data with old timestamps trends the same way live data does).
    """

    def __init__(self, *, history_size: int = 200, half_life_s: float = 86_400.0) -> None:
        if history_size < 1:
            raise ConfigError(f"history_size must be at least 1, got {history_size}")
        if half_life_s <= 0:
            raise ConfigError(f"half_life_s must be positive, got {half_life_s}")
        self.history_size = history_size
        self.half_life_s = half_life_s
        self._lock = threading.Lock()
        self._history: dict[str, deque[tuple[str, float, str]]] = {}
        self._items: dict[str, ItemInfo] = {}
        # every item ID upserted or deleted, in order: the runtime's live catalog index reads
        # only the part after its last look, so its update costs the change alone. Compacted
        # (to the live items, under a new epoch) when it outgrows them.
        self._catalog_log: list[str] = []
        self._log_epoch = 0
        self._deleted: set[str] = set()
        self._follows: dict[str, set[str]] = {}
        self._unfollows: dict[str, set[str]] = {}
        # counts are stored as sums of 2 ** ((t_event - ref) / hl), so an event costs O(1)
        # (no pass over every item); the value at time `now` is stored * 2 ** ((ref - now) / hl).
        # `ref` moves forward (one O(n) rescale) only when the exponents grow large.
        self._counts: dict[str, float] = {}
        # each user's share of `_counts` (same units), so withholding or erasing a user
        # subtracts exactly what they added
        self._shares: dict[str, dict[str, float]] = {}
        # users whose activity must not shape others' lists (consent): not counted
        self._withheld: set[str] = set()
        # freshness stamps for the runtime's caches: per user, bumped by that user's events,
        # follows and unfollows; catalog, bumped by deletions and upserts (a re-added item)
        self._user_version: dict[str, int] = {}
        # users whose fitted view no longer holds (touched by a privacy change, erased): their
        # precomputed lists may not even be updated, only computed anew
        self._stale: set[str] = set()
        # privacy flags set since the fit (user -> private): applied to every model loaded later
        self._private: dict[str, bool] = {}
        self._catalog_version = 0
        self._ref = math.nan
        self._clock = -math.inf  # the newest event time
        self._first = math.inf  # time of the first live event

    # -------------------------------------------------------------- writes
    def add_events(self, events: Iterable[object]) -> int:
        """Record events (objects or mappings with user, item, event, timestamp); returns how
        many were recorded."""
        n = 0
        with self._lock:
            for e in events:
                user, item = str(field_of(e, "user")), str(field_of(e, "item"))
                given = _time(field_of(e, "timestamp"))
                ts = given if given is not None and math.isfinite(given) else time.time()
                kind = str(field_of(e, "event", "view") or "view")
                hist = self._history.get(user)
                if hist is None:
                    hist = self._history[user] = deque(maxlen=self.history_size)
                hist.append((item, ts, kind))
                self._user_version[user] = self._user_version.get(user, 0) + 1
                if user not in self._withheld:
                    self._count(user, item, ts)
                n += 1
        return n

    def _count(self, user: str, item: str, ts: float) -> None:
        self._first = min(self._first, ts)
        self._clock = max(self._clock, ts)
        if math.isnan(self._ref):
            self._ref = ts
        elif (self._clock - self._ref) / self.half_life_s > 60.0:  # 2**60: rescale
            factor = 2.0 ** ((self._ref - self._clock) / self.half_life_s)
            self._counts = {key: v * factor for key, v in self._counts.items()}
            self._shares = {
                u: {key: v * factor for key, v in share.items()}
                for u, share in self._shares.items()
            }
            self._ref = self._clock
        weight = 2.0 ** ((ts - self._ref) / self.half_life_s)
        self._counts[item] = self._counts.get(item, 0.0) + weight
        share = self._shares.setdefault(user, {})
        share[item] = share.get(item, 0.0) + weight

    def _uncount(self, user: str) -> None:
        """Take `user`'s share out of the live counts (under the lock)."""
        for item, w in self._shares.pop(user, {}).items():
            left = self._counts.get(item, 0.0) - w
            if left <= 1e-12 * max(w, 1.0):
                self._counts.pop(item, None)
            else:
                self._counts[item] = left

    # -------------------------------------------------------------- consent and erasure
    def withhold(self, users: Iterable[str], withheld: bool = True) -> None:
        """Consent: these users' activity must (not) shape other users' lists. Withheld, their
        share of the live counts is taken out at once and their later events reach only their
        own history; given again, their later events count (the withheld ones stay out)."""
        with self._lock:
            for u in users:
                u = str(u)
                if withheld:
                    self._withheld.add(u)
                    self._uncount(u)
                else:
                    self._withheld.discard(u)

    def withheld(self) -> frozenset[str]:
        with self._lock:
            return frozenset(self._withheld)

    def forget_user(self, user: str) -> dict[str, int]:
        """Erasure: drop everything the live state holds about `user` -- their history, their
        share of the live counts, their follows and unfollows, and other users' live follows
        and unfollows of them (those users' lists are made anew). Their freshness stamp moves
        on, so no cached or precomputed list of theirs is served again. The privacy flag
        stays (True), so that models loaded later never cite them either. Returns what was
        dropped."""
        user = str(user)
        with self._lock:
            events = len(self._history.pop(user, ()))
            counted = len(self._shares.get(user, {}))
            self._uncount(user)
            self._withheld.discard(user)
            edges = len(self._follows.pop(user, ())) + len(self._unfollows.pop(user, ()))
            for other, table in [(o, self._follows) for o in list(self._follows)] + [
                (o, self._unfollows) for o in list(self._unfollows)
            ]:
                named = table.get(other)
                if named is not None and user in named:
                    named.discard(user)
                    edges += 1
                    self._user_version[other] = self._user_version.get(other, 0) + 1
            self._user_version[user] = self._user_version.get(user, 0) + 1
            self._stale.add(user)
            self._private[user] = True
        return {"live_events": events, "live_counted_items": counted, "live_edges": edges}

    def upsert_items(self, items: Iterable[object]) -> None:
        with self._lock:
            for it in items:
                iid = str(field_of(it, "item"))
                created = _time(field_of(it, "created_at"))
                self._catalog_log.append(iid)
                self._items[iid] = ItemInfo(
                    str(field_of(it, "category", "") or ""),
                    str(field_of(it, "author", "") or ""),
                    created if created is not None else math.nan,
                )
                self._deleted.discard(iid)
            self._catalog_version += 1
            self._compact_log()

    def delete_items(self, ids: Iterable[str]) -> None:
        with self._lock:
            for iid in ids:
                self._deleted.add(str(iid))
                self._items.pop(str(iid), None)
                self._counts.pop(str(iid), None)
                self._catalog_log.append(str(iid))
            self._catalog_version += 1
            self._compact_log()

    def _compact_log(self) -> None:
        """Keep the change log within twice the live catalog (plus slack): replaced by the
        live items under a new epoch, which makes each index rebuild once from scratch, so
        the rebuild is paid for by the changes that grew the log. Under the lock."""
        if len(self._catalog_log) > 2 * len(self._items) + 10_000:
            self._catalog_log = list(self._items)
            self._log_epoch += 1

    def set_private(self, flags: Mapping[str, bool]) -> None:
        with self._lock:
            self._private.update({str(u): bool(f) for u, f in flags.items()})

    def users(self) -> set[str]:
        """Every user the live state holds something of: history, counted share, follows,
        unfollows (or is followed by someone live)."""
        with self._lock:
            named = {
                u for table in (self._follows, self._unfollows) for us in table.values() for u in us
            }
            return (
                set(self._history)
                | set(self._shares)
                | set(self._follows)
                | set(self._unfollows)
                | named
            )

    def private_flags(self) -> dict[str, bool]:
        """Every privacy flag set since the start (user -> private)."""
        with self._lock:
            return dict(self._private)

    def touch(self, users: Iterable[str]) -> None:
        """Make these users' cached and precomputed lists stale: their next request is
        computed anew (as after a live event of theirs)."""
        with self._lock:
            for u in users:
                self._user_version[str(u)] = self._user_version.get(str(u), 0) + 1
                self._stale.add(str(u))

    def follow(self, a: str, b: str) -> None:
        with self._lock:
            self._follows.setdefault(str(a), set()).add(str(b))
            self._unfollows.get(str(a), set()).discard(str(b))
            self._user_version[str(a)] = self._user_version.get(str(a), 0) + 1

    def unfollow(self, a: str, b: str) -> None:
        with self._lock:
            self._follows.get(str(a), set()).discard(str(b))
            self._unfollows.setdefault(str(a), set()).add(str(b))
            self._user_version[str(a)] = self._user_version.get(str(a), 0) + 1

    # -------------------------------------------------------------- freshness stamps
    def user_version(self, user: str) -> int:
        """Grows with every live event, follow and unfollow of `user` (0 before any). Read it
        before the data it stamps: a change in between only makes a cached result look older."""
        return self._user_version.get(str(user), 0)  # one dict read: atomic under the GIL

    def fitted_view_stale(self, user: str) -> bool:
        """Was `user` touched (`touch`) or erased since the start? Then their precomputed lists
        must not be served nor updated, only computed anew."""
        return str(user) in self._stale  # one set read: atomic under the GIL

    @property
    def catalog_version(self) -> int:
        """Grows with every catalog deletion and upsert."""
        return self._catalog_version

    # -------------------------------------------------------------- reads (copies)
    def recent_users(self, n: int) -> list[str]:
        """Up to `n` users with live events, the most recently active first."""
        with self._lock:
            latest = [(h[-1][1], u) for u, h in self._history.items() if h]
        known = [(t if math.isfinite(t) else -math.inf, u) for t, u in latest]
        return [u for _, u in heapq.nlargest(max(n, 0), known)]

    def history(self, user: str) -> list[LiveEvent]:
        """The user's live events, oldest first: (item, epoch seconds, event)."""
        with self._lock:
            return list(self._history.get(str(user), ()))

    def live_user(self, user: str, context_item: str | None = None) -> LiveUser:
        """What happened to `user` since the fit; a context item (the item the user is looking
        at now) counts as their newest event, a view at the time of their last live event."""
        events = self.history(user)
        if context_item is not None:
            last = max((t for _, t, _ in events), default=math.nan)
            events.append((str(context_item), last, "view"))
        followed, unfollowed = self.followees(user)
        return LiveUser(str(user), tuple(events), frozenset(followed), frozenset(unfollowed))

    def deleted(self) -> frozenset[str]:
        with self._lock:
            return frozenset(self._deleted)

    def items(self) -> dict[str, ItemInfo]:
        with self._lock:
            return dict(self._items)

    def catalog_changes(self, epoch: int, start: int) -> tuple[int, int, list[str], bool]:
        """(epoch, log length, item IDs changed from position `start` on, reset). reset: the
        log was compacted since `epoch`, and the IDs are every live item plus later changes."""
        with self._lock:
            if epoch != self._log_epoch:
                return self._log_epoch, len(self._catalog_log), list(self._catalog_log), True
            return epoch, len(self._catalog_log), self._catalog_log[start:], False

    def item_infos(self, ids: Iterable[str]) -> dict[str, ItemInfo]:
        """Live catalog values of those of `ids` upserted and not deleted since."""
        with self._lock:
            return {i: self._items[i] for i in ids if i in self._items}

    def followees(self, user: str) -> tuple[set[str], set[str]]:
        """(followed live, unfollowed live) of `user`."""
        with self._lock:
            return set(self._follows.get(str(user), ())), set(self._unfollows.get(str(user), ()))

    def counts(self) -> tuple[dict[str, float], float, float]:
        """Decayed live event counts per item, the time they refer to (the newest event time)
        and the time of the first live event (inf / -inf before any)."""
        with self._lock:
            if not self._counts:
                return {}, self._clock, self._first
            factor = 2.0 ** ((self._ref - self._clock) / self.half_life_s)
            return (
                {key: v * factor for key, v in self._counts.items()},
                self._clock,
                self._first,
            )
