"""Per-snapshot serving caches: each user's ranked candidates (the expensive half of a
request), the catalog mask of deleted items, factorized catalog columns, live catalog updates
and the live catalog index, each stamped with the state version it was computed from."""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from serendip.errors import ConfigError
from serendip.models.base import Explanation, ModelConfig, Recommender
from serendip.serving.context import UserContext
from serendip.serving.contract import RankedCandidates
from serendip.serving.fresh import FreshIndex

__all__ = ["CachedCandidates", "CatalogColumn", "CatalogUpdates", "SnapshotCache"]


@dataclass(slots=True, eq=False)
class CachedCandidates:
    """One user's scored candidates from the pipeline's expensive half (sources, merge,
    features, ranker) -- a pure function of the snapshot and the user's context, so it stays
    valid until the user's live state changes (`stamp`). The cheap half (filters, re-ranking,
    backfill) runs on every request, which keeps filters exact and immediate.
    Explanations are computed for returned items only, once each (they do not depend on the
    score shown, which is set per request). `cut`: the candidates are the precomputed best
    `depth` only (`serendip.serving.precompute`), exact while a request leaves at least the
    re-ranking pool of them allowed."""

    ctx: UserContext  # the user's context with the live history and follows merged in
    ranked: RankedCandidates  # best score first, with per-source scores and ranks
    stamp: int  # OnlineState.user_version when the context was read
    cut: bool = False
    explained: dict[int, Explanation] = field(default_factory=dict)
    #: from the precomputed lists: the unfiltered request's final list and explanations (JSON)
    final: tuple[np.ndarray, np.ndarray] | None = None
    final_explained: dict[int, bytes] = field(default_factory=dict)
    row: dict[int, int] = field(default_factory=dict)  # item -> position, filled on demand

    @property
    def items(self) -> np.ndarray:
        return self.ranked.items

    def position(self, item: int) -> int:
        """Row of `item` in the candidates (-1: not a candidate, e.g. a backfilled item)."""
        if not self.row:
            self.row.update((int(i), j) for j, i in enumerate(self.items.tolist()))
        return self.row.get(int(item), -1)


@dataclass(frozen=True, slots=True, eq=False)
class CatalogColumn:
    """A catalog column (category or author) as integer codes into its distinct values, so a
    filter is one table lookup per item rather than a string comparison."""

    codes: np.ndarray  # int64 per item, -1 missing
    names: pd.Index

    @classmethod
    def build(cls, values: np.ndarray) -> CatalogColumn:
        codes, names = pd.factorize(np.asarray(values, dtype=object))
        return cls(np.asarray(codes, np.int64), pd.Index(names))

    def member(self, wanted: set[str]) -> np.ndarray:
        """Bool per item: its value is in `wanted` (a fresh, writable array)."""
        lut = np.append(np.asarray(self.names.isin(list(wanted)), dtype=bool), False)
        member: np.ndarray = lut[self.codes]  # code -1 reads the trailing False
        return member


@dataclass(frozen=True, slots=True, eq=False)
class CatalogUpdates:
    """Live catalog updates of the snapshot's items (model indices with their new category and
    author), stamped with the catalog version they were read at."""

    version: int
    idx: np.ndarray
    category: np.ndarray
    author: np.ndarray


class SnapshotCache:
    """Serving caches of one snapshot: a bounded LRU of per-user candidates (`CachedCandidates`, keyed
    by user and context item) and the catalog mask of deleted items (stamped with the live
    catalog version). Thread-safe; every operation is O(1) under one short lock.

    capacity: most users kept (0 disables the candidate cache). An entry holds the user's
    candidates with per-source scores and ranks, their context and the explanations served:
    tens of KB on the `small` preset, so size the capacity in hundreds of MB per 10,000 users."""

    def __init__(self, capacity: int) -> None:
        if capacity < 0:
            raise ConfigError(f"cache capacity must be at least 0, got {capacity}")
        self.capacity = capacity
        self._lock = threading.Lock()
        self._entries: OrderedDict[tuple[str, str | None], CachedCandidates] = OrderedDict()
        self.hits = 0
        self.misses = 0
        #: requests per path: "hit" (this cache), "precomputed" (the lists as saved),
        #: "incremental" (the lists updated with live state), "full" (the whole pipeline)
        self.paths: dict[str, int] = {}
        self._mask: tuple[int, np.ndarray] | None = None
        self._columns: tuple[CatalogColumn, CatalogColumn] | None = None
        self._updates: CatalogUpdates | None = None
        self._fresh: FreshIndex | None = None

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: tuple[str, str | None], stamp: int) -> CachedCandidates | None:
        """The entry if present and computed from the user's current live state."""
        with self._lock:
            entry = self._entries.get(key)
            if entry is None or entry.stamp != stamp:
                self.misses += 1
                return None
            self._entries.move_to_end(key)
            self.hits += 1
            return entry

    def put(self, key: tuple[str, str | None], entry: CachedCandidates) -> None:
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

    def columns(self, model: Recommender[ModelConfig]) -> tuple[CatalogColumn, CatalogColumn]:
        """Category and author columns of the fitted catalog, factorized once per snapshot."""
        cols = self._columns
        if cols is None:
            cols = self._columns = (
                CatalogColumn.build(model.item_category_),
                CatalogColumn.build(model.item_author_),
            )
        return cols

    def updates(self, version: int) -> CatalogUpdates | None:
        upd = self._updates
        return upd if upd is not None and upd.version == version else None

    def set_updates(self, upd: CatalogUpdates) -> None:
        self._updates = upd

    def fresh(self) -> FreshIndex | None:
        """The latest live catalog index (of any catalog version: the caller checks)."""
        return self._fresh

    def set_fresh(self, index: FreshIndex) -> None:
        self._fresh = index

    def deleted_mask(self, version: int) -> np.ndarray | None:
        mask = self._mask
        return mask[1] if mask is not None and mask[0] == version else None

    def set_deleted_mask(self, version: int, mask: np.ndarray) -> None:
        mask.flags.writeable = False  # shared by concurrent requests: copy before changing
        self._mask = (version, mask)

    def count(self, path: str) -> None:
        """Count one request served by `path` (approximate under concurrency: statistics)."""
        self.paths[path] = self.paths.get(path, 0) + 1

    def stats(self) -> dict[str, int]:
        return {
            "entries": len(self._entries),
            "capacity": self.capacity,
            "hits": self.hits,
            "misses": self.misses,
        }
