"""`ScopedCache`: made once per key inside a scope, every time outside, per thread."""

from __future__ import annotations

import threading

from serendip.scoped import ScopedCache


def test_values_are_made_once_per_key_inside_a_scope_only() -> None:
    cache = ScopedCache()
    made: list[str] = []

    def make(key: str) -> object:
        made.append(key)
        return object()

    assert cache.get("a", lambda: make("a")) is not cache.get("a", lambda: make("a"))
    assert made == ["a", "a"]  # no scope: made each time
    with cache.scope():
        first = cache.get("a", lambda: make("a"))
        with cache.scope():  # nested: the outermost scope's entries
            assert cache.get("a", lambda: make("a")) is first
        assert cache.get("a", lambda: make("a")) is first
        assert cache.get("b", lambda: make("b")) is not first
    assert made == ["a", "a", "a", "b"]
    assert cache.get("a", lambda: make("a")) is not first  # dropped with the scope


def test_held_objects_live_with_their_entry_and_threads_do_not_share() -> None:
    cache = ScopedCache()
    seen: list[object] = []
    with cache.scope():
        held = [1, 2, 3]
        cache.get(("sum", id(held)), lambda: sum(held), held)
        entries = cache._local.entries
        assert next(iter(entries.values()))[0] == (held,)

        def other() -> None:  # another thread has no scope open: made anew
            seen.append(cache.get("k", object))
            seen.append(cache.get("k", object))

        t = threading.Thread(target=other)
        t.start()
        t.join()
    assert seen[0] is not seen[1]
