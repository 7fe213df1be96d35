"""Consent through `PUT /v1/users/{id}/consent` on an in-process server: "activity for others"
off takes the user out of every other user's signals at once in the live path (live counts
behind trending, social evidence and explanations, cached and precomputed lists), holds after
a restart, and at the next fit the precomputed lists of every other user are those of a fit on
data without the user's interactions."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, cast

import numpy as np
import pytest
from fastapi.testclient import TestClient

from serendip.data.dataset import Dataset
from serendip.models import get_model_class
from serendip.pipeline.serving import serving_model
from serendip.service.privacy import apply_consent, apply_consents_at_start
from serendip.service.runtime import ModelRuntime
from serendip.serving.precompute import build_ranked_lists
from serendip.store import EventIn, Store
from tests.conftest import make_toy_platform
from tests.pipeline.test_consent_sources import _without_interactions
from tests.service.conftest import ClientFactory, ready_lists

KEYS = [
    {"name": "writer", "key": "w-secret", "scopes": ["write"]},
    {"name": "ops", "key": "a-secret", "scopes": ["admin"]},
]
ADMIN = {"Authorization": "Bearer a-secret"}
WRITE = {"Authorization": "Bearer w-secret"}


def _runtime(pipe: Path, store: Store | None = None, **kwargs: Any) -> ModelRuntime:
    rt = ModelRuntime(store, freeze_gc=False, **kwargs)
    rt.load(pipe, "v1")
    if rt.snapshot is not None and rt.snapshot.lists is not None:
        ready_lists(rt)
    return rt


def _evidence(exp: Mapping[str, object] | None) -> list[dict[str, Any]]:
    return cast(list[dict[str, Any]], (exp or {}).get("evidence", []))


def citations(rt: ModelRuntime, users: list[str]) -> dict[str, int]:
    """Users named in the evidence of the explanations served to `users`, with how often."""
    out: dict[str, int] = {}
    for user in users:
        for rec in rt.recommend(user, 10, explain=True):
            for ev in _evidence(rec.explanation):
                if ev.get("kind") in ("followee", "user", "author"):
                    out[str(ev["id"])] = out.get(str(ev["id"]), 0) + 1
    return out


def cited_by_others(rt: ModelRuntime, users: list[str], who: str) -> bool:
    """Whether an explanation served to anyone but `who` cites or names them."""
    pattern = re.compile(rf"\b{re.escape(who)}\b")
    for user in users:
        if user == who:
            continue
        for rec in rt.recommend(user, 10, explain=True):
            if who in [str(ev.get("id")) for ev in _evidence(rec.explanation)]:
                return True
            if pattern.search(str((rec.explanation or {}).get("text", ""))):
                return True
    return False


@pytest.fixture
def served(
    pipe: Path, sqlite_store: Store, make_client: ClientFactory
) -> tuple[TestClient, ModelRuntime, list[str], str]:
    users = [str(u) for u in make_toy_platform().users.ids]
    rt = _runtime(pipe, sqlite_store)
    cited = citations(rt, users)
    who = max(cited, key=lambda u: cited[u])
    return make_client(sqlite_store, rt, api_keys=KEYS), rt, users, who


def test_withholding_activity_takes_the_user_out_of_others_signals_at_once(
    served: tuple[TestClient, ModelRuntime, list[str], str], sqlite_store: Store
) -> None:
    client, rt, users, who = served
    other = next(u for u in users if u != who)
    events = [
        {"event_id": f"w{i}", "user": who, "item": "i100", "event": "like", "timestamp": 1.703e9}
        for i in range(5)
    ] + [{"event_id": "o1", "user": other, "item": "i101", "event": "like", "timestamp": 1.703e9}]
    assert client.post("/v1/events/batch", json={"events": events}, headers=WRITE).is_success
    assert "i100" in rt.state.counts()[0] and cited_by_others(rt, users, who)

    r = client.put(f"/v1/users/{who}/consent", json={"activity_for_others": False}, headers=WRITE)
    assert r.status_code == 200, r.text
    assert r.json()["activity_for_others"] is False and r.json()["personalization"] is True
    assert who in rt.withheld_activity
    live = rt.state.counts()[0]
    assert "i100" not in live and "i101" in live  # their share of the live counts left
    assert "i100" not in [x.item for x in rt.trending(3)]
    assert not cited_by_others(rt, users, who)  # cached and precomputed lists included
    # their later events reach their own history only
    late = {"event_id": "w9", "user": who, "item": "i102", "event": "like", "timestamp": 1.703e9}
    assert client.post("/v1/events", json=late, headers=WRITE).json()["accepted"] == 1
    assert "i102" not in rt.state.counts()[0]
    assert "i102" in [item for item, _, _ in rt.state.history(who)]
    assert rt.recommend(who, 5)  # still personal for them
    export = client.get(f"/v1/users/{who}/export", headers=ADMIN).json()
    assert export["consent"]["records"][0]["activity_for_others"] is False

    r = client.put(f"/v1/users/{who}/consent", json={"activity_for_others": True}, headers=WRITE)
    assert r.json()["activity_for_others"] is True
    assert cited_by_others(rt, users, who)  # given back: may be evidence again


def test_consent_switches_and_private_through_the_api(
    served: tuple[TestClient, ModelRuntime, list[str], str],
) -> None:
    client, rt, users, who = served
    body = {"personalization": False, "private": True}
    r = client.put(f"/v1/users/{who}/consent", json=body, headers=WRITE)
    assert r.status_code == 200 and r.json()["private"] is True
    assert r.json()["activity_for_others"] is True
    assert not rt.personalized(who) and not cited_by_others(rt, users, who)
    assert client.get(f"/v1/users/{who}/consent", headers=ADMIN).json()["personalization"] is False
    r = client.put(f"/v1/users/{who}/consent", json={"nope": 1}, headers=WRITE)
    assert r.status_code == 422
    r = client.put(f"/v1/users/{who}/consent", json={"private": "maybe"}, headers=WRITE)
    assert r.status_code == 422


def test_withheld_consent_holds_after_a_restart(
    pipe: Path, sqlite_store: Store, tmp_path: Path
) -> None:
    users = [str(u) for u in make_toy_platform().users.ids]
    first = _runtime(pipe, sqlite_store, precompute=False)
    cited = citations(first, users)
    who = max(cited, key=lambda u: cited[u])
    sqlite_store.events.add_batch([EventIn("w1", who, "i100", "like", 1.703e9)])
    sqlite_store.consents.update(who, activity_for_others=False)
    rt = _runtime(pipe, sqlite_store, precompute=False)  # the restart
    rt.on_events([EventIn("w1", who, "i100", "like", 1.703e9)])  # the warm-up replays it
    assert apply_consents_at_start(rt, sqlite_store) == 1
    assert "i100" not in rt.state.counts()[0]
    assert [e[0] for e in rt.state.history(who)].count("i100") >= 1
    assert not cited_by_others(rt, users, who)
    apply_consent(rt, sqlite_store, who, True, True)
    assert cited_by_others(rt, users, who)


def _lists(ds: Dataset) -> tuple[Any, Any]:
    cls = get_model_class("pipeline")
    model = cls(dict(cls.quick_params)).fit(ds)
    lists = build_ranked_lists(serving_model(model), fingerprint="t")
    assert lists is not None
    return model, lists


def test_precomputed_lists_of_the_next_fit_leave_a_withheld_user_out(tmp_path: Path) -> None:
    toy = make_toy_platform()
    rt_users = [str(u) for u in toy.users.ids]
    store = Store.open(f"sqlite:///{tmp_path / 'a.db'}")
    store.import_dataset(toy)
    model, _ = _lists(store.to_dataset())
    cited = citations(_from_model(model, tmp_path / "m0"), rt_users)
    who = max(cited, key=lambda u: cited[u])
    store.consents.update(who, activity_for_others=False)
    honoured = store.to_dataset()
    store.close()
    ref_store = Store.open(f"sqlite:///{tmp_path / 'b.db'}")
    ref_store.import_dataset(_without_interactions(toy, who))
    reference = ref_store.to_dataset()
    ref_store.close()

    got_model, got = _lists(honoured)
    want_model, want = _lists(reference)
    for u in rt_users:
        if u == who:
            continue
        a, b = got.get(got_model.users_.get(u)), want.get(want_model.users_.get(u))
        assert a is not None and b is not None
        assert got_model.items_.lookup(a.final_items).tolist() == (
            want_model.items_.lookup(b.final_items).tolist()
        )
        np.testing.assert_allclose(a.final_scores, b.final_scores, rtol=1e-6)
        for text in a.explanations.values():
            assert who not in [str(ev.get("id")) for ev in _evidence(json.loads(text))]


def _from_model(model: Any, directory: Path) -> ModelRuntime:
    model.save(directory)
    return _runtime(directory, precompute=False)


def test_a_restarted_server_applies_the_stored_consents_before_serving(
    pipe: Path, sqlite_store: Store, tmp_path: Path
) -> None:
    import time

    from serendip.service.app import create_app
    from serendip.service.settings import Settings

    sqlite_store.import_dataset(make_toy_platform())
    version = sqlite_store.models.register("pipeline", str(pipe), {}, version="v1")
    sqlite_store.models.activate(version.version)
    who = str(make_toy_platform().users.ids[0])
    sqlite_store.consents.update(who, activity_for_others=False, personalization=False)
    settings = Settings(db_url=sqlite_store.url, artifacts_dir=tmp_path / "a", bootstrap=False)
    app = create_app(settings, store=sqlite_store)
    with TestClient(app) as client:
        deadline = time.monotonic() + 60
        while client.get("/readyz").status_code != 200:
            assert time.monotonic() < deadline
            time.sleep(0.1)
        rt: ModelRuntime = app.state.runtime
        assert who in rt.state.withheld() and not rt.personalized(who)
        assert rt.state.private_flags().get(who) is True  # never cited for others
