"""Behaviour with the real `ModelRuntime`: an event changes the next recommendations, a deleted
item vanishes everywhere, a failed version leaves the old one serving, and a hot swap under
concurrent requests fails none of them."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from serendip.service.app import create_app
from serendip.store import Store
from tests.service.conftest import ClientFactory, wait_ready


@pytest.fixture
def live(store: Store, real_runtime: Any, make_client: ClientFactory) -> TestClient:
    return make_client(store, real_runtime)


def _items(client: TestClient, path: str, **params: Any) -> list[str]:
    r = client.get(path, params=params)
    assert r.status_code == 200, r.text
    return [x["item"] for x in r.json()["items"]]


def test_event_changes_next_recommendations(live: TestClient, toy_platform: Any) -> None:
    user = str(toy_platform.users.ids[0])
    top = _items(live, f"/v1/users/{user}/recommendations", k=5)[0]
    ev = {"event_id": "rt-1", "user": user, "item": top, "event": "like", "timestamp": time.time()}
    assert live.post("/v1/events", json=ev).json()["accepted"] == 1
    assert top not in _items(live, f"/v1/users/{user}/recommendations", k=50)


def test_cold_user_gets_recommendations_with_reasons(live: TestClient, toy_platform: Any) -> None:
    r = live.get("/v1/users/brand-new/recommendations", params={"k": 5, "explain": True})
    assert r.status_code == 200 and len(r.json()["items"]) == 5
    assert all(x["explanation"] is not None for x in r.json()["items"])
    item = str(toy_platform.items.ids[3])
    live.post(
        "/v1/events", json={"event_id": "c1", "user": "brand-new", "item": item, "event": "like"}
    )
    assert item not in _items(live, "/v1/users/brand-new/recommendations", k=50)


def test_deleted_item_disappears_everywhere(live: TestClient, toy_platform: Any) -> None:
    user = str(toy_platform.users.ids[1])
    recs = _items(live, f"/v1/users/{user}/recommendations", k=5)
    trending = _items(live, "/v1/trending", k=5)
    victims = [recs[0], trending[0]]
    similar_to = recs[1]
    sim = _items(live, f"/v1/items/{similar_to}/similar", k=5)
    victims.append(sim[0])
    assert live.post("/v1/items/delete", json={"items": victims}).status_code == 200
    assert not set(victims) & set(_items(live, f"/v1/users/{user}/recommendations", k=100))
    assert not set(victims) & set(_items(live, "/v1/trending", k=100))
    assert not set(victims) & set(_items(live, f"/v1/items/{similar_to}/similar", k=100))
    assert live.get(f"/v1/items/{victims[0]}/similar").status_code == 404


def test_new_item_is_recommendable_once_it_gets_events(live: TestClient) -> None:
    item = {"item": "fresh-1", "title": "new", "category": "cat0", "author": "u001"}
    assert live.post("/v1/items", json={"items": [item]}).status_code == 200
    events = [
        {"event_id": f"f{i}", "user": f"u{i:03d}", "item": "fresh-1", "event": "share"}
        for i in range(30)
    ]
    live.post("/v1/events/batch", json={"events": events})
    assert _items(live, "/v1/trending", k=3)[0] == "fresh-1"
    assert "fresh-1" in _items(live, "/v1/trending", k=3, category="cat0")


def test_failed_version_keeps_the_old_one(
    live: TestClient, store: Store, tmp_path: Path, toy_platform: Any
) -> None:
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "manifest.json").write_text("{not json")
    v = store.models.register("item-knn", str(broken)).version
    r = live.post(f"/v1/models/{v}/activate")
    assert r.status_code == 409 and "keeps serving" in r.json()["detail"]
    assert live.get("/readyz").json()["model_version"] == "v1"
    user = str(toy_platform.users.ids[0])
    assert live.get(f"/v1/users/{user}/recommendations").status_code == 200


def test_hot_swap_under_concurrent_requests(
    sqlite_store: Store,
    real_runtime: Any,
    make_client: ClientFactory,
    model_dirs: dict[str, Path],
    toy_platform: Any,
) -> None:
    client = make_client(sqlite_store, real_runtime)
    a = sqlite_store.models.register("item-knn", str(model_dirs["item-knn"])).version
    b = sqlite_store.models.register("popularity", str(model_dirs["popularity"])).version
    users = [str(u) for u in toy_platform.users.ids[:20]]
    stop = threading.Event()
    statuses: list[int] = []
    versions: set[str] = set()

    def hammer(offset: int) -> None:
        i = offset
        while not stop.is_set():
            r = client.get(
                f"/v1/users/{users[i % len(users)]}/recommendations",
                params={"k": 10, "explain": True},
            )
            statuses.append(r.status_code)
            if r.status_code == 200:
                versions.add(r.json()["model_version"])
            i += 1

    threads = [threading.Thread(target=hammer, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    try:
        for n in range(6):
            time.sleep(0.05)
            r = client.post(f"/v1/models/{(a, b)[n % 2]}/activate")
            assert r.status_code == 200, r.text
    finally:
        stop.set()
        for t in threads:
            t.join()
    assert len(statuses) > 20
    assert set(statuses) == {200}, f"failed requests: {[s for s in statuses if s != 200]}"
    assert {a, b} <= versions
    assert client.get("/v1/models").json()["active"] == b


def _item_knn_served(tmp_path: Path, model_dirs: dict[str, Path]) -> Any:
    """Settings of a server whose SQLite store has the toy item-kNN model active (no
    bootstrap): each `TestClient(create_app(settings))` is one server process's life."""
    from serendip.service.settings import Settings

    settings = Settings(db_url=f"sqlite:///{tmp_path / 'db.sqlite'}", bootstrap=False)
    with Store.open(settings.db_url) as store:
        v = store.models.register("item-knn", str(model_dirs["item-knn"])).version
        store.models.activate(v)
    return settings


def test_restart_keeps_deletions_and_seen_items(
    tmp_path: Path, model_dirs: dict[str, Path], toy_platform: Any
) -> None:
    settings = _item_knn_served(tmp_path, model_dirs)
    user = str(toy_platform.users.ids[2])
    with TestClient(create_app(settings)) as client:
        wait_ready(client)
        first, second = _items(client, f"/v1/users/{user}/recommendations", k=2)
        ev = {"event_id": "w1", "user": user, "item": first, "event": "like"}
        assert client.post("/v1/events", json=ev).status_code == 200
        assert client.delete(f"/v1/items/{second}").status_code == 200
    with TestClient(create_app(settings)) as client:  # a new process would start like this
        wait_ready(client)
        after = _items(client, f"/v1/users/{user}/recommendations", k=100)
        assert first not in after and second not in after
        assert second not in _items(client, "/v1/trending", k=100)


def test_restart_replays_new_items_follows_and_unfollows(
    tmp_path: Path, model_dirs: dict[str, Path], toy_platform: Any
) -> None:
    settings = _item_knn_served(tmp_path, model_dirs)
    user, a, b = (str(u) for u in toy_platform.users.ids[:3])
    item = {"item": "fresh-9", "title": "new", "category": "cat1", "author": a}
    with TestClient(create_app(settings)) as client:
        wait_ready(client)
        assert client.post("/v1/items", json={"items": [item]}).status_code == 200
        assert client.put(f"/v1/users/{user}/follows/{a}").status_code == 200
        assert client.put(f"/v1/users/{user}/follows/{b}").status_code == 200
        assert client.delete(f"/v1/users/{user}/follows/{b}").status_code == 200
        r = client.put(f"/v1/users/{b}/privacy", json={"private": True})
        assert r.status_code == 200, r.text
    with TestClient(create_app(settings)) as client:  # a new process would start like this
        wait_ready(client)
        state = client.app.state.runtime.state  # type: ignore[attr-defined]
        info = state.items()["fresh-9"]
        assert (info.category, info.author) == ("cat1", a)
        follows, unfollows = state.followees(user)
        assert a in follows and b not in follows and b in unfollows
        assert state.private_flags() == {b: True}


def test_a_batch_with_duplicates_applies_only_its_new_events_live(
    live: TestClient, toy_platform: Any
) -> None:
    user = str(toy_platform.users.ids[4])
    item = str(toy_platform.items.ids[7])
    first = {"event_id": "dup-1", "user": user, "item": item, "event": "like"}
    assert live.post("/v1/events", json=first).json()["accepted"] == 1
    other = {
        "event_id": "dup-2",
        "user": user,
        "item": str(toy_platform.items.ids[8]),
        "event": "like",
    }
    r = live.post("/v1/events/batch", json={"events": [first, other]})
    assert r.json()["accepted"] == 1 and r.json()["duplicates"] == 1
    history = live.app.state.runtime.state.history(user)  # type: ignore[attr-defined]
    assert [i for i, _, _ in history].count(item) == 1  # the resent event is not counted twice
