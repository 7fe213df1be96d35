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


def test_the_server_runs_the_schedule_from_its_start(sqlite_store: Store, tmp_path: Path) -> None:
    from fastapi.testclient import TestClient

    from serendip.service.app import create_app

    now = time.time()
    sqlite_store.events.add_batch([EventIn("stale", "a", "i1", "like", now - 90 * 86_400)])
    settings = Settings(
        db_url=sqlite_store.url, artifacts_dir=tmp_path / "a", retention_days=30, bootstrap=False
    )
    with TestClient(create_app(settings, store=sqlite_store)):
        deadline = time.monotonic() + 10
        while sqlite_store.events.get("stale") is not None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert sqlite_store.events.get("stale") is None
    # a worker that does not lead (`serve --workers`) leaves the purge to worker 0
    sqlite_store.events.add_batch([EventIn("stale-2", "a", "i1", "like", now - 90 * 86_400)])
    follower = settings.model_copy(update={"workers": 2, "worker_index": 1})
    with TestClient(create_app(follower, store=sqlite_store)):
        time.sleep(0.5)
        assert sqlite_store.events.get("stale-2") is not None
