"""Every endpoint of the API on a real store (SQLite; PostgreSQL under the `postgres` marker)
with a fake runtime: status codes, bodies, validation naming the field, limits, errors."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from serendip.service.app import create_app
from serendip.service.settings import Settings
from serendip.store import Store
from tests.service.conftest import FakeRuntime

NOW = time.time()


def _event(i: int, **kw: object) -> dict[str, object]:
    return {
        "event_id": f"e{i}",
        "user": "u1",
        "item": f"i{i}",
        "event": "like",
        "timestamp": NOW - 60,
        **kw,
    }


def _loc(resp: object) -> list[list[object]]:
    return [d["loc"] for d in resp.json()["detail"]]  # type: ignore[attr-defined]


# ----------------------------------------------------------------------------- health
def test_health_and_readiness(sqlite_client: TestClient, fake_runtime: FakeRuntime) -> None:
    assert sqlite_client.get("/healthz").json() == {"status": "ok"}
    r = sqlite_client.get("/readyz")
    assert r.status_code == 200 and r.json()["model_version"] == "v-fake"
    fake_runtime.active_version = None
    r = sqlite_client.get("/readyz")
    assert r.status_code == 503 and r.json()["ready"] is False and r.json()["reason"]
    r = sqlite_client.get("/v1/users/u1/recommendations")
    assert r.status_code == 503 and "not ready" in r.json()["detail"]


def test_openapi_docs_document_every_field(sqlite_client: TestClient) -> None:
    schema = sqlite_client.get("/openapi.json").json()
    assert sqlite_client.get("/docs").status_code == 200
    for name in ("EventCreate", "ItemCreate", "UserCreate", "RecommendationsPublic"):
        props = schema["components"]["schemas"][name]["properties"]
        assert all("description" in p for p in props.values()), name
    paths = set(schema["paths"])
    assert {"/v1/events", "/v1/events/batch", "/v1/items", "/v1/models/rollback"} <= paths


# ----------------------------------------------------------------------------- recommendations
def test_recommendations(sqlite_client: TestClient) -> None:
    r = sqlite_client.get("/v1/users/u1/recommendations", params={"k": 5, "explain": True})
    assert r.status_code == 200
    body = r.json()
    assert body["user"] == "u1" and body["model_version"] == "v-fake"
    assert [x["rank"] for x in body["items"]] == [1, 2, 3, 4, 5]
    assert all(x["explanation"]["text"] for x in body["items"])
    plain = sqlite_client.get("/v1/users/u1/recommendations", params={"k": 3}).json()
    assert all(x["explanation"] is None for x in plain["items"])


def test_unknown_user_is_cold_start_not_an_error(sqlite_client: TestClient) -> None:
    r = sqlite_client.get("/v1/users/never-seen-before/recommendations")
    assert r.status_code == 200 and len(r.json()["items"]) == 10


def test_exclude_and_context_item(sqlite_client: TestClient) -> None:
    r = sqlite_client.get(
        "/v1/users/u1/recommendations",
        params=[("k", "5"), ("exclude", "i0"), ("exclude", "i1"), ("context_item", "i2")],
    )
    items = [x["item"] for x in r.json()["items"]]
    assert not {"i0", "i1", "i2"} & set(items)


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"k": 0}, "k"),
        ({"k": 201}, "k"),
        ({"k": "ten"}, "k"),
        ({"explain": "maybe"}, "explain"),
        ({"exclude": "x" * 300}, "exclude"),
    ],
)
def test_bad_recommendation_params_name_the_field(
    sqlite_client: TestClient, params: dict[str, object], field: str
) -> None:
    r = sqlite_client.get("/v1/users/u1/recommendations", params=params)
    assert r.status_code == 422
    assert any(field in loc for loc in _loc(r)), r.json()


def test_similar_and_trending(sqlite_client: TestClient) -> None:
    r = sqlite_client.get("/v1/items/i3/similar", params={"k": 4})
    assert r.status_code == 200 and len(r.json()["items"]) == 4
    assert "i3" not in [x["item"] for x in r.json()["items"]]
    r = sqlite_client.get("/v1/trending", params={"k": 2, "category": "jazz"})
    assert r.status_code == 200 and len(r.json()["items"]) == 2
    assert sqlite_client.get("/v1/trending", params={"k": 999}).status_code == 422


# ----------------------------------------------------------------------------- events
def test_event_is_stored_before_ack_and_idempotent(client: TestClient, store: Store) -> None:
    r = client.post("/v1/events", json=_event(1))
    assert r.status_code == 200 and r.json() == {"received": 1, "accepted": 1, "duplicates": 0}
    stored = store.events.get("e1")
    assert stored is not None and stored.item == "i1" and stored.event == "like"
    again = client.post("/v1/events", json=_event(1))
    assert again.json() == {"received": 1, "accepted": 0, "duplicates": 1}
    assert store.events.count() == 1


def test_a_failed_online_update_still_acks_what_was_stored(
    client: TestClient, store: Store, fake_runtime: FakeRuntime, monkeypatch: pytest.MonkeyPatch
) -> None:
    def fail(*_: object) -> None:
        raise RuntimeError("online update bug")

    monkeypatch.setattr(fake_runtime, "on_events", fail)
    monkeypatch.setattr(fake_runtime, "on_items", fail)
    r = client.post("/v1/events", json=_event(7))
    assert r.status_code == 200 and r.json()["accepted"] == 1
    assert store.events.get("e7") is not None
    r = client.post("/v1/items", json={"items": [{"item": "late-1", "title": "t"}]})
    assert r.status_code == 200 and r.json() == {"upserted": 1}
    assert store.catalog.get("late-1") is not None


def test_event_without_timestamp_gets_arrival_time(client: TestClient, store: Store) -> None:
    ev = _event(2)
    del ev["timestamp"]
    assert client.post("/v1/events", json=ev).status_code == 200
    stored = store.events.get("e2")
    assert stored is not None and abs(stored.timestamp - time.time()) < 60


def test_iso_timestamps_are_accepted(sqlite_client: TestClient, sqlite_store: Store) -> None:
    ev = {**_event(4), "timestamp": "2025-01-02T03:04:05Z"}
    assert sqlite_client.post("/v1/events", json=ev).status_code == 200
    assert sqlite_store.events.get("e4").timestamp == 1_735_787_045.0  # type: ignore[union-attr]
    r = sqlite_client.post("/v1/events", json={**_event(5), "timestamp": "yesterday"})
    assert r.status_code == 422 and "ISO 8601" in r.json()["detail"][0]["msg"]


def test_event_batch(client: TestClient, store: Store) -> None:
    events = [_event(i) for i in range(50)] + [_event(3)]  # one repeat inside the batch
    r = client.post("/v1/events/batch", json={"events": events})
    assert r.status_code == 200
    assert r.json() == {"received": 51, "accepted": 50, "duplicates": 1}
    assert store.events.count() == 50


def test_seen_item_leaves_next_recommendations(client: TestClient) -> None:
    first = client.get("/v1/users/u9/recommendations", params={"k": 3}).json()["items"][0]["item"]
    client.post("/v1/events", json={**_event(7), "user": "u9", "item": first})
    after = [x["item"] for x in client.get("/v1/users/u9/recommendations").json()["items"]]
    assert first not in after


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"event": "poke"}, "event"),
        ({"event_id": ""}, "event_id"),
        ({"user": "   "}, "user"),
        ({"item": "a" * 257}, "item"),
        ({"user": "bad\x00id"}, "user"),
        ({"timestamp": 1_700_000_000_000}, "timestamp"),  # milliseconds
        ({"timestamp": 100.0}, "timestamp"),  # 1970
        ({"timestamp": time.time() + 10 * 86_400}, "timestamp"),  # far future
        ({"value": "lots"}, "value"),
        ({"surprise": 1}, "surprise"),
        ({"user": None}, "user"),
        ({"event_id": 5}, "event_id"),
    ],
)
def test_malformed_event_gets_422_naming_the_field(
    sqlite_client: TestClient, sqlite_store: Store, change: dict[str, object], field: str
) -> None:
    r = sqlite_client.post("/v1/events", json={**_event(1), **change})
    assert r.status_code == 422, r.text
    assert any(field in loc for loc in _loc(r)), r.json()
    assert all(d["msg"] for d in r.json()["detail"])
    assert sqlite_store.events.count() == 0


def test_one_bad_event_rejects_the_whole_batch(client: TestClient, store: Store) -> None:
    events = [_event(i) for i in range(5)]
    events[3]["event"] = "poke"
    r = client.post("/v1/events/batch", json={"events": events})
    assert r.status_code == 422 and ["body", "events", 3, "event"] in _loc(r)
    assert "valid: view" in r.json()["detail"][0]["msg"]
    assert store.events.count() == 0


def test_batch_bounds(sqlite_client: TestClient) -> None:
    assert sqlite_client.post("/v1/events/batch", json={"events": []}).status_code == 422
    big = {"events": [_event(i) for i in range(10_001)]}
    r = sqlite_client.post("/v1/events/batch", json=big)
    assert r.status_code == 422 and ["body", "events"] in _loc(r)


def test_malformed_json_and_wrong_types(sqlite_client: TestClient) -> None:
    r = sqlite_client.post(
        "/v1/events", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert r.status_code == 422
    assert sqlite_client.post("/v1/events/batch", json={"events": "many"}).status_code == 422
    assert sqlite_client.post("/v1/events", json=[1, 2]).status_code == 422


def test_body_size_limit_gives_413(store: Store, fake_runtime: FakeRuntime, make_client) -> None:  # type: ignore[no-untyped-def]
    c = make_client(store, fake_runtime, limits={"max_body_bytes": 2048})
    events = {"events": [_event(i) for i in range(100)]}
    r = c.post("/v1/events/batch", json=events)
    assert r.status_code == 413 and "2048" in r.json()["detail"][0]["msg"]

    # a lying or absent Content-Length is caught while reading
    def chunks():  # type: ignore[no-untyped-def]
        yield json.dumps(events).encode()

    r = c.post("/v1/events/batch", content=chunks(), headers={"content-type": "application/json"})
    assert r.status_code == 413


def test_stricter_server_limits(store: Store, fake_runtime: FakeRuntime, make_client) -> None:  # type: ignore[no-untyped-def]
    c = make_client(
        store, fake_runtime, limits={"max_k": 5, "max_batch": 3, "max_string_length": 10}
    )
    r = c.get("/v1/users/u1/recommendations", params={"k": 6})
    assert r.status_code == 422 and "limit of 5" in r.json()["detail"][0]["msg"]
    r = c.post("/v1/events/batch", json={"events": [_event(i) for i in range(4)]})
    assert r.status_code == 413 and ["body", "events"] in _loc(r)
    r = c.post("/v1/events", json={**_event(1), "user": "x" * 11})
    assert r.status_code == 422 and ["body", "user"] in _loc(r)


# ----------------------------------------------------------------------------- catalog
def test_item_upsert_read_delete(
    client: TestClient, store: Store, fake_runtime: FakeRuntime
) -> None:
    item = {
        "item": "new-1",
        "title": "Jazz night",
        "text": "live",
        "tags": ["jazz", "live"],
        "category": "music",
        "author": "u2",
        "created_at": NOW - 5,
    }
    r = client.post("/v1/items", json={"items": [item]})
    assert r.status_code == 200 and r.json() == {"upserted": 1}
    assert store.catalog.get("new-1").tags == ("jazz", "live")  # type: ignore[union-attr]
    got = client.get("/v1/items/new-1").json()
    assert got["title"] == "Jazz night" and got["category"] == "music"
    assert "new-1" in [
        x["item"] for x in client.get("/v1/users/u1/recommendations").json()["items"]
    ]

    r = client.delete("/v1/items/new-1")
    assert r.status_code == 200 and r.json() == {"deleted": ["new-1"]}
    assert client.get("/v1/items/new-1").status_code == 404
    assert store.catalog.get("new-1") is None
    for path in ("/v1/users/u1/recommendations", "/v1/trending", "/v1/items/i1/similar"):
        assert "new-1" not in [
            x["item"] for x in client.get(path, params={"k": 50}).json()["items"]
        ]
    r = client.post("/v1/items/delete", json={"items": ["i1", "i2", "i1"]})
    assert r.json() == {"deleted": ["i1", "i2"]}
    assert {"i1", "i2"} <= fake_runtime.deleted


@pytest.mark.parametrize(
    ("item", "field"),
    [
        ({"title": "x"}, "item"),
        ({"item": "a", "tags": "jazz"}, "tags"),
        ({"item": "a", "tags": ["ok", ""]}, "tags"),
        ({"item": "a", "created_at": -5}, "created_at"),
        ({"item": "a", "text": "x" * 20_001}, "text"),
    ],
)
def test_malformed_item(sqlite_client: TestClient, item: dict[str, object], field: str) -> None:
    r = sqlite_client.post("/v1/items", json={"items": [item]})
    assert r.status_code == 422 and any(field in loc for loc in _loc(r)), r.json()


# ----------------------------------------------------------------------------- users & social
def test_users_privacy_and_follows(
    client: TestClient, store: Store, fake_runtime: FakeRuntime
) -> None:
    r = client.put("/v1/users/alice", json={"interests": ["jazz", "jazz", "film"]})
    assert r.status_code == 200 and r.json() == {
        "user": "alice",
        "interests": ["jazz", "film"],
        "private": False,
    }
    assert client.get("/v1/users/alice").json()["interests"] == ["jazz", "film"]
    assert client.get("/v1/users/nobody").status_code == 404

    r = client.put("/v1/users/alice/privacy", json={"private": True})
    assert r.json()["private"] is True and r.json()["interests"] == ["jazz", "film"]
    assert store.users.get("alice").private is True  # type: ignore[union-attr]
    r = client.put("/v1/users/bob/privacy", json={"private": True})  # unknown user: created
    assert r.status_code == 200 and store.users.get("bob") is not None

    r = client.put("/v1/users/alice/follows/bob")
    assert r.json() == {"follower": "alice", "followee": "bob", "following": True}
    assert client.put("/v1/users/alice/follows/bob").status_code == 200  # idempotent
    assert client.get("/v1/users/alice/follows").json() == ["bob"]
    r = client.delete("/v1/users/alice/follows/bob")
    assert r.json()["following"] is False
    assert store.social.followees("alice") == []
    assert ("follow", ("alice", "bob")) in fake_runtime.calls
    assert ("unfollow", ("alice", "bob")) in fake_runtime.calls


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("put", "/v1/users/alice/follows/alice", None),
        ("put", "/v1/users/alice", {"interests": "jazz"}),
        ("put", "/v1/users/alice", {"private": "perhaps"}),
        ("put", "/v1/users/alice/privacy", {}),
        ("put", "/v1/users/" + "a" * 300, {}),
    ],
)
def test_malformed_user_requests(
    sqlite_client: TestClient, method: str, path: str, body: object
) -> None:
    r = sqlite_client.request(method, path, json=body)
    assert r.status_code == 422, r.text
    assert r.json()["detail"][0]["loc"]


# ----------------------------------------------------------------------------- models
def _register(store: Store, tmp_path: Path, name: str) -> str:
    d = tmp_path / name
    d.mkdir(exist_ok=True)
    return store.models.register("item-knn", str(d), {"ndcg@10": 0.1}).version


def test_models_list_activate_fail_rollback(
    client: TestClient, store: Store, fake_runtime: FakeRuntime, tmp_path: Path
) -> None:
    v1, v2, bad = (_register(store, tmp_path, n) for n in ("one", "two", "broken"))
    body = client.get("/v1/models").json()
    assert {v["version"] for v in body["versions"]} == {v1, v2, bad}
    assert body["versions"][0]["metrics"] == {"ndcg@10": 0.1}

    assert client.post(f"/v1/models/{v1}/activate").json() == {"active": v1, "previous": "v-fake"}
    assert client.post(f"/v1/models/{v2}/activate").json() == {"active": v2, "previous": v1}
    assert store.models.active().version == v2  # type: ignore[union-attr]

    r = client.post(f"/v1/models/{bad}/activate")
    assert r.status_code == 409 and "not a model artifact" in r.json()["detail"]
    assert fake_runtime.active_version == v2 and store.models.active().version == v2  # type: ignore[union-attr]
    failed = {v["version"]: v for v in client.get("/v1/models").json()["versions"]}[bad]
    assert failed["status"] == "failed" and "not a model artifact" in failed["error"]

    assert client.post("/v1/models/nope/activate").status_code == 404
    r = client.post("/v1/models/rollback")
    assert r.status_code == 200 and r.json() == {"active": v1, "previous": v2}
    assert fake_runtime.active_version == v1
    assert client.get("/v1/models").json()["active"] == v1
    assert client.post("/v1/models/rollback").status_code == 409  # nothing earlier


# ----------------------------------------------------------------------------- errors, metrics
def test_internal_error_is_500_with_request_id(
    sqlite_client: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    r = sqlite_client.get("/v1/users/boom/recommendations")
    assert r.status_code == 500
    rid = r.json()["request_id"]
    assert rid and r.headers["x-request-id"] == rid
    assert any(rid in rec.getMessage() for rec in caplog.records)
    assert (
        sqlite_client.get("/healthz", headers={"x-request-id": "abc-1"}).headers["x-request-id"]
        == "abc-1"
    )


def test_unknown_route_is_404(sqlite_client: TestClient) -> None:
    assert sqlite_client.get("/v1/nothing").status_code == 404
    assert sqlite_client.delete("/v1/events").status_code == 405


def test_metrics(sqlite_client: TestClient) -> None:
    sqlite_client.get("/v1/users/u1/recommendations", params={"explain": True})
    sqlite_client.post("/v1/events/batch", json={"events": [_event(i) for i in range(3)]})
    sqlite_client.get("/v1/users/u1/recommendations", params={"k": 0})
    text = sqlite_client.get("/metrics").text
    assert (
        'serendip_http_request_duration_seconds_bucket{le="0.05",method="GET",route="/v1/users/{user_id}/recommendations"}'
        in text
    )
    assert (
        'serendip_http_errors_total{route="/v1/users/{user_id}/recommendations",status="422"} 1.0'
        in text
    )
    assert 'serendip_events_ingested_total{outcome="accepted"} 3.0' in text
    assert 'serendip_recommendations_served_total{endpoint="user"} 1.0' in text
    assert 'serendip_model_version_info{version="v-fake"} 1.0' in text
    assert 'serendip_candidate_source_items_total{source="fake"} 10.0' in text


def test_two_apps_have_separate_metrics(sqlite_store: Store, tmp_path: Path) -> None:
    apps = [
        create_app(Settings(bootstrap=False), store=sqlite_store, runtime=FakeRuntime())
        for _ in range(2)
    ]
    with TestClient(apps[0]) as a, TestClient(apps[1]) as b:
        a.get("/healthz")
        assert 'route="/healthz"' in a.get("/metrics").text
        assert 'route="/healthz"' not in b.get("/metrics").text
