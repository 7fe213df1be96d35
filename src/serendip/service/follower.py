"""Several servers on one store see each other's writes.

Behind a load balancer every server process keeps its own live state (`OnlineState`: recent
events, catalog changes, follows, privacy flags) and its own memory-mapped model. A daemon
thread here polls the store every `Settings.follow_store_s` seconds and applies what *other*
processes wrote since its last look, the way `warm_runtime` replays a restart:

- events by row ID (a primary-key range scan), re-reading the last `LOOKBACK_ROWS` rows each
  time because PostgreSQL hands out serial IDs before commit (a transaction may commit after a
  higher ID is already visible); an event is applied once, by its `event_id`. Events this
  process ingested are marked by the events route before they are stored, and skipped;
- catalog upserts and deletions, profile updates (privacy flags), consent changes and
  follow-graph changes by their timestamps (indexed, schema 0004), re-reading a `margin_s`
  overlap, each change applied once;
- erasures by row ID: the log holds a keyed hash of the user (`erasure_subject`), never the
  ID, so the follower hashes the users this process knows (live state, loaded models) with
  the installation's erasure key and forgets the ones named (`privacy.forget_live`): hidden
  in every loaded model, dropped from the live state. The refitted model reaches every server
  through the watcher.

A user's next request on any server then reflects an event, consent change or erasure
acknowledged by another within about one polling interval (at once with Redis notices,
`serendip.service.notices`). Model swaps reach every server
through `watcher` (the store's active version).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass

from fastapi import FastAPI

from serendip.errors import SerendipError
from serendip.service.notices import ChangeNotices
from serendip.service.privacy import app_privacy, apply_consent, forget_live
from serendip.service.runtime import ModelRuntime
from serendip.service.watcher import busy
from serendip.store import EventIn, Store

__all__ = ["LOOKBACK_ROWS", "FollowStats", "StoreFollower", "start_follower"]

log = logging.getLogger("serendip.service")

#: Rows re-read behind the last seen event row: commits that land out of ID order.
LOOKBACK_ROWS = 1_000
#: Event IDs remembered as applied (a bounded window, oldest dropped first).
_REMEMBER = 200_000
#: Erasure rows re-read behind the last seen one (out-of-order commits, as for events).
_ERASURE_LOOKBACK = 100


@dataclass(frozen=True, slots=True)
class FollowStats:
    """What one look applied."""

    events: int = 0
    items: int = 0
    deleted: int = 0
    profiles: int = 0
    follows: int = 0
    consents: int = 0
    erased: int = 0

    @property
    def total(self) -> int:
        return (
            self.events
            + self.items
            + self.deleted
            + self.profiles
            + self.follows
            + self.consents
            + self.erased
        )


class _Seen:
    """A bounded set of keys, oldest forgotten first."""

    def __init__(self, size: int = _REMEMBER) -> None:
        self._keys: OrderedDict[Hashable, None] = OrderedDict()
        self._size = size

    def add(self, key: Hashable) -> bool:
        """True when `key` is new (and remember it)."""
        if key in self._keys:
            return False
        self._keys[key] = None
        while len(self._keys) > self._size:
            self._keys.popitem(last=False)
        return True


class StoreFollower:
    """Applies other processes' writes to this process's runtime (see the module docstring).
    Starts at the store's current end, the last `LOOKBACK_ROWS` events counted as applied:
    what came before is `warm_runtime`'s (or the first start's import, which is training data,
    not live events). `subject` is the installation's keyed hash of a user ID (the erasure
    log's); without it erasures are not followed."""

    def __init__(
        self,
        store: Store,
        runtime: ModelRuntime,
        *,
        margin_s: float = 10.0,
        subject: Callable[[str], str] | None = None,
    ) -> None:
        self.store, self.runtime, self.margin_s = store, runtime, margin_s
        self.subject = subject
        self._erasure_row = store.erasures.last_id()
        self._lock = threading.Lock()
        self._since = time.time()
        self._events = _Seen()
        self._changes = _Seen(50_000)
        self._row = store.events.last_row_id()
        for _, e in store.events.after_row(max(0, self._row - LOOKBACK_ROWS), LOOKBACK_ROWS):
            self._events.add(e.event_id)

    def mark(self, event_ids: Iterable[str]) -> None:
        """Events this process applies itself (called before they are stored)."""
        with self._lock:
            for eid in event_ids:
                self._events.add(eid)

    def poll_once(self) -> FollowStats:
        """One look at the store; what it applied."""
        with self._lock:
            rows = self.store.events.after_row(max(0, self._row - LOOKBACK_ROWS), limit=100_000)
            fresh = [e for _, e in rows if self._events.add(e.event_id)]
            if rows:
                self._row = max(self._row, rows[-1][0])
            now = time.time()
            since = self._since - self.margin_s
            deleted = [i for i in self.store.catalog.deleted_since(since) if self._new("d", i)]
            items = [
                it
                for it in self.store.catalog.updated_since(since)
                if self._new("i", it.item, it.updated_at)
            ]
            profiles = [
                u
                for u in self.store.users.updated_since(since)
                if self._new("u", u.user, u.updated_at)
            ]
            changes = [c for c in self.store.social.changes_since(since) if self._new("f", *c)]
            consents = [
                c
                for c in self.store.consents.updated_since(since)
                if self._new("c", c.user, c.updated_at)
            ]
            erasures = self.store.erasures.after(max(0, self._erasure_row - _ERASURE_LOOKBACK))
            subjects = {e.subject for e in erasures if self._new("e", e.id)}
            if erasures:
                self._erasure_row = max(self._erasure_row, erasures[-1].id)
            self._since = now
        if fresh:
            self.runtime.on_events(
                [EventIn(e.event_id, e.user, e.item, e.event, e.timestamp, e.value) for e in fresh]
            )
        if deleted:
            self.runtime.on_items_deleted(deleted)
        if items:
            self.runtime.on_items(items)
        if profiles:
            self.runtime.on_users(profiles)
        for kind, follower, followee, _ in changes:
            (self.runtime.on_follow if kind == "follow" else self.runtime.on_unfollow)(
                follower, followee
            )
        for c in consents:
            apply_consent(
                self.runtime, self.store, c.user, c.personalization, c.activity_for_others
            )
        erased = self._forget(subjects) if subjects else []  # last: after their events
        return FollowStats(
            len(fresh),
            len(items),
            len(deleted),
            len(profiles),
            len(changes),
            len(consents),
            len(erased),
        )

    def _forget(self, subjects: set[str]) -> list[str]:
        """Forget the users whose keyed hash the new erasures name; returns them."""
        if self.subject is None:
            return []
        subject = self.subject
        named = sorted(u for u in self.runtime.known_users() if subject(u) in subjects)
        for user in named:
            forget_live(self.runtime, user)
        if named:
            log.info("erasure made through another server applied to %d user(s)", len(named))
        return named

    def _new(self, *key: Hashable) -> bool:
        return self._changes.add(key)


def _ready(app: FastAPI) -> bool:
    """A model serves and no load or first start runs (their replay and import come first)."""
    runtime = app.state.runtime
    return runtime is not None and runtime.active_version is not None and not busy(app)


def start_follower(app: FastAPI, every_s: float) -> threading.Thread | None:
    """Start the follower thread for `app` (None when `every_s` <= 0 or no store is open): it
    waits until the runtime serves, then sets `app.state.follower` and polls every `every_s`
    seconds, and at once when `app.state.notices` (Redis) says another server wrote, until
    the app's `shutting_down` event."""
    store = app.state.store
    if every_s <= 0 or store is None:
        return None
    stop: threading.Event = app.state.shutting_down

    def run() -> None:
        while not _ready(app):
            if stop.wait(0.2):
                return
        follower = StoreFollower(store, app.state.runtime, subject=app_privacy(app).subject)
        app.state.follower = follower
        notices: ChangeNotices | None = app.state.notices
        while not stop.is_set():
            if notices is not None:
                notices.wait(every_s)  # another server's write wakes it early
            if stop.wait(0 if notices is not None else every_s):
                return
            try:
                stats = follower.poll_once()
            except (SerendipError, OSError) as exc:  # the store is away: try again later
                log.warning("following the store failed: %s", exc)
                continue
            except Exception:
                log.exception("following the store failed")
                continue
            if stats.total:
                log.debug("applied from the store: %s", stats)

    thread = threading.Thread(target=run, name="store-follower", daemon=True)
    thread.start()
    return thread
