"""API keys and scopes: 401 without or with an unknown key, 403 without the scope, reasons."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from serendip.store import Store
from tests.service.conftest import ClientFactory, FakeRuntime

KEYS = [
    {"name": "reader", "key": "r-secret", "scopes": ["read"]},
    {"name": "writer", "key": "w-secret", "scopes": ["write"]},
    {"name": "ops", "key": "a-secret", "scopes": ["admin"]},
]
EVENT = {"event_id": "e1", "user": "u1", "item": "i1", "event": "view"}


@pytest.fixture
def authed(
    sqlite_store: Store, fake_runtime: FakeRuntime, make_client: ClientFactory
) -> TestClient:
    return make_client(sqlite_store, fake_runtime, api_keys=KEYS)


def _h(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def test_missing_and_unknown_keys_get_401(authed: TestClient) -> None:
    r = authed.get("/v1/users/u1/recommendations")
    assert r.status_code == 401 and "missing API key" in r.json()["detail"]
    assert r.headers["www-authenticate"] == "Bearer"
    r = authed.get("/v1/users/u1/recommendations", headers=_h("guess"))
    assert r.status_code == 401 and r.json()["detail"] == "unknown API key"
    r = authed.get("/v1/users/u1/recommendations", headers={"Authorization": "Basic abc"})
    assert r.status_code == 401


@pytest.mark.parametrize(
    ("method", "path", "body", "scope"),
    [
        ("get", "/v1/users/u1/recommendations", None, "read"),
        ("get", "/v1/trending", None, "read"),
        ("get", "/v1/items/i1/similar", None, "read"),
        ("get", "/metrics", None, "read"),
        ("post", "/v1/events", EVENT, "write"),
        ("post", "/v1/events/batch", {"events": [EVENT]}, "write"),
        ("post", "/v1/items", {"items": [{"item": "x"}]}, "write"),
        ("delete", "/v1/items/x", None, "write"),
        ("put", "/v1/users/u1", {}, "write"),
        ("put", "/v1/users/u1/follows/u2", None, "write"),
        ("get", "/v1/models", None, "admin"),
        ("post", "/v1/models/rollback", None, "admin"),
    ],
)
def test_each_route_checks_its_scope(
    authed: TestClient, method: str, path: str, body: object, scope: str
) -> None:
    holders = {"read": "r-secret", "write": "w-secret", "admin": "a-secret"}
    for have, key in holders.items():
        r = authed.request(method, path, json=body, headers=_h(key))
        if have == scope or have == "admin":
            assert r.status_code not in (401, 403), (have, r.text)
        else:
            assert r.status_code == 403, (have, r.text)
            assert f"lacks the '{scope}' scope" in r.json()["detail"]


def test_x_api_key_header_and_open_health(authed: TestClient) -> None:
    assert authed.get("/v1/trending", headers={"X-API-Key": "r-secret"}).status_code == 200
    assert authed.get("/healthz").status_code == 200
    assert authed.get("/readyz").status_code == 200


def test_without_keys_everything_is_open(sqlite_client: TestClient) -> None:
    assert sqlite_client.post("/v1/events", json=EVENT).status_code == 200
    assert sqlite_client.get("/v1/models").status_code == 200
