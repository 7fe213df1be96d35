"""Redis change notices (issue 17.2): a write on one server wakes the others' followers at once;
without Redis they poll the store as before."""

from __future__ import annotations

import logging
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from serendip.service.app import create_app
from serendip.service.notices import ChangeNotices, channel_for
from serendip.service.runtime import ModelRuntime
from serendip.service.settings import Settings
from serendip.store import Store

REDIS = "redis://127.0.0.1:6379/0"


def _redis_up() -> bool:
    import redis

    try:
        return bool(redis.Redis.from_url(REDIS, socket_connect_timeout=1).ping())
    except redis.RedisError:
        return False


needs_redis = pytest.mark.skipif(not _redis_up(), reason="no Redis on 127.0.0.1:6379")


@needs_redis
def test_a_notice_wakes_the_other_processes_not_the_sender() -> None:
    channel = "serendip:test:" + uuid.uuid4().hex
    a, b = ChangeNotices(REDIS, channel), ChangeNotices(REDIS, channel)
    try:
        time.sleep(0.3)  # both subscribed
        a.changed()
        assert b.wait(5.0)
        assert not a.wait(0.3)  # its own notice does not wake the sender
        assert (a.published, b.received) == (1, 1)
        assert not b.wait(0.2)  # one notice, one wake-up
    finally:
        a.close()
        b.close()


def test_without_redis_nothing_fails_and_the_log_says_so(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, "serendip.service")
    notices = ChangeNotices("redis://127.0.0.1:1/0", "serendip:test:none")
    try:
        notices.changed()  # never raises, never blocks
        assert not notices.wait(0.5)
        assert any("unreachable" in r.getMessage() for r in caplog.records)
    finally:
        notices.close()


def test_servers_on_one_store_share_a_channel_per_store() -> None:
    assert channel_for("sqlite:///a.db") == channel_for("sqlite:///a.db")
    assert channel_for("sqlite:///a.db") != channel_for("sqlite:///b.db")


@needs_redis
def test_an_event_reaches_the_other_server_before_its_next_regular_look(
    sqlite_store: Store, toy_platform: Any, model_dirs: dict[str, Path]
) -> None:
    sqlite_store.import_dataset(toy_platform)
    sqlite_store.models.register("item-knn", str(model_dirs["item-knn"]), {}, version="v1")
    sqlite_store.models.activate("v1")

    def server() -> TestClient:
        runtime = ModelRuntime(sqlite_store)
        runtime.load(model_dirs["item-knn"], "v1")
        # a 60 s polling interval: only the notice can bring the event within the test
        settings = Settings(
            db_url=sqlite_store.url, bootstrap=False, follow_store_s=60, redis_url=REDIS
        )
        return TestClient(create_app(settings, store=sqlite_store, runtime=runtime))

    user = str(toy_platform.users.ids[4])
    with server() as a, server() as b:
        runtime_b: ModelRuntime = b.app.state.runtime  # type: ignore[attr-defined]
        deadline = time.monotonic() + 10
        while b.app.state.follower is None:  # type: ignore[attr-defined]
            assert time.monotonic() < deadline
            time.sleep(0.05)
        time.sleep(0.5)  # subscribed
        item = str(toy_platform.items.ids[7])
        ev = {"event_id": "n-1", "user": user, "item": item, "event": "like"}
        start = time.monotonic()
        assert a.post("/v1/events", json=ev).json()["accepted"] == 1
        while not any(i == item for i, _, _ in runtime_b.state.history(user)):
            assert time.monotonic() - start < 10, "the notice did not wake b's follower"
            time.sleep(0.02)
        assert time.monotonic() - start < 10  # against the 60 s interval
