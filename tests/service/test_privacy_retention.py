"""The server's retention schedule purges at once and then on its period."""

from __future__ import annotations

import time
from pathlib import Path

from serendip.service.privacy import make_context, start_retention
from serendip.service.settings import Settings
from serendip.store import EventIn, Store


def test_the_schedule_purges_events_older_than_the_window(
    sqlite_store: Store, tmp_path: Path
) -> None:
    now = time.time()
    sqlite_store.events.add_batch(
        [
            EventIn("old", "a", "i1", "like", now - 40 * 86_400),
            EventIn("new", "a", "i1", "like", now - 86_400),
        ]
    )
    off = make_context(Settings(artifacts_dir=tmp_path / "a"), sqlite_store)
    assert start_retention(off) is None  # no window: nothing scheduled
    ctx = make_context(Settings(artifacts_dir=tmp_path / "a", retention_days=30), sqlite_store)
    schedule = start_retention(ctx)
    assert schedule is not None and start_retention(ctx) is schedule  # once per server
    deadline = time.monotonic() + 10
    while schedule.last is None and time.monotonic() < deadline:
        time.sleep(0.01)
    schedule.stop()
    assert schedule.last is not None and schedule.last.events == 1
    assert sqlite_store.events.get("old") is None and sqlite_store.events.get("new") is not None
