"""The serving runtime: the active model, hot swaps, and the live state between retrains.

`ModelRuntime` holds the active `(model, version, metadata)` as one immutable `Snapshot` behind a
single reference. Requests read that reference once and use the snapshot they got to the end, so
they never take a lock and never see half of a swap; `load` builds and validates a complete new
snapshot (artifact read, a smoke recommendation for a few known users and one unknown user) and
only then replaces the reference. A failed load raises `SerendipError` with the reason and leaves
the old snapshot serving.

`OnlineState` is what happened since the model's training window: per-user recent events (bounded),
catalog additions and updates, deletions, follows and unfollows, and time-decayed event counts.
It survives swaps. Every request combines the snapshot with it, so an event changes that user's
next recommendations at once, without a retrain:

- the item is excluded (it is in the user's history);
- models that fold users in (`supports_update`, factorization and content families) score the user
  from their training history plus the live events (a per-user fold-in through the model's
  cold-start path, no shared state mutated);
- other zoo models get the live history as `context`; the `pipeline` model gets it inside its
  `UserContext` (recent-history sources use it);
- deleted items are filtered from every response; new items reach users through `trending`
  and, before any retrain, through the live catalog step of `recommend` (every model kind):
  an item upserted after the fit that the model does not know reaches a user who follows its
  author ("New from <author>, whom you follow") or whose most read category (or declared
  interest) is its category, in at most `fresh_slots` of the k slots, newest first.

Serving fast path (the `pipeline` model): every known user's ranked candidates -- and the final
list and explanations of an unfiltered request -- are precomputed in batch with the model
(`serendip.service.precompute`, saved in the artifact's `serving-lists/`, built in the background
after loading a model without them). A user with no live state since the fit is served from them
(exact: the runtime checks that the request's filters leave the precomputed answer valid, and
computes it otherwise). Each snapshot also owns a `SnapshotCache`. Per user it keeps
the expensive half of the pipeline -- the context, the merged candidates and their ranker scores
(~10 ms of CPU on the `small` preset) -- stamped with the user's live-state version
(`OnlineState.user_version`: events, follows, unfollows); the cheap half -- filters (seen, deleted,
categories, authors, exclude), MMR re-ranking and backfill, well under a millisecond -- runs on
every request. So a hit returns exactly what a miss would, a new event or follow recomputes that
user's candidates at once (the recent-history sources see it), a deletion or catalog update
applies at once to every cached user, and a swap starts an empty cache. Explanations are computed
for returned items only, once per cached entry. Users the model never saw and who have no live
state share one cold-start entry. The LRU is bounded (`cache_size` users).

Thread pools: BLAS and OpenMP are limited to one thread per process after each model load
(`limit_threads`): one request is a few small products, and fanning them out over the cores of a
shared machine triples their CPU cost (measured: `benchmarks/results/serve_cache.md`).
"""

from __future__ import annotations

import atexit
import bisect
import dataclasses
import heapq
import itertools
import json
import logging
import math
import threading
import time
from collections import Counter, OrderedDict, deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from serendip.errors import ConfigError, SerendipError
from serendip.models.base import Evidence, Explanation, RecLists, Recommender
from serendip.service.precompute import ListsHolder, RankedLists, build_ranked_lists, fingerprint
from serendip.threads import limit_threads

__all__ = ["ModelRuntime", "OnlineState", "RecItem", "Snapshot", "SnapshotCache"]

_log = logging.getLogger("serendip.service")

#: Families whose cold-start path folds a history in exactly as fitting would (user factors,
#: content profiles): a known user with live events is re-scored from train + live history.
_FOLD_IN_FAMILIES = frozenset({"factorization", "content"})
#: Prefix of the request-local alias under which a known user is folded in (never a real ID:
#: external IDs are printable strings).
_ALIAS = "\x00live:"
#: Cache key of the shared cold-start candidates (users the model never saw, no live state).
_COLD_KEY = "\x00cold"


@dataclass(frozen=True, slots=True)
class RecItem:
    """One recommended item: external ID, score (higher = better; comparable within a list only)
    and the explanation (`Explanation.to_dict()` form) when asked for."""

    item: str
    score: float
    explanation: dict[str, Any] | None = None


@dataclass(frozen=True, slots=True, eq=False)
class Snapshot:
    """One loaded, validated model version; never mutated after construction."""

    model: Recommender
    version: str
    directory: Path
    loaded_at: float
    metadata: dict[str, Any] = field(default_factory=dict)
    #: per-snapshot serving caches: they belong to this model, so a swap starts empty ones
    cache: SnapshotCache | None = None
    #: precomputed ranked candidates of every known user (pipeline only; see `precompute`)
    lists: ListsHolder | None = None


@dataclass(slots=True, eq=False)
class _Candidates:
    """One user's scored candidates from the pipeline's expensive half (sources, merge,
    features, ranker) -- a pure function of the snapshot and the user's context, so it stays
    valid until the user's live state changes (`stamp`). The cheap half (filters, re-ranking,
    backfill) runs on every request, which keeps filters exact and immediate.
    Explanations are computed for returned items only, once each (they do not depend on the
    score shown, which is set per request). `cut`: the candidates are the precomputed best
    `depth` only (`serendip.service.precompute`), exact while a request leaves at least the
    re-ranking pool of them allowed."""

    ctx: Any  # pipeline UserContext with the live history and follows merged in
    items: np.ndarray  # candidate item indices, best ranker score first
    scores: np.ndarray  # ranker scores, aligned with items
    source_score: np.ndarray  # per-source scores (len(items) x n_sources), NaN = not proposed
    source_rank: np.ndarray  # per-source ranks, aligned
    stamp: int  # OnlineState.user_version when the context was read
    cut: bool = False
    explained: dict[int, Explanation] = field(default_factory=dict)
    #: from the precomputed lists: the unfiltered request's final list and explanations (JSON)
    final: tuple[np.ndarray, np.ndarray] | None = None
    final_explained: dict[int, bytes] = field(default_factory=dict)
    row: dict[int, int] = field(default_factory=dict)  # item -> position, filled on demand

    def position(self, item: int) -> int:
        """Row of `item` in the candidates (-1: not a candidate, e.g. a backfilled item)."""
        if not self.row:
            self.row.update((int(i), j) for j, i in enumerate(self.items.tolist()))
        return self.row.get(int(item), -1)


@dataclass(frozen=True, slots=True, eq=False)
class _Column:
    """A catalog column (category or author) as integer codes into its distinct values, so a
    filter is one table lookup per item rather than a string comparison."""

    codes: np.ndarray  # int64 per item, -1 missing
    names: pd.Index

    @classmethod
    def build(cls, values: np.ndarray) -> _Column:
        codes, names = pd.factorize(np.asarray(values, dtype=object))
        return cls(np.asarray(codes, np.int64), pd.Index(names))

    def member(self, wanted: set[str]) -> np.ndarray:
        """Bool per item: its value is in `wanted` (a fresh, writable array)."""
        lut = np.append(np.asarray(self.names.isin(list(wanted)), dtype=bool), False)
        return lut[self.codes]  # code -1 reads the trailing False


@dataclass(frozen=True, slots=True, eq=False)
class _Updates:
    """Live catalog updates of the snapshot's items (model indices with their new category and
    author), stamped with the catalog version they were read at."""

    version: int
    idx: np.ndarray
    category: np.ndarray
    author: np.ndarray


class SnapshotCache:
    """Serving caches of one snapshot: a bounded LRU of per-user candidates (`_Candidates`, keyed
    by user and context item) and the catalog mask of deleted items (stamped with the live
    catalog version). Thread-safe; every operation is O(1) under one short lock.

    capacity: most users kept (0 disables the candidate cache). An entry is ~30-35 KB on the
    `small` preset (~230 candidates with per-source scores and ranks, the user's context, the
    explanations served), so 10,000 users hold ~350 MB."""

    def __init__(self, capacity: int) -> None:
        if capacity < 0:
            raise ConfigError(f"cache capacity must be at least 0, got {capacity}")
        self.capacity = capacity
        self._lock = threading.Lock()
        self._entries: OrderedDict[tuple[str, str | None], _Candidates] = OrderedDict()
        self.hits = 0
        self.misses = 0
        self._mask: tuple[int, np.ndarray] | None = None
        self._columns: tuple[_Column, _Column] | None = None
        self._updates: _Updates | None = None
        self._fresh: _FreshIndex | None = None

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: tuple[str, str | None], stamp: int) -> _Candidates | None:
        """The entry if present and computed from the user's current live state."""
        with self._lock:
            entry = self._entries.get(key)
            if entry is None or entry.stamp != stamp:
                self.misses += 1
                return None
            self._entries.move_to_end(key)
            self.hits += 1
            return entry

    def put(self, key: tuple[str, str | None], entry: _Candidates) -> None:
        if self.capacity == 0:
            return
        with self._lock:
            old = self._entries.get(key)
            if old is not None and old.stamp > entry.stamp:
                return  # a concurrent request stored fresher candidates
            self._entries[key] = entry
            self._entries.move_to_end(key)
            while len(self._entries) > self.capacity:
                self._entries.popitem(last=False)

    def columns(self, model: Recommender) -> tuple[_Column, _Column]:
        """Category and author columns of the fitted catalog, factorized once per snapshot."""
        cols = self._columns
        if cols is None:
            cols = self._columns = (
                _Column.build(model.item_category_),
                _Column.build(model.item_author_),
            )
        return cols

    def updates(self, version: int) -> _Updates | None:
        upd = self._updates
        return upd if upd is not None and upd.version == version else None

    def set_updates(self, upd: _Updates) -> None:
        self._updates = upd

    def fresh(self) -> _FreshIndex | None:
        """The latest live catalog index (of any catalog version: the caller checks)."""
        return self._fresh

    def set_fresh(self, index: _FreshIndex) -> None:
        self._fresh = index

    def deleted_mask(self, version: int) -> np.ndarray | None:
        mask = self._mask
        return mask[1] if mask is not None and mask[0] == version else None

    def set_deleted_mask(self, version: int, mask: np.ndarray) -> None:
        mask.flags.writeable = False  # shared by concurrent requests: copy before changing
        self._mask = (version, mask)

    def stats(self) -> dict[str, int]:
        return {
            "entries": len(self._entries),
            "capacity": self.capacity,
            "hits": self.hits,
            "misses": self.misses,
        }


def _get(obj: Any, name: str, default: Any = None) -> Any:
    """Attribute of a dataclass/pydantic object, or key of a mapping (API and store types)."""
    if isinstance(obj, Mapping):
        return obj.get(name, default)
    return getattr(obj, name, default)


@dataclass(frozen=True, slots=True)
class _ItemInfo:
    category: str
    author: str
    created_at: float


#: How many of a user's most recent history items define their "most read" category for the
#: live catalog step (a taste that moved on should not keep pulling the old category).
_RECENT_HISTORY = 50


@dataclass(frozen=True, slots=True, eq=False)
class _FreshIndex:
    """The live items a snapshot's model does not know (upserted after its fit, not deleted),
    indexed by author and by category, newest first (unknown creation time last), stamped with
    the catalog version it was read at. Requests share it read-only. It is updated once per
    catalog change and incrementally: only the items changed since the previous index (the
    live state's change log) are looked up in the model's vocabulary and moved between groups,
    so the cost follows the change, not the size of the live catalog (a bulk import before the
    fit leaves many known items in the live state)."""

    version: int
    #: the change log's epoch and the position this index has read up to
    epoch: int
    log_pos: int
    info: dict[str, _ItemInfo]
    by_author: dict[str, tuple[str, ...]]
    by_category: dict[str, tuple[str, ...]]

    @classmethod
    def build(
        cls, version: int, model: Recommender, state: OnlineState, previous: _FreshIndex | None
    ) -> _FreshIndex:
        """The index at `version` (read before calling): `previous` plus the changes logged
        since it (from scratch without one, or after the log was compacted)."""
        if previous is None:
            epoch, pos, changed, reset = state.catalog_changes(-1, 0)
        else:
            epoch, pos, changed, reset = state.catalog_changes(previous.epoch, previous.log_pos)
        if reset or previous is None:
            info: dict[str, _ItemInfo] = {}
            by_author: dict[str, tuple[str, ...]] = {}
            by_category: dict[str, tuple[str, ...]] = {}
        else:  # copy on write: requests in flight keep reading `previous`
            info = dict(previous.info)
            by_author, by_category = dict(previous.by_author), dict(previous.by_category)
        ids = list(dict.fromkeys(changed))
        if ids:
            unknown = model.items_.indices(ids) < 0
            ids = [i for i, new in zip(ids, unknown.tolist(), strict=True) if new]
        current = state.item_infos(ids)  # deleted items are gone from the live catalog
        # per group: the changed items that leave it and those that (re-)enter it
        moves: dict[tuple[int, str], tuple[set[str], list[str]]] = {}
        for i in ids:
            old, new = info.pop(i, None), current.get(i)
            for entry, leaving in ((old, True), (new, False)):
                if entry is None:
                    continue
                for which, key in ((0, entry.author), (1, entry.category)):
                    if key:
                        out, into = moves.setdefault((which, key), (set(), []))
                        if leaving:
                            out.add(i)
                        else:
                            into.append(i)
            if new is not None:
                info[i] = new

        def newest(x: str) -> tuple[bool, float, str]:
            return _newest_key(x, info[x])

        for (which, key), (out, into) in moves.items():
            groups = by_category if which else by_author
            members = [x for x in groups.get(key, ()) if x not in out]
            if len(into) > 16:  # many arrivals (a first build, a bulk upsert): one sort
                members.extend(into)
                members.sort(key=newest)
            else:  # a few arrivals into a sorted group: binary insertion
                for x in into:
                    bisect.insort(members, x, key=newest)
            if members:
                groups[key] = tuple(members)
            else:
                groups.pop(key, None)
        return cls(version, epoch, pos, info, by_author, by_category)


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
        self._items: dict[str, _ItemInfo] = {}
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
        # freshness stamps for the runtime's caches: per user, bumped by that user's events,
        # follows and unfollows; catalog, bumped by deletions and upserts (a re-added item)
        self._user_version: dict[str, int] = {}
        # privacy flags set since the fit (user -> private): applied to every model loaded later
        self._private: dict[str, bool] = {}
        self._catalog_version = 0
        self._ref = math.nan
        self._clock = -math.inf  # the newest event time
        self._first = math.inf  # time of the first live event

    # -------------------------------------------------------------- writes
    def add_events(self, events: Iterable[Any]) -> int:
        """Record events (objects or mappings with user, item, event, timestamp); returns how
        many were recorded."""
        n = 0
        with self._lock:
            for e in events:
                user, item = str(_get(e, "user")), str(_get(e, "item"))
                ts = _get(e, "timestamp")
                ts = float(ts) if ts is not None and math.isfinite(float(ts)) else time.time()
                kind = str(_get(e, "event", "view") or "view")
                hist = self._history.get(user)
                if hist is None:
                    hist = self._history[user] = deque(maxlen=self.history_size)
                hist.append((item, ts, kind))
                self._user_version[user] = self._user_version.get(user, 0) + 1
                self._count(item, ts)
                n += 1
        return n

    def _count(self, item: str, ts: float) -> None:
        self._first = min(self._first, ts)
        self._clock = max(self._clock, ts)
        if math.isnan(self._ref):
            self._ref = ts
        elif (self._clock - self._ref) / self.half_life_s > 60.0:  # 2**60: rescale
            factor = 2.0 ** ((self._ref - self._clock) / self.half_life_s)
            self._counts = {key: v * factor for key, v in self._counts.items()}
            self._ref = self._clock
        weight = 2.0 ** ((ts - self._ref) / self.half_life_s)
        self._counts[item] = self._counts.get(item, 0.0) + weight

    def upsert_items(self, items: Iterable[Any]) -> None:
        with self._lock:
            for it in items:
                iid = str(_get(it, "item"))
                created = _get(it, "created_at")
                self._catalog_log.append(iid)
                self._items[iid] = _ItemInfo(
                    str(_get(it, "category", "") or ""),
                    str(_get(it, "author", "") or ""),
                    float(created) if created is not None else math.nan,
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

    @property
    def catalog_version(self) -> int:
        """Grows with every catalog deletion and upsert."""
        return self._catalog_version

    # -------------------------------------------------------------- reads (copies)
    def history(self, user: str) -> list[tuple[str, float, str]]:
        """The user's live events, oldest first: (item, epoch seconds, event)."""
        with self._lock:
            return list(self._history.get(str(user), ()))

    def deleted(self) -> frozenset[str]:
        with self._lock:
            return frozenset(self._deleted)

    def items(self) -> dict[str, _ItemInfo]:
        with self._lock:
            return dict(self._items)

    def catalog_changes(self, epoch: int, start: int) -> tuple[int, int, list[str], bool]:
        """(epoch, log length, item IDs changed from position `start` on, reset). reset: the
        log was compacted since `epoch`, and the IDs are every live item plus later changes."""
        with self._lock:
            if epoch != self._log_epoch:
                return self._log_epoch, len(self._catalog_log), list(self._catalog_log), True
            return epoch, len(self._catalog_log), self._catalog_log[start:], False

    def item_infos(self, ids: Iterable[str]) -> dict[str, _ItemInfo]:
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


class ModelRuntime:
    """The active model plus live state; what the HTTP layer calls.

    >>> rt = ModelRuntime()                                    # doctest: +SKIP
    >>> rt.load(Path("models/ials-3"), "3")                    # doctest: +SKIP
    >>> rt.on_events([EventIn("e1", "u1", "i9", "like", 1.7e9, None)])  # doctest: +SKIP
    >>> rt.recommend("u1", 10, explain=True)                   # doctest: +SKIP
    """

    def __init__(
        self,
        store: Any | None = None,
        *,
        history_size: int = 200,
        trending_half_life_s: float = 86_400.0,
        smoke_users: int = 3,
        loader: Callable[[Path], Recommender] | None = None,
        cache_size: int = 10_000,
        single_thread: bool = True,
        precompute: bool = True,
        build_in_background: bool = True,
        freeze_gc: bool = True,
        fresh_slots: int = 2,
    ) -> None:
        if cache_size < 0:
            raise ConfigError(f"cache_size must be at least 0, got {cache_size}")
        if fresh_slots < 0:
            raise ConfigError(f"fresh_slots must be at least 0, got {fresh_slots}")
        #: most slots of a k-list that live items unknown to the model may take (`_with_fresh`)
        self.fresh_slots = fresh_slots
        #: use precomputed ranked candidates (a pipeline's `serving-lists/`, see `precompute`)
        self.precompute = precompute
        #: ... and build them in a background thread after a load that found none
        self.build_in_background = build_in_background
        #: after each load, move the heap out of the cyclic GC's sight (`_freeze_heap`)
        self.freeze_gc = freeze_gc
        self.store = store
        self.state = OnlineState(history_size=history_size, half_life_s=trending_half_life_s)
        self.smoke_users = smoke_users
        self.cache_size = cache_size
        self.single_thread = single_thread
        self._loader = loader or Recommender.load
        self._snapshot: Snapshot | None = None
        self._load_lock = threading.Lock()
        #: users made private since the start: cached explanations citing them are made anew
        self._hidden: frozenset[str] = frozenset()

    # -------------------------------------------------------------- versions
    @property
    def active_version(self) -> str | None:
        snap = self._snapshot
        return None if snap is None else snap.version

    @property
    def snapshot(self) -> Snapshot | None:
        """The active snapshot (read once per request)."""
        return self._snapshot

    def _active(self) -> Snapshot:
        snap = self._snapshot
        if snap is None:
            raise SerendipError("no model is loaded: load or activate a model version first")
        return snap

    def load(self, directory: Path | str, version: str) -> None:
        """Load the artifact in `directory` as `version`, validate it, then make it active.

        Validation: the artifact reads and is fitted, and a smoke recommendation for a few
        known users and one unknown user returns well-formed lists (valid, unique items, finite
        scores). Any failure raises `SerendipError` naming the version and the reason; the
        previous version keeps serving. Loads are serialised; requests never wait for them.
        """
        directory = Path(directory)
        with self._load_lock:
            try:
                model = self._loader(directory)
                if self.single_thread:  # after the load: it may bring its own OpenMP (LightGBM)
                    limit_threads()
                metadata = self._validate(model)
            except Exception as exc:  # any failure of a candidate version is reported, not served
                reason = str(exc) or type(exc).__name__
                raise SerendipError(
                    f"model version '{version}' at {directory} was not activated: {reason}"
                ) from exc
            metadata["live_clock_at_load"] = self.state.counts()[1]
            # privacy set since the fit holds for the new version too (before any request)
            self._apply_privacy(model, self.state.private_flags())
            cache = SnapshotCache(self.cache_size)
            lists = self._lists_for(model, directory)
            old = self._snapshot
            snap = Snapshot(model, str(version), directory, time.time(), metadata, cache, lists)
            if self.fresh_slots:  # the first live catalog index (O(live catalog)) off requests
                self._fresh_index(snap)
            self._snapshot = snap
            if old is not None and old.lists is not None:
                old.lists.stop()  # a background build for the old version is wasted work now
            if self.freeze_gc:
                _freeze_heap()
            if lists is not None and lists.state == "absent" and self.build_in_background:
                self._build_lists(model, directory, lists)

    def _lists_for(self, model: Recommender, directory: Path) -> ListsHolder | None:
        """The snapshot's precomputed lists: loaded from the artifact when saved with it."""
        if not (self.precompute and self.cache_size > 0 and _has_batch_api(model)):
            return None
        holder = ListsHolder()
        lists = RankedLists.load(directory, fingerprint=fingerprint(directory))
        if lists is not None:
            holder.lists, holder.state = lists, "ready"
        return holder

    def _build_lists(self, model: Recommender, directory: Path, holder: ListsHolder) -> None:
        """Build the lists in a daemon thread (requests are served meanwhile, in full), then
        save them into the artifact so the next load finds them."""

        def run() -> None:
            try:
                lists = build_ranked_lists(
                    model, fingerprint=fingerprint(directory), should_stop=lambda: holder.stopped
                )
                if lists is None:
                    holder.state = "absent"
                    return
                try:
                    lists.save(directory)
                except OSError as exc:  # a read-only artifact still serves from memory
                    _log.warning("could not save precomputed lists in %s: %s", directory, exc)
                holder.lists, holder.state = lists, "ready"
            except Exception:
                holder.state = "failed"
                _log.exception("building precomputed lists failed; serving without them")

        holder.state = "building"
        thread = threading.Thread(target=run, name="serendip-lists", daemon=True)
        _BUILDS[:] = [(t, h) for t, h in _BUILDS if t.is_alive()]  # keep no finished ones
        _BUILDS.append((thread, holder))
        thread.start()

    def _validate(self, model: Recommender) -> dict[str, Any]:
        if not model.is_fitted:
            raise SerendipError("the model is not fitted")
        n_users, n_items = len(model.users_), len(model.items_)
        if n_items == 0:
            raise SerendipError("the model has an empty catalog")
        picks = sorted({0, n_users // 2, n_users - 1})[: self.smoke_users] if n_users else []
        users = [model.users_.id(u) for u in picks] + [_ALIAS + "smoke"]
        k = min(5, n_items)
        if _is_pipeline(model):
            contexts = model.user_contexts(users)  # type: ignore[attr-defined]
            served = model.recommend_contexts(contexts, k)  # type: ignore[attr-defined]
            lists = [np.asarray(s.items, np.int64) for s in served]
            scores = [np.asarray(s.scores, np.float32) for s in served]
        else:
            recs = model.recommend(users, k)
            lists = [row for row in recs.items]
            scores = [row for row in recs.scores]
        for user, items, sc in zip(users, lists, scores, strict=True):
            got = items[items >= 0]
            if len(got) > k or np.any(got >= n_items) or len(np.unique(got)) != len(got):
                raise SerendipError(f"smoke recommendation for '{user}' is malformed: {items}")
            if not np.all(np.isfinite(sc[: len(got)])):
                raise SerendipError(f"smoke recommendation for '{user}' has non-finite scores")
        return {
            "model": model.name,
            "family": model.family,
            "n_users": n_users,
            "n_items": n_items,
            "supports_update": model.supports_update,
            "ann": sorted(getattr(model, "ann_indexes_", None) or {}),
        }

    # -------------------------------------------------------------- live state
    def on_events(self, events: Sequence[Any]) -> None:
        """Record interactions (EventIn-like: user, item, event, timestamp); the users' next
        requests see them."""
        self.state.add_events(events)

    def on_items(self, items: Sequence[Any]) -> None:
        """New or updated catalog items (ItemIn-like: item, category, author, created_at)."""
        self.state.upsert_items(items)

    def on_items_deleted(self, ids: Iterable[str]) -> None:
        """Items removed from the catalog: filtered from every response from now on."""
        self.state.delete_items(ids)

    def on_users(self, users: Sequence[Any]) -> None:
        """Profile changes (UserIn-like: user, private). Privacy applies at once, without a
        retrain: a user who turns private is no longer cited nor used as social evidence for
        anyone (models that support it: `set_private`), and every follower's list, which may
        cite them, is computed anew on its next request."""
        flags = {str(_get(u, "user")): bool(_get(u, "private", False)) for u in users}
        self.state.set_private(flags)
        self._hidden = frozenset(u for u, p in self.state.private_flags().items() if p)
        snap = self._snapshot
        if snap is not None:
            self._apply_privacy(snap.model, flags)

    def _apply_privacy(self, model: Recommender, flags: Mapping[str, bool]) -> None:
        setter = getattr(model, "set_private", None)
        if setter is None or not flags:
            return
        changed = setter(flags)
        follow = getattr(model, "follow_", None)
        if changed and follow is not None:
            idx = model.users_.indices(np.asarray(changed, dtype=object))
            followers = sp.csc_matrix(follow)[:, idx[idx >= 0]].nonzero()[0]
            self.state.touch(model.users_.id(int(u)) for u in np.unique(followers))

    def on_follow(self, a: str, b: str) -> None:
        self.state.follow(a, b)

    def on_unfollow(self, a: str, b: str) -> None:
        self.state.unfollow(a, b)

    # -------------------------------------------------------------- requests
    def _allowed_mask(
        self,
        snap: Snapshot,
        *,
        categories: Iterable[str] | None,
        authors: Iterable[str] | None,
        exclude: Iterable[str],
    ) -> np.ndarray:
        """Bool mask over the model's items: not deleted, not excluded, and in the requested
        categories / by the requested authors (live catalog updates override fitted metadata).

        The deleted-items part is kept per snapshot until the next catalog change, so a request
        without filters costs O(1) here; the returned array may be that shared, read-only mask."""
        model = snap.model
        version = self.state.catalog_version  # before reading the data it stamps
        base = snap.cache.deleted_mask(version) if snap.cache is not None else None
        if base is None:
            base = np.ones(len(model.items_), dtype=bool)
            deleted = list(self.state.deleted())
            if deleted:
                idx = model.items_.indices(deleted)
                base[idx[idx >= 0]] = False
            if snap.cache is not None:
                snap.cache.set_deleted_mask(version, base)
        removed = [str(x) for x in exclude]
        if not removed and categories is None and authors is None:
            return base
        mask = base.copy()
        if removed:
            idx = model.items_.indices(removed)
            mask[idx[idx >= 0]] = False
        if categories is None and authors is None:
            return mask
        # factorized columns (cached per snapshot): one table lookup per item, then the live
        # catalog updates (cached per catalog version) override the fitted values
        cache = snap.cache if snap.cache is not None else SnapshotCache(0)
        cat_col, auth_col = cache.columns(model)
        upd = cache.updates(version)
        if upd is None:
            items = self.state.items()
            idx = model.items_.indices(list(items)) if items else np.zeros(0, np.int64)
            ok = idx >= 0
            infos = [info for info, keep in zip(items.values(), ok, strict=True) if keep]
            upd = _Updates(
                version,
                idx[ok],
                np.array([i.category for i in infos], dtype=object),
                np.array([i.author for i in infos], dtype=object),
            )
            cache.set_updates(upd)
        for wanted, col, live in (
            (categories, cat_col, upd.category),
            (authors, auth_col, upd.author),
        ):
            if wanted is None:
                continue
            names = {str(x) for x in wanted}
            member = col.member(names)
            if len(upd.idx):
                member[upd.idx] = pd.Index(live).isin(list(names))
            mask &= member
        return mask

    def recommend(
        self,
        user: str,
        k: int,
        *,
        explain: bool = False,
        categories: Iterable[str] | None = None,
        authors: Iterable[str] | None = None,
        exclude: Iterable[str] = (),
        context_item: str | None = None,
        snapshot: Snapshot | None = None,
    ) -> list[RecItem]:
        """Top-k for a known or unknown user, with live history, filters and explanations.

        categories / authors: only items in these categories / by these authors (None = any).
        exclude: item IDs never to return. context_item: the item the user is looking at now;
        it counts as the most recent history item and is never returned. snapshot: the version
        to serve from (a caller that reports the version reads `snapshot` once and passes it,
        so a concurrent swap cannot make the list and the reported version disagree).
        """
        if k < 1:
            raise ConfigError(f"k must be at least 1, got {k}")
        snap = snapshot or self._active()
        model = snap.model
        user = str(user)
        exclude = [str(x) for x in exclude]
        if context_item is not None:
            exclude.append(str(context_item))
        allowed = self._allowed_mask(snap, categories=categories, authors=authors, exclude=exclude)
        if _is_pipeline(model):
            out = self._recommend_pipeline(snap, user, k, context_item, allowed, explain)
        else:
            out = self._recommend_model(snap, user, k, context_item, allowed, explain)
        return self._with_fresh(
            snap,
            user,
            k,
            out,
            explain=explain,
            categories=categories,
            authors=authors,
            exclude=exclude,
        )

    def _recommend_model(
        self,
        snap: Snapshot,
        user: str,
        k: int,
        context_item: str | None,
        allowed: np.ndarray,
        explain: bool,
    ) -> list[RecItem]:
        """A zoo model's top-k: live history as context, or a per-user fold-in."""
        model = snap.model
        events = self._events(user, context_item)
        live = [item for item, _, _ in events]
        known = model.users_.get(user) >= 0
        ask = user
        history = live
        if known and live and model.supports_update and model.family in _FOLD_IN_FAMILIES:
            # per-user fold-in: the model's cold-start path with the whole history, under an alias
            train = model.train_
            u = model.users_.index(user)
            past = model.items_.lookup(train.indices[train.indptr[u] : train.indptr[u + 1]])
            history = [str(x) for x in past] + live
            ask = _ALIAS + user
        recs = model.recommend(
            [ask],
            k,
            filters=lambda idx: allowed[idx],
            context={ask: history} if history else None,
        )
        if known:

            def explainer(it: str) -> dict[str, Any]:
                return model.explain(user, it).to_dict()
        else:

            def explainer(it: str) -> dict[str, Any]:
                return _live_explanation(model, user, it, live)

        return self._items(snap, recs, 0, user, explain, explainer)

    def _events(self, user: str, context_item: str | None) -> list[tuple[str, float, str]]:
        """The user's live events; the context item counts as the newest."""
        events = self.state.history(user)
        if context_item is not None:
            last = max((t for _, t, _ in events), default=math.nan)
            events.append((str(context_item), last, "view"))
        return events

    # -------------------------------------------------------------- live catalog
    def _fresh_index(self, snap: Snapshot) -> _FreshIndex:
        """The live items `snap`'s model does not know, indexed; rebuilt per catalog change."""
        version = self.state.catalog_version  # before reading the data it stamps
        cache = snap.cache
        index = cache.fresh() if cache is not None else None
        if index is None or index.version != version:
            index = _FreshIndex.build(version, snap.model, self.state, index)
            if cache is not None:
                cache.set_fresh(index)
        return index

    def _with_fresh(
        self,
        snap: Snapshot,
        user: str,
        k: int,
        out: list[RecItem],
        *,
        explain: bool,
        categories: Iterable[str] | None,
        authors: Iterable[str] | None,
        exclude: Sequence[str],
    ) -> list[RecItem]:
        """The live catalog step, a request-time merge after any model path (precomputed lists
        included): live items the model does not know, by an author the user follows or in the
        user's most read category (or a declared interest), take at most `fresh_slots` of the
        last slots of the list, newest first (author route first), scored just below the last
        item kept. The list keeps length k. Costs a dict lookup when there are no such items."""
        if self.fresh_slots == 0:
            return out
        index = self._fresh_index(snap)
        if not index.info:
            return out
        limit = min(self.fresh_slots, k)
        picks = self._fresh_picks(snap, index, user, limit, out, categories, authors, exclude)
        if not picks:
            return out
        keep = out[: k - len(picks)]
        last = keep[-1].score if keep else 1.0
        last = last if math.isfinite(last) else 0.0
        step = 1e-6 * max(1.0, abs(last))  # below the kept items, in pick order
        model = snap.model
        for n, (item, route, evidence_id, weight) in enumerate(picks, start=1):
            score = last - n * step
            expl = None
            if explain:
                expl = _fresh_explanation(model, user, item, score, route, evidence_id, weight)
            keep.append(RecItem(item, score, expl))
        return keep

    def _fresh_picks(
        self,
        snap: Snapshot,
        index: _FreshIndex,
        user: str,
        limit: int,
        out: Sequence[RecItem],
        categories: Iterable[str] | None,
        authors: Iterable[str] | None,
        exclude: Sequence[str],
    ) -> list[tuple[str, str, str, float]]:
        """Up to `limit` (item, route, evidence ID, weight) picks; route: "author",
        "category" or "interest"."""
        model = snap.model
        events = self.state.history(user)
        blocked = set(exclude) | {e[0] for e in events} | {r.item for r in out}
        wanted_cat = None if categories is None else {str(c) for c in categories}
        wanted_auth = None if authors is None else {str(a) for a in authors}
        now = time.time()

        def eligible(item: str) -> bool:
            info = index.info[item]
            return (
                item not in blocked
                and not info.created_at > now  # NaN (unknown) passes
                and (wanted_cat is None or info.category in wanted_cat)
                and (wanted_auth is None or info.author in wanted_auth)
            )

        def newest(routed: list[tuple[str, str, str, float]]) -> list[tuple[str, str, str, float]]:
            return sorted(routed, key=lambda p: _newest_key(p[0], index.info[p[0]]))

        by_author: list[tuple[str, str, str, float]] = []
        if index.by_author:
            for author in sorted(_followed(model, user, self.state) & index.by_author.keys()):
                # each group is newest first: its first `limit` eligible items are the
                # only ones that can be picked, so a large group costs no more
                items = list(itertools.islice(filter(eligible, index.by_author[author]), limit))
                by_author += [(i, "author", author, 1.0) for i in items]
        by_content: list[tuple[str, str, str, float]] = []
        if index.by_category:
            routes: dict[str, tuple[str, float]] = {}
            top = _top_category(snap, user, events, index)
            if top is not None:
                routes[top[0]] = ("category", top[1])
            for interest in _interests(model, user):
                routes.setdefault(interest, ("interest", 1.0))
            for cat, (route, weight) in routes.items():
                items = list(
                    itertools.islice(filter(eligible, index.by_category.get(cat, ())), limit)
                )
                by_content += [(i, route, cat, weight) for i in items]
        picks: list[tuple[str, str, str, float]] = []
        seen: set[str] = set()
        for pick in newest(by_author) + newest(by_content):
            if pick[0] not in seen and len(picks) < limit:
                seen.add(pick[0])
                picks.append(pick)
        return picks

    def _recommend_pipeline(
        self,
        snap: Snapshot,
        user: str,
        k: int,
        context_item: str | None,
        allowed: np.ndarray,
        explain: bool,
    ) -> list[RecItem]:
        """The pipeline in two halves. The expensive half -- the user's context (fitted view
        plus live events and follows), sources, merge, features, ranker -- is cached per user
        and recomputed when the user's live state changes; the cheap half -- filters (seen,
        deleted, categories, authors, exclude), re-ranking and backfill -- runs on every
        request over the cached candidates, so a hit returns exactly what a miss would."""
        # a PipelineRecommender, duck-typed: the runtime does not import the pipeline
        model: Any = snap.model
        cache = snap.cache
        if cache is None or cache.capacity == 0 or not _has_batch_api(model):
            ctx = self._pipeline_context(model, user, self._events(user, context_item))
            served = model.recommend_contexts([ctx], k, explain=explain, allowed=allowed)[0]
            out = []
            for j, (iid, sc) in enumerate(zip(served.item_ids, served.scores, strict=True)):
                expl = None
                if explain and served.explanations is not None:
                    expl = served.explanations[j].to_dict()
                out.append(RecItem(str(iid), float(sc), expl))
            return out
        stamp = self.state.user_version(user)  # before the data it stamps
        # a user the model never saw, with no live state: the context is everyone's cold start
        # context, so all of them share one entry (only the ID differs, set per request). Any
        # per-user input added to the context later (e.g. live interests) must bump
        # `user_version`, which takes the user out of this shared entry.
        anonymous = (
            context_item is None
            and stamp == 0
            and model.users_.get(user) < 0
            and user not in getattr(model, "live_", {})
        )
        if anonymous:
            key: tuple[str, str | None] = (_COLD_KEY, None)
        else:
            key = (user, None if context_item is None else str(context_item))
        pool = model.rerank_pool
        # a re-ranking that counts exposure across requests makes every answer new
        stateless = bool(getattr(model, "stateless_rerank", True))
        entry = cache.get(key, stamp)
        if entry is not None and entry.cut and not _enough(entry.items, allowed, pool):
            entry = None  # this request's filters leave too few of the cut list: in full
        if entry is None:
            # from the lists: rebuilt per request (~0.1 ms), never cached -- the LRU would only
            # duplicate them, and a full one makes every garbage collection walk its entries
            entry = self._precomputed(snap, user, stamp, context_item, allowed, pool)
            if entry is None:
                ctx = self._pipeline_context(model, user, self._events(user, context_item))
                rc = model.ranked_candidates([ctx])[0]
                entry = _Candidates(
                    ctx, rc.items, rc.scores, rc.source_score, rc.source_rank, stamp
                )
                cache.put(key, entry)
        ctx = dataclasses.replace(entry.ctx, user=user) if anonymous else entry.ctx
        final = _final_of(entry, k, allowed, pool) if stateless else None
        if final is None:
            items, shown = model.final_list(ctx, entry.items, entry.scores, k, allowed)
        else:
            items, shown = final
        ids = model.items_.lookup(items)
        sources = tuple(model.stage_.sources)
        # explanations made before a user turned private may cite them: made anew
        hidden = self._hidden
        out = []
        for i, iid, sc in zip(items.tolist(), ids, shown.tolist(), strict=True):
            expl = None
            if explain:
                ready = entry.final_explained.get(i)
                if ready is not None and not anonymous:
                    # computed with the lists for this user and this displayed score
                    done = json.loads(ready)
                    if not hidden or not _cites(done.get("evidence", ()), hidden):
                        out.append(RecItem(str(iid), sc, {**done, "score": sc}))
                        continue
                base = entry.explained.get(i)
                if base is not None and hidden and _cites(base.to_dict()["evidence"], hidden):
                    base = None
                if base is None:
                    j = entry.position(i)
                    if j >= 0:
                        row_score, row_rank = entry.source_score[j], entry.source_rank[j]
                    else:  # backfill: no source proposed it
                        row_score = row_rank = np.full(len(sources), np.nan, np.float32)
                    base = model.explain_candidate(ctx, i, sources, row_score, row_rank, sc)
                    entry.explained[i] = base
                expl = dataclasses.replace(base, score=sc, user=user).to_dict()
            out.append(RecItem(str(iid), sc, expl))
        return out

    def _precomputed(
        self,
        snap: Snapshot,
        user: str,
        stamp: int,
        context_item: str | None,
        allowed: np.ndarray,
        pool: int,
    ) -> _Candidates | None:
        """The user's entry from the precomputed lists: only for a known user with no live
        state (their context is the fitted one the lists were ranked from) and no context item,
        and only when exact for this request (see `_enough`)."""
        holder = snap.lists
        if holder is None or holder.lists is None or stamp != 0 or context_item is not None:
            return None
        model: Any = snap.model
        u = model.users_.get(user)
        pre = holder.lists.get(u) if u >= 0 else None
        if pre is None or (pre.cut and not _enough(pre.items, allowed, pool)):
            return None
        ctx = model.user_contexts([user])[0]
        return _Candidates(
            ctx,
            pre.items,
            pre.scores,
            pre.source_score,
            pre.source_rank,
            stamp,
            cut=pre.cut,
            final=(pre.final_items, pre.final_scores),
            final_explained=pre.explanations,
        )

    def _pipeline_context(self, model: Any, user: str, events: list[tuple[str, float, str]]) -> Any:
        """The pipeline serves a `UserContext`: its fitted view of the user plus the live
        events (with their times and event types, so recent-history sources weigh them) and the
        live follows."""
        from serendip.data.dataset import EVENT_CODES
        from serendip.pipeline.context import dedupe_history

        ctx = model.user_contexts([user])[0]
        if events:
            idx = model.items_.indices([e[0] for e in events])
            ok = idx >= 0
            times = np.array([e[1] for e in events], np.float64)[ok]
            codes = np.array([EVENT_CODES.get(e[2], 0) for e in events], np.int8)[ok]
            items, times_all, codes_all = dedupe_history(
                np.concatenate([ctx.history, idx[ok]]),
                np.concatenate([ctx.history_time, times]),
                np.concatenate([ctx.history_event, codes]),
            )
            now = ctx.now
            if len(times) and np.isfinite(times).any():
                latest = float(np.nanmax(times))
                now = latest if not math.isfinite(now) else max(now, latest)
            ctx = dataclasses.replace(
                ctx, history=items, history_time=times_all, history_event=codes_all, now=now
            )
        followed, unfollowed = self.state.followees(user)
        if followed or unfollowed:
            fol = set(int(x) for x in ctx.followees)
            add = model.users_.indices(sorted(followed))
            drop = model.users_.indices(sorted(unfollowed))
            fol |= {int(x) for x in add if x >= 0}
            fol -= {int(x) for x in drop if x >= 0}
            ctx = dataclasses.replace(ctx, followees=np.array(sorted(fol), dtype=np.int64))
        return ctx

    def _items(
        self,
        snap: Snapshot,
        recs: RecLists,
        row: int,
        user: str,
        explain: bool,
        explainer: Callable[[str], dict[str, Any]],
    ) -> list[RecItem]:
        out = []
        for idx, sc in zip(recs.items[row], recs.scores[row], strict=True):
            if idx < 0:
                break
            item = snap.model.items_.id(int(idx))
            expl = None
            if explain:
                try:
                    expl = {**explainer(item), "score": float(sc)}  # the score served
                except SerendipError as exc:  # a model without explanations still serves
                    expl = {
                        "user": user,
                        "item": item,
                        "model": snap.model.name,
                        "text": "",
                        "evidence": [],
                        "error": str(exc),
                    }
            out.append(RecItem(item, float(sc), expl))
        return out

    def similar(self, item: str, k: int, *, snapshot: Snapshot | None = None) -> list[RecItem]:
        """The k items most like `item` (deleted items filtered; over-fetched to keep k)."""
        if k < 1:
            raise ConfigError(f"k must be at least 1, got {k}")
        snap = snapshot or self._active()
        deleted = self.state.deleted()
        if str(item) in deleted:
            raise SerendipError(f"item '{item}' was deleted")
        recs = snap.model.similar_items(str(item), k + len(deleted))
        out = [
            r
            for r in self._items(snap, recs, 0, "", False, _no_explanation)
            if r.item not in deleted
        ]
        return out[:k]

    def trending(
        self, k: int, category: str | None = None, *, snapshot: Snapshot | None = None
    ) -> list[RecItem]:
        """Most active items now: the model's training popularity (counted as one half-life
        old when the live events start, then decaying like them) plus the live event counts,
        decayed with `trending_half_life_s`. New catalog items enter as soon as they get events;
        deleted items never appear."""
        if k < 1:
            raise ConfigError(f"k must be at least 1, got {k}")
        snap = snapshot or self._active()
        model = snap.model
        live, clock, first = self.state.counts()
        deleted = self.state.deleted()
        updates = self.state.items()
        anchor = max(float(snap.metadata.get("live_clock_at_load", -math.inf)), first)
        age = max(0.0, clock - anchor) if math.isfinite(clock) and math.isfinite(anchor) else 0.0
        prior = 0.5 ** (1.0 + age / self.state.half_life_s)
        pop = np.asarray(model.popularity_, dtype=np.float64) * prior
        if category is not None:
            cat, _ = _item_columns(model, updates)
            pop = np.where(cat.astype(str) == str(category), pop, 0.0)
        scores: dict[str, float] = {}
        for i in np.argsort(-pop, kind="stable")[: k + len(deleted) + len(live)]:
            if pop[i] > 0:
                scores[model.items_.id(int(i))] = float(pop[i])
        for iid, c in live.items():
            if category is not None:
                info = updates.get(iid)
                j = model.items_.get(iid)
                c_cat = info.category if info else (str(model.item_category_[j]) if j >= 0 else "")
                if c_cat != str(category):
                    continue
            scores[iid] = scores.get(iid, 0.0) + c
        ranked = heapq.nsmallest(
            k, ((i, s) for i, s in scores.items() if i not in deleted), key=lambda x: (-x[1], x[0])
        )
        return [RecItem(i, s) for i, s in ranked]


def _item_columns(
    model: Recommender, updates: Mapping[str, _ItemInfo]
) -> tuple[np.ndarray, np.ndarray]:
    """Category and author of every model item, with live catalog updates applied."""
    cat = np.asarray(model.item_category_, dtype=object)
    auth = np.asarray(model.item_author_, dtype=object)
    if updates:
        idx = model.items_.indices(list(updates))
        if (idx >= 0).any():
            cat, auth = cat.copy(), auth.copy()
            for j, info in zip(idx, updates.values(), strict=True):
                if j >= 0:
                    cat[j], auth[j] = info.category, info.author
    return cat, auth


def _live_explanation(
    model: Recommender, user: str, item: str, live: Sequence[str]
) -> dict[str, Any]:
    """For a user the model never saw: the live history items most similar to `item` (where the
    model defines similarity), else the model's own cold-start explanation."""
    base = model.explain(user, item)
    i = model.items_.get(item)
    hist = model.items_.indices(list(dict.fromkeys(live)))
    hist = hist[hist >= 0]
    if i < 0 or len(hist) == 0:
        return base.to_dict()
    try:
        sims = np.asarray(model._similar(i), dtype=np.float64)[hist]
    except SerendipError:
        return base.to_dict()
    order = np.argsort(-sims, kind="stable")[:3]
    evidence = [
        Evidence("item", model.items_.id(int(hist[j])), float(sims[j]))
        for j in order
        if sims[j] > 0
    ]
    if not evidence:
        return base.to_dict()
    text = f"Because you interacted with {evidence[0].id}"
    return Explanation(user, item, model.name, base.score, tuple(evidence), text).to_dict()


def _newest_key(item: str, info: _ItemInfo) -> tuple[bool, float, str]:
    """Sort key: newest first, unknown creation time last, then by ID."""
    unknown = math.isnan(info.created_at)
    return unknown, 0.0 if unknown else -info.created_at, item


def _followed(model: Recommender, user: str, state: OnlineState) -> set[str]:
    """Whom `user` follows now: the model's fitted follow graph (`follow_`, users x users
    CSR, where the model keeps one -- the pipeline does) plus live follows minus live
    unfollows, as external IDs."""
    live, dropped = state.followees(user)
    fitted: set[str] = set()
    follow = getattr(model, "follow_", None)
    u = model.users_.get(user)
    if follow is not None and u >= 0 and hasattr(follow, "indptr"):
        row = follow.indices[follow.indptr[u] : follow.indptr[u + 1]]
        fitted = {str(x) for x in model.users_.lookup(row)}
    return (fitted | live) - dropped


def _interests(model: Recommender, user: str) -> tuple[str, ...]:
    """The user's declared interests where the model keeps them (the pipeline does)."""
    interests = getattr(model, "interests_", None)
    u = model.users_.get(user)
    if interests is None or u < 0:
        return ()
    return tuple(str(x) for x in (interests[u] or ()))


def _top_category(
    snap: Snapshot, user: str, events: Sequence[tuple[str, float, str]], index: _FreshIndex
) -> tuple[str, float] | None:
    """The most frequent category among the user's recent history items (the fitted history
    -- the pipeline's most recent `_RECENT_HISTORY`, a zoo model's training row -- plus the
    most recent live events) and its share of them; None without a categorised history."""
    model: Any = snap.model  # the pipeline's history arrays are duck-typed
    u = model.users_.get(user)
    hist: np.ndarray = np.zeros(0, np.int64)
    if u >= 0:
        indptr = getattr(model, "hist_indptr_", None)
        if indptr is not None:  # the pipeline: most recent first
            hist = model.hist_items_[indptr[u] : indptr[u + 1]][:_RECENT_HISTORY]
        else:
            train = model.train_
            hist = train.indices[train.indptr[u] : train.indptr[u + 1]]
    # a few dozen strings: a Counter beats numpy/pandas round trips at this size
    counts = Counter(str(c) for c in model.item_category_[np.asarray(hist, np.int64)].tolist())
    for item, _, _ in events[-_RECENT_HISTORY:]:
        j = model.items_.get(item)
        info = index.info.get(item)
        counts[str(model.item_category_[j]) if j >= 0 else (info.category if info else "")] += 1
    counts.pop("", None)  # missing categories are "" (see `Dataset`)
    if not counts:
        return None
    best = min(counts, key=lambda c: (-counts[c], c))  # ties: the first by name
    return best, counts[best] / sum(counts.values())


def _fresh_explanation(
    model: Recommender, user: str, item: str, score: float, route: str, key: str, weight: float
) -> dict[str, Any]:
    """Why a live item the model does not know is shown, structured like the pipeline's
    explanations (a source head, then the evidence)."""
    if route == "author":
        explainer = getattr(model, "explainer_", None)
        private = explainer is not None and bool(explainer.is_private(key))
        head = Evidence("source", "fresh-followed", 1.0, "new item")
        if private:  # the pipeline never names a private author either
            evidence: tuple[Evidence, ...] = (head,)
            text = "New from someone you follow"
        else:
            evidence = (head, Evidence("author", key, 1.0))
            text = f"New from {key}, whom you follow"
    elif route == "category":
        head = Evidence("source", "content", weight, "new item")
        evidence = (head, Evidence("category", key, weight, "share of your recent history"))
        text = f"New in {key}, which you often read"
    else:
        head = Evidence("source", "content", weight, "new item")
        evidence = (head, Evidence("interest", key, weight))
        text = f"New in {key}, one of your interests"
    return Explanation(user, item, model.name, score, evidence, text).to_dict()


def _no_explanation(item: str) -> dict[str, Any]:
    return {}


def _is_pipeline(model: Recommender) -> bool:
    return hasattr(model, "recommend_contexts") and hasattr(model, "user_contexts")


#: The pipeline's batch-serving API the cached path splits `recommend_contexts` at (the
#: expensive half: `ranked_candidates`; the cheap half: `final_list`; explanations:
#: `explain_candidate`). A pipeline without it is served uncached, through `recommend_contexts`.
_BATCH_API = ("ranked_candidates", "final_list", "explain_candidate", "rerank_pool", "stage_")


def _has_batch_api(model: Recommender) -> bool:
    return all(hasattr(model, name) for name in _BATCH_API)


def _final_of(
    entry: _Candidates, k: int, allowed: np.ndarray, pool: int
) -> tuple[np.ndarray, np.ndarray] | None:
    """The precomputed final list's first k items when they are this request's answer: k is
    within it and the request's mask removes none of the re-ranking pool nor of the list
    (then the pool, the greedy re-ranking and any backfill are the same; the list is greedy,
    so its first k are the k-item answer). None: compute it."""
    if entry.final is None:
        return None
    items, shown = entry.final
    if k > len(items) or (len(items) < k and entry.cut):
        return None
    if not (allowed[entry.items[:pool]].all() and allowed[items].all()):
        return None
    return items[:k], shown[:k]


def _cites(evidence: Iterable[Mapping[str, Any]], users: frozenset[str]) -> bool:
    """Does this evidence (explanation dicts' entries) cite any of `users`?"""
    return any(
        ev.get("kind") in ("followee", "user", "author") and str(ev.get("id")) in users
        for ev in evidence
    )


def _enough(items: np.ndarray, allowed: np.ndarray, pool: int) -> bool:
    """Does a cut candidate list still hold a full re-ranking pool under this request's mask?
    Then the pool -- the best allowed candidates by score -- is the same as the full list's,
    and so is the final list."""
    return int(np.count_nonzero(allowed[items])) >= pool


#: background list builds of this process: stopped and joined at exit, since a daemon thread
#: frozen inside native code (LightGBM) at interpreter shutdown aborts the process
_BUILDS: list[tuple[threading.Thread, ListsHolder]] = []


@atexit.register
def _stop_builds() -> None:
    for _, holder in _BUILDS:
        holder.stop()
    for thread, _ in _BUILDS:
        thread.join(timeout=30.0)


def _freeze_heap() -> None:
    """Collect, then freeze every object alive now (the model, the app) into the GC's permanent
    generation. A full collection walks every tracked object -- tens of milliseconds with a
    platform-size model loaded -- and stalls every request in flight; frozen, the long-lived
    heap is never walked again and a collection only sees what requests allocate. Unfreezing
    first lets the collection free a swapped-out version's cycles."""
    import gc

    gc.unfreeze()
    gc.collect()
    gc.freeze()
