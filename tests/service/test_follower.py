"""Several servers on one store see each other's writes (issue 17.2): in process (two apps, two
runtimes, one store) and as two real `serendip serve` processes."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from serendip.service.app import create_app
from serendip.service.follower import StoreFollower
from serendip.service.process import ServeProcess
from serendip.service.runtime import ModelRuntime
from serendip.service.settings import Settings
from serendip.store import Store


def _prepared(store: Store, toy_platform: Any, model_dir: Path) -> Store:
    store.import_dataset(toy_platform)
    store.models.register("item-knn", str(model_dir), {}, version="v1")
    store.models.activate("v1")
    return store


def _server(store: Store, model_dir: Path) -> TestClient:
    runtime = ModelRuntime(store)
    runtime.load(model_dir, "v1")
    settings = Settings(db_url=store.url, bootstrap=False, follow_store_s=0.05)
    return TestClient(create_app(settings, store=store, runtime=runtime))


def _follower(client: TestClient) -> StoreFollower:
    deadline = time.monotonic() + 10
    while (f := client.app.state.follower) is None:  # type: ignore[attr-defined]
        assert time.monotonic() < deadline, "the follower did not start"
        time.sleep(0.02)
    assert isinstance(f, StoreFollower)
    return f


def _items(get: Callable[..., Any], path: str, k: int = 100) -> list[str]:
    r = get(path, params={"k": k})
    assert r.status_code == 200, r.text
    return [x["item"] for x in r.json()["items"]]


def _eventually(check: Callable[[], bool], timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.05)
    return check()


def test_two_servers_on_one_store_see_each_others_writes(
    store: Store, toy_platform: Any, model_dirs: dict[str, Path]
) -> None:
    _prepared(store, toy_platform, model_dirs["item-knn"])
    user = str(toy_platform.users.ids[0])
    path = f"/v1/users/{user}/recommendations"
    with _server(store, model_dirs["item-knn"]) as a, _server(store, model_dirs["item-knn"]) as b:
        fa, fb = _follower(a), _follower(b)
        top = _items(b.get, path)[0]
        ev = {"event_id": "f-1", "user": user, "item": top, "event": "like"}
        assert a.post("/v1/events", json=ev).json()["accepted"] == 1
        # b applies a's event within a polling interval: the liked item is seen there too
        assert _eventually(lambda: top not in _items(b.get, path))
        # ... and a does not apply its own event a second time
        assert fa.poll_once().events == 0
        history = b.app.state.runtime.state.history(user)  # type: ignore[attr-defined]
        assert [item for item, _, _ in history].count(top) == 1
        # a deletion through b disappears from a's lists
        victim = _items(a.get, path)[0]
        assert b.post("/v1/items/delete", json={"items": [victim]}).status_code == 200
        assert _eventually(lambda: victim not in _items(a.get, path))
        # a follow through a reaches b's live graph
        other = str(toy_platform.users.ids[5])
        assert a.put(f"/v1/users/{user}/follows/{other}").status_code in (200, 201, 204)
        assert _eventually(lambda: other in b.app.state.runtime.state.followees(user)[0])  # type: ignore[attr-defined]
        assert fb.poll_once().total == 0  # everything applied once


def test_a_follower_starts_at_the_end_of_the_store(
    sqlite_store: Store, toy_platform: Any, model_dirs: dict[str, Path]
) -> None:
    # the import (training data) and the events before the start are not live events
    _prepared(sqlite_store, toy_platform, model_dirs["item-knn"])
    runtime = ModelRuntime(sqlite_store)
    follower = StoreFollower(sqlite_store, runtime)
    assert follower.poll_once().events == 0
    from serendip.store import EventIn

    sqlite_store.events.add_batch([EventIn("late", "u-x", "i-y", "like", time.time(), None)])
    assert follower.poll_once().events == 1
    assert follower.poll_once().events == 0


@pytest.mark.slow
def test_two_serve_processes_on_one_store_see_each_others_events(
    db_url: str, tmp_path: Path, toy_platform: Any, model_dirs: dict[str, Path]
) -> None:
    store = Store.open(db_url)
    try:
        _prepared(store, toy_platform, model_dirs["item-knn"])
    finally:
        store.close()
    env = {"SERENDIP_BOOTSTRAP": "false", "SERENDIP_FOLLOW_STORE_S": "0.2"}
    servers = [ServeProcess(db_url, tmp_path, env) for _ in range(2)]
    try:
        for s in servers:
            s.wait("/readyz", 120)
        a, b = servers
        user = str(toy_platform.users.ids[2])
        path = f"/v1/users/{user}/recommendations"
        with httpx.Client(timeout=10) as http:

            def get_b(p: str, params: dict[str, Any]) -> httpx.Response:
                return http.get(b.url + p, params=params)

            time.sleep(0.5)  # both followers have started
            top = _items(get_b, path)[0]
            ev = {"event_id": "proc-1", "user": user, "item": top, "event": "like"}
            assert http.post(a.url + "/v1/events", json=ev).json()["accepted"] == 1
            assert _eventually(lambda: top not in _items(get_b, path), timeout=15)
    finally:
        for s in servers:
            s.stop()


def _private_server(store: Store, model_dir: Path, artifacts: Path) -> TestClient:
    # one artifacts directory: one installation's erasure key, as behind a load balancer
    runtime = ModelRuntime(store)
    runtime.load(model_dir, "v1")
    settings = Settings(
        db_url=store.url, bootstrap=False, follow_store_s=0.05, artifacts_dir=artifacts
    )
    return TestClient(create_app(settings, store=store, runtime=runtime))


def test_consent_and_erasure_through_one_server_reach_the_others_live_state(
    store: Store, toy_platform: Any, model_dirs: dict[str, Path], tmp_path: Path
) -> None:
    _prepared(store, toy_platform, model_dirs["item-knn"])
    model = model_dirs["item-knn"]
    user, erased = (str(u) for u in toy_platform.users.ids[3:5])
    with (
        _private_server(store, model, tmp_path) as a,
        _private_server(store, model, tmp_path) as b,
    ):
        fb = _follower(b)
        runtime_b: ModelRuntime = b.app.state.runtime  # type: ignore[attr-defined]
        personal = _items(b.get, f"/v1/users/{user}/recommendations", 10)
        trending = _items(b.get, "/v1/trending", 10)
        assert personal != trending
        # personalization off through a: b serves the user the non-personalized list
        r = a.put(f"/v1/users/{user}/consent", json={"personalization": False})
        assert r.status_code == 200, r.text
        assert _eventually(lambda: not runtime_b.personalized(user))
        assert _items(b.get, f"/v1/users/{user}/recommendations", 10) == trending
        # activity for others off: b stops counting the user's events for anyone else
        a.put(f"/v1/users/{user}/consent", json={"activity_for_others": False})
        assert _eventually(lambda: user in runtime_b.state.withheld())
        # an erasure through a: b forgets the user's live events and hides them in its model
        liked = _items(b.get, f"/v1/users/{erased}/recommendations", 5)[0]
        ev = {"event_id": "erase-1", "user": erased, "item": liked, "event": "like"}
        assert b.post("/v1/events", json=ev).json()["accepted"] == 1
        assert runtime_b.state.history(erased)
        assert a.delete(f"/v1/users/{erased}", params={"refit": False}).status_code == 200
        assert _eventually(lambda: not runtime_b.state.history(erased))
        assert runtime_b.state.private_flags().get(erased) is True
        assert fb.poll_once().total == 0  # each change applied once


def test_a_follower_without_the_erasure_key_leaves_erasures_to_the_restart(
    sqlite_store: Store, toy_platform: Any, model_dirs: dict[str, Path]
) -> None:
    _prepared(sqlite_store, toy_platform, model_dirs["item-knn"])
    runtime = ModelRuntime(sqlite_store)
    runtime.load(model_dirs["item-knn"], "v1")
    user = str(toy_platform.users.ids[1])
    subject = "key:" + user
    follower = StoreFollower(sqlite_store, runtime, subject=lambda u: "key:" + u)
    blind = StoreFollower(sqlite_store, ModelRuntime(sqlite_store))
    sqlite_store.erasures.record(subject, {})
    assert user in runtime.known_users()  # a model user, though the live state never saw them
    assert follower.poll_once().erased == 1
    assert runtime.state.private_flags()[user] is True
    assert runtime.state.user_version(user) > 0  # cached and precomputed lists dropped
    assert blind.poll_once().erased == 0
    assert follower.poll_once().erased == 0  # once
