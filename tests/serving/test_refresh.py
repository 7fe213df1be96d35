"""`LiveRefresher`: live users' lists updated off the request path, coalesced, and kept to a
share of one core so a burst of events does not starve ingestion and requests."""

from __future__ import annotations

import threading
import time

import pytest

from serendip.errors import ConfigError
from serendip.serving.refresh import LiveRefresher


def _busy(seconds: float) -> None:
    end = time.thread_time() + seconds
    while time.thread_time() < end:
        pass


def test_pending_users_are_updated_once_each() -> None:
    seen: list[str] = []
    gate = threading.Event()

    def update(user: str) -> None:
        gate.wait(5)
        seen.append(user)

    r = LiveRefresher(update)
    try:
        r.submit(["a"])
        r.submit(["b", "c", "b", "c"])  # while "a" runs: b and c coalesced
        gate.set()
        assert r.drain(10)
        assert seen == ["a", "b", "c"] and r.done == 3
    finally:
        r.stop()


def test_the_updates_keep_to_their_share_of_a_core() -> None:
    r = LiveRefresher(lambda user: _busy(0.02), max_share=0.25)
    try:
        start = time.perf_counter()
        r.submit([str(i) for i in range(10)])
        assert r.drain(30)
        wall = time.perf_counter() - start
        # 10 x 20 ms of work at a quarter of a core: about 0.8 s, never the 0.2 s it would be
        assert wall >= 0.6, wall
    finally:
        r.stop()


def test_a_stop_ends_a_pause_at_once() -> None:
    r = LiveRefresher(lambda user: _busy(0.05), max_share=0.01)  # a 5 s pause after each
    r.submit(["a", "b"])
    time.sleep(0.2)
    start = time.perf_counter()
    r.stop()
    assert time.perf_counter() - start < 2.0


def test_the_share_must_be_a_fraction_of_a_core() -> None:
    with pytest.raises(ConfigError, match="max_share"):
        LiveRefresher(lambda user: None, max_share=0)


def test_the_idle_hook_runs_when_the_queue_empties() -> None:
    idle = threading.Event()
    r = LiveRefresher(lambda user: None, on_idle=idle.set)
    try:
        r.submit(["a", "b"])
        assert r.drain(10)
        assert idle.wait(5)  # the server freezes the updates' survivors out of the GC's sight
    finally:
        r.stop()
