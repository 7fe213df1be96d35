"""`GET /v1/users/{id}/export`: everything held about one user, nothing about anyone else;
admin scope; 404 for a user with no data at all."""

from __future__ import annotations

import json
from typing import Any

import pytest
from fastapi.testclient import TestClient

from serendip.store import EventIn, ItemIn, Store, UserIn
from tests.service.conftest import ClientFactory, FakeRuntime

KEYS = [
    {"name": "reader", "key": "r-secret", "scopes": ["read"]},
    {"name": "writer", "key": "w-secret", "scopes": ["write"]},
    {"name": "ops", "key": "a-secret", "scopes": ["admin"]},
]
ADMIN = {"Authorization": "Bearer a-secret"}


def _fill(store: Store) -> None:
    """alice and bob, with data each; only alice is exported."""
    store.users.upsert(
        [
            UserIn("alice", ("jazz", "cats"), False, 1_700_000_000.0),
            UserIn("bob", ("bob-secret-interest",), True, 1_700_000_001.0),
        ]
    )
    store.catalog.upsert(
        [ItemIn("i1", "Alice's post", author="alice"), ItemIn("i2", "Bob's post", author="bob")]
    )
    store.events.add_batch(
        [
            EventIn("e1", "alice", "i2", "like", 1_700_000_100.0),
            EventIn("e2", "alice", "i3", "view", 1_700_000_050.0, 0.5),
            EventIn("e-bob", "bob", "i1", "share", 1_700_000_200.0),
        ]
    )
    store.social.follow("alice", "bob", 1_700_000_010.0)
    store.social.follow("carol", "alice", 1_700_000_020.0)
    store.social.follow("bob", "carol", 1_700_000_030.0)  # an edge without alice
    store.social.follow("alice", "dave", 1_700_000_040.0)
    store.social.unfollow("alice", "dave")


@pytest.fixture
def authed(store: Store, fake_runtime: FakeRuntime, make_client: ClientFactory) -> TestClient:
    """A client with API keys on the parametrised store (SQLite; PostgreSQL when reachable)."""
    _fill(store)
    return make_client(store, fake_runtime, api_keys=KEYS)


def test_export_has_everything_about_the_user(authed: TestClient) -> None:
    r = authed.get("/v1/users/alice/export", params={"k": 5}, headers=ADMIN)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["user"] == "alice" and body["model_version"] == "v-fake"
    assert body["exported_at"] > 1_700_000_000
    profile = body["profile"]
    assert (profile["user"], profile["interests"], profile["private"]) == (
        "alice",
        ["jazz", "cats"],
        False,
    )
    assert profile["created_at"] == 1_700_000_000.0
    assert [(e["event_id"], e["item"], e["event"], e["timestamp"]) for e in body["events"]] == [
        ("e2", "i3", "view", 1_700_000_050.0),  # oldest first
        ("e1", "i2", "like", 1_700_000_100.0),
    ]
    assert body["events"][0]["value"] == 0.5 and body["events"][0]["received_at"] > 0
    assert body["following"] == [{"followee": "bob", "created_at": 1_700_000_010.0}]
    assert body["followers"] == [{"follower": "carol", "created_at": 1_700_000_020.0}]
    assert [(u["follower"], u["followee"]) for u in body["unfollows"]] == [("alice", "dave")]
    assert [a["item"] for a in body["authored_items"]] == ["i1"]
    for section in ("exposures", "experiments"):
        assert body[section]["records"] == [] and body[section]["note"]
    consent = body["consent"]["records"]
    assert consent == [
        {
            "personalization": True,
            "activity_for_others": True,
            "private": False,
            "updated_at": None,
            "stored": False,
        }
    ]
    recs = body["recommendations"]
    assert recs["k"] == 5 and recs["reason"] is None
    assert [it["rank"] for it in recs["items"]] == [1, 2, 3, 4, 5]
    assert all(it["explanation"]["text"] for it in recs["items"])


def test_export_never_shows_another_users_data(authed: TestClient) -> None:
    body = authed.get("/v1/users/alice/export", headers=ADMIN).json()
    text = json.dumps(body)
    for foreign in ("e-bob", "bob-secret-interest", "Bob's post", "share"):
        assert foreign not in text
    assert all(e["event_id"] != "e-bob" for e in body["events"])
    # bob -> carol is bob's edge, not alice's
    assert ("bob", "carol") not in {
        (f.get("follower"), f.get("followee")) for f in body["followers"]
    }
    bob = authed.get("/v1/users/bob/export", headers=ADMIN).json()
    assert [e["event_id"] for e in bob["events"]] == ["e-bob"]
    assert "jazz" not in json.dumps(bob) and "e1" not in [e["event_id"] for e in bob["events"]]


def test_a_user_known_only_as_follower_or_author_is_exported(authed: TestClient) -> None:
    carol = authed.get("/v1/users/carol/export", headers=ADMIN).json()
    assert carol["profile"] is None and carol["events"] == []
    assert [f["followee"] for f in carol["following"]] == ["alice"]
    assert [f["follower"] for f in carol["followers"]] == ["bob"]
    dave = authed.get("/v1/users/dave/export", headers=ADMIN)
    assert dave.status_code == 200  # only the unfollow log holds dave
    assert [(u["follower"], u["followee"]) for u in dave.json()["unfollows"]] == [("alice", "dave")]


def test_unknown_user_is_404(authed: TestClient) -> None:
    r = authed.get("/v1/users/nobody/export", headers=ADMIN)
    assert r.status_code == 404 and "nobody" in r.json()["detail"]


def test_export_needs_the_admin_scope(authed: TestClient) -> None:
    assert authed.get("/v1/users/alice/export").status_code == 401
    assert authed.get("/v1/users/alice/export", headers={"X-API-Key": "guess"}).status_code == 401
    for key in ("r-secret", "w-secret"):
        r = authed.get("/v1/users/alice/export", headers={"Authorization": f"Bearer {key}"})
        assert r.status_code == 403 and "lacks the 'admin' scope" in r.json()["detail"]


def test_k_is_bounded_by_the_servers_limit(authed: TestClient) -> None:
    r = authed.get("/v1/users/alice/export", params={"k": 10_000}, headers=ADMIN)
    assert r.status_code == 422 and "limit" in json.dumps(r.json())
    assert authed.get("/v1/users/alice/export", params={"k": 0}, headers=ADMIN).status_code == 422


def test_without_an_active_model_the_reason_is_given(
    sqlite_store: Store, make_client: ClientFactory
) -> None:
    _fill(sqlite_store)
    client = make_client(sqlite_store, FakeRuntime())  # no version active
    r = client.get("/v1/users/alice/export")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["model_version"] is None
    assert body["recommendations"]["items"] == []
    assert body["recommendations"]["reason"] == "no model is active"
    assert [e["event_id"] for e in body["events"]] == ["e2", "e1"]


def test_explanations_come_from_the_real_active_model(
    sqlite_store: Store, real_runtime: Any, make_client: ClientFactory
) -> None:
    sqlite_store.users.upsert([UserIn("u001", (), False, 1_700_000_000.0)])
    client = make_client(sqlite_store, real_runtime)
    body = client.get("/v1/users/u001/export", params={"k": 3}).json()
    assert body["model_version"] == "v1"
    items = body["recommendations"]["items"]
    assert len(items) == 3
    assert all(it["explanation"] is not None and it["explanation"].get("text") for it in items)
