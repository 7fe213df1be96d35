"""Several servers on one store see each other's writes.

Behind a load balancer every server process keeps its own live state (`OnlineState`: recent
events, catalog changes, follows, privacy flags) and its own memory-mapped model. A daemon
thread here polls the store every `Settings.follow_store_s` seconds and applies what *other*
processes wrote since its last look, the way `warm_runtime` replays a restart:

- events by row ID (a primary-key range scan), re-reading the last `LOOKBACK_ROWS` rows each
  time because PostgreSQL hands out serial IDs before commit (a transaction may commit after a
  higher ID is already visible); an event is applied once, by its `event_id`. Events this
  process ingested are marked by the events route before they are stored, and skipped;
- catalog upserts and deletions, profile updates (privacy flags) and follow-graph changes by
  their timestamps (indexed, schema 0004), re-reading a `margin_s` overlap, each change
  applied once.

A user's next request on any server then reflects an event acknowledged by another within
about one polling interval. Model swaps reach every server through `watcher` (the store's
active version). Not propagated: erasure and consent changes made through another server reach
this one's live state at its next start (the store, the models and later fits are clean at
once; see docs/deployment.md).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Hashable, Iterable
from dataclasses import dataclass

from fastapi import FastAPI

from serendip.errors import SerendipError
from serendip.service.runtime import ModelRuntime
from serendip.service.watcher import busy
from serendip.store import EventIn, Store

__all__ = ["LOOKBACK_ROWS", "FollowStats", "StoreFollower", "start_follower"]

log = logging.getLogger("serendip.service")

#: Rows re-read behind the last seen event row: commits that land out of ID order.
LOOKBACK_ROWS = 1_000
#: Event IDs remembered as applied (a bounded window, oldest dropped first).
_REMEMBER = 200_000


@dataclass(frozen=True, slots=True)
class FollowStats:
    """What one look applied."""

    events: int = 0
    items: int = 0
    deleted: int = 0
    profiles: int = 0
    follows: int = 0

    @property
    def total(self) -> int:
        return self.events + self.items + self.deleted + self.profiles + self.follows


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
    not live events)."""

    def __init__(self, store: Store, runtime: ModelRuntime, *, margin_s: float = 10.0) -> None:
        self.store, self.runtime, self.margin_s = store, runtime, margin_s
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
        return FollowStats(len(fresh), len(items), len(deleted), len(profiles), len(changes))

    def _new(self, *key: Hashable) -> bool:
        return self._changes.add(key)


def _ready(app: FastAPI) -> bool:
    """A model serves and no load or first start runs (their replay and import come first)."""
    runtime = app.state.runtime
    return runtime is not None and runtime.active_version is not None and not busy(app)


def start_follower(app: FastAPI, every_s: float) -> threading.Thread | None:
    """Start the follower thread for `app` (None when `every_s` <= 0 or no store is open): it
    waits until the runtime serves, then sets `app.state.follower` and polls every `every_s`
    seconds until the app's `shutting_down` event."""
    store = app.state.store
    if every_s <= 0 or store is None:
        return None
    stop: threading.Event = app.state.shutting_down

    def run() -> None:
        while not _ready(app):
            if stop.wait(0.2):
                return
        follower = StoreFollower(store, app.state.runtime)
        app.state.follower = follower
        while not stop.wait(every_s):
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
