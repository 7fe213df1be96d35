"""String IDs outside, dense integers inside.

A `Vocabulary` is an immutable, ordered set of external string IDs; position = dense index.
Lookups are vectorised through a pandas `Index` hash table, so mapping 20M IDs is one call.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable, Sequence
from contextlib import AbstractContextManager
from typing import Any

import numpy as np
import pandas as pd

from serendip.errors import DataError
from serendip.scoped import ScopedCache

__all__ = ["Vocabulary", "shared_vocabularies"]

#: inside `shared_vocabularies`: one vocabulary per distinct ID array
_SHARED = ScopedCache()


def shared_vocabularies() -> AbstractContextManager[None]:
    """Within this block `Vocabulary.shared` builds one vocabulary per distinct ID array. A
    saved pipeline holds the same user and item IDs once per source (and its inner models):
    loading it built the same 1M-item hash table a dozen times. Dropped when the outermost
    block ends."""
    return _SHARED.scope()


class Vocabulary:
    """Ordered, unique string IDs with O(1) id <-> index lookups.

    >>> v = Vocabulary(["u1", "u2"])
    >>> v.index("u2"), v.id(0), len(v)
    (1, 'u1', 2)
    >>> v.indices(["u2", "nope"]).tolist()
    [1, -1]
    """

    __slots__ = ("_index",)

    def __init__(self, ids: Iterable[Any]) -> None:
        arr = np.asarray(list(ids) if not isinstance(ids, (np.ndarray, pd.Index)) else ids)
        index = pd.Index(arr.astype(str) if arr.size else np.array([], dtype=object), dtype=object)
        if not index.is_unique:
            dup = index[index.duplicated()][0]
            raise DataError(f"duplicate ID '{dup}' in vocabulary")
        self._index = index

    @classmethod
    def from_unique(cls, ids: Sequence[Any] | np.ndarray | pd.Index) -> Vocabulary:
        """Build from IDs already known to be unique strings (skips the copy to list)."""
        return cls(pd.Index(np.asarray(ids, dtype=object).astype(str), dtype=object))

    @classmethod
    def shared(cls, ids: np.ndarray) -> Vocabulary:
        """`from_unique(ids)`, or within `shared_vocabularies` the vocabulary of an equal array
        built before (found by a checksum of its bytes, confirmed by comparing the arrays)."""
        arr = np.ascontiguousarray(ids)
        if arr.dtype == object:
            arr = arr.astype(str)
        key = ("vocabulary", arr.dtype.str, arr.shape, zlib.crc32(arr.view(np.uint8).data))
        raw, vocab = _SHARED.get(key, lambda: (arr, cls.from_unique(arr)))
        return vocab if raw is arr or np.array_equal(raw, arr) else cls.from_unique(arr)

    def __len__(self) -> int:
        return len(self._index)

    def __contains__(self, item: object) -> bool:
        return item in self._index

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(self._index)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Vocabulary) and self._index.equals(other._index)

    def __hash__(self) -> int:
        return hash((len(self), tuple(self._index[:16])))

    def __repr__(self) -> str:
        head = ", ".join(map(repr, self._index[:3]))
        return f"Vocabulary({len(self)} ids: {head}{', ...' if len(self) > 3 else ''})"

    @property
    def ids(self) -> np.ndarray:
        """All IDs as an object array of str; position = dense index."""
        return self._index.to_numpy()

    def id(self, index: int) -> str:
        return str(self._index[index])

    def index(self, id_: str) -> int:
        """Dense index of one ID; raises `KeyError` for an unknown one."""
        return int(self._index.get_loc(str(id_)))  # type: ignore[arg-type]

    def get(self, id_: str, default: int = -1) -> int:
        try:
            return self.index(id_)
        except KeyError:
            return default

    def indices(self, ids: Iterable[Any]) -> np.ndarray:
        """Vectorised lookup; unknown IDs map to -1 (int64)."""
        arr = np.asarray(ids if isinstance(ids, (np.ndarray, pd.Index, pd.Series)) else list(ids))
        if arr.size == 0:
            return np.zeros(0, dtype=np.int64)
        # an object-dtype target: from a bare array, pandas infers its own string dtype and
        # compares across dtypes, several times slower (docs/research-log.md)
        target = pd.Index(arr.astype(str), dtype=object)
        return self._index.get_indexer(target).astype(np.int64)

    def lookup(self, indices: Iterable[int] | np.ndarray) -> np.ndarray:
        """IDs of dense indices (object array of str)."""
        return self.ids[np.asarray(indices, dtype=np.int64)]

    def to_list(self) -> list[str]:
        return [str(x) for x in self._index]

    def extend(self, ids: Iterable[Any]) -> Vocabulary:
        """A new vocabulary with unseen IDs appended (existing indices stay stable)."""
        new = pd.Index(np.asarray(list(ids), dtype=object).astype(str), dtype=object)
        new = new[~new.isin(self._index)].unique()
        if len(new) == 0:
            return self
        return Vocabulary(self._index.append(new))
