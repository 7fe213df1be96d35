"""Values made once per key while a scope is open: the same derived data asked for by several
parts of one job (a fit, a load) is computed once and shared, then dropped with the scope."""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

__all__ = ["ScopedCache"]

T = TypeVar("T")


class ScopedCache:
    """Per thread: inside `scope()` (nested scopes share the outermost's entries), `get` makes
    each key's value once; outside any scope it makes it every time. Keys may name objects by
    `id()`: `get`'s `hold` keeps them alive with the entry, so an id cannot be reused."""

    def __init__(self) -> None:
        self._local = threading.local()

    @contextmanager
    def scope(self) -> Iterator[None]:
        outer = getattr(self._local, "entries", None)
        if outer is None:
            self._local.entries = {}
        try:
            yield
        finally:
            if outer is None:
                self._local.entries = None

    def get(self, key: Hashable, make: Callable[[], T], *hold: object) -> T:
        entries: dict[Hashable, tuple[tuple[object, ...], Any]] | None = getattr(
            self._local, "entries", None
        )
        if entries is None:
            return make()
        if key not in entries:
            entries[key] = (hold, make())
        value: T = entries[key][1]
        return value
