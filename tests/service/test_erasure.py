"""`DELETE /v1/users/{id}` on a running in-process server: afterwards no table of the store and
no file under the artifacts directory holds the user's ID, the active model is the one a fit on
data that never held the user gives (item-kNN, popularity, iALS with its fixed default seed,
the pipeline: equal to the last digit), erased
data does not come back through ingestion or a re-import, and other users' explanations stop
citing the user at once."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from serendip.data.dataset import Dataset
from serendip.models import get_model_class
from serendip.models.registry import create_model
from serendip.privacy.pseudonym import Pseudonymizer
from serendip.service.privacy import erase_user, files_naming, make_context
from serendip.service.runtime import ModelRuntime
from serendip.service.settings import Settings
from serendip.store import Store
from serendip.store.schema import Base
from tests.conftest import make_toy_platform
from tests.service.conftest import ClientFactory, ready_lists
from tests.service.test_privacy_consent import citations, cited_by_others

KEYS = [
    {"name": "writer", "key": "w-secret", "scopes": ["write"]},
    {"name": "ops", "key": "a-secret", "scopes": ["admin"]},
]
ADMIN = {"Authorization": "Bearer a-secret"}
WRITE = {"Authorization": "Bearer w-secret"}
WHO = "u007"


def tables_naming(store: Store, needle: str) -> list[str]:
    """`table.column` of every stored value (JSON included) that contains `needle`."""
    hits = []
    with store.database.read() as conn:
        for table in Base.metadata.sorted_tables:
            for row in conn.execute(select(table)):
                for col, value in row._mapping.items():
                    if value is not None and needle in str(value):
                        hits.append(f"{table.name}.{col}")
    return sorted(set(hits))


def without(ds: Dataset, user: str) -> Dataset:
    """The dataset as if `user` had never been on the platform."""
    inter = ds.interactions_frame()
    inter = inter[inter["user"] != user]
    items = ds.items_frame()
    items["author"] = items["author"].where(items["author"] != user, "someone-else")
    um = ds.user_meta
    users = pd.DataFrame(
        {
            "user": ds.users.ids.astype(str),
            "created_at": um.created_at,
            "interests": [tuple(x) for x in um.interests],
            "private": um.private,
        }
    )
    users = users[users["user"] != user]
    social = ds.social_frame()
    social = social[(social["follower"] != user) & (social["followee"] != user)]
    return Dataset.from_frames(inter, items, users, social, name=ds.name)


def _serve(
    store: Store, artifacts: Path, model: str, make_client: ClientFactory, **settings: Any
) -> tuple[TestClient, ModelRuntime]:
    """The toy platform in `store`, `model` fitted on it, registered, active and served."""
    store.import_dataset(make_toy_platform())
    directory = artifacts / f"{model}-initial"
    _fit(model, store.to_dataset()).save(directory)
    version = store.models.register(model, str(directory.resolve()))
    store.models.activate(version.version)
    runtime = ModelRuntime(store, freeze_gc=False)  # the pipeline saves its lists into it
    runtime.load(directory, version.version)
    if runtime.snapshot is not None and runtime.snapshot.lists is not None:
        ready_lists(runtime)
    client = make_client(store, runtime, api_keys=KEYS, artifacts_dir=artifacts, **settings)
    return client, runtime


def _fit(model: str, ds: Dataset) -> Any:
    """`model` fitted on `ds` (the pipeline with its quick parameters)."""
    params = dict(get_model_class(model).quick_params) if model == "pipeline" else {}
    return create_model(model, params).fit(ds)


def _scores(model: Any, users: list[str]) -> tuple[np.ndarray, np.ndarray]:
    recs = model.recommend(users, 10)
    ids = np.array([model.items_.lookup(row[row >= 0]).tolist() for row in recs.items], object)
    return ids, recs.scores


@pytest.mark.parametrize("model", ["item-knn", "popularity", "ials", "pipeline"])
def test_erasure_through_the_api_leaves_no_trace_and_an_exact_model(
    model: str, sqlite_store: Store, tmp_path: Path, make_client: ClientFactory
) -> None:
    artifacts = tmp_path / "artifacts"
    client, runtime = _serve(sqlite_store, artifacts, model, make_client)
    before = runtime.active_version
    assert tables_naming(sqlite_store, WHO) and files_naming(artifacts, [WHO])

    r = client.delete(f"/v1/users/{WHO}", headers=ADMIN)
    assert r.status_code == 200, r.text
    receipt = r.json()
    assert receipt["store"]["events"] > 0 and receipt["store"]["follows"] > 0
    assert receipt["store"]["profile"] == 1 and receipt["refit"] == "scheduled"
    assert "rollback" in receipt["artifacts"]
    job = client.app.state.privacy.refit  # type: ignore[attr-defined]
    assert job.wait(60.0) and job.error is None
    assert runtime.active_version != before
    if runtime.snapshot is not None and runtime.snapshot.lists is not None:
        ready_lists(runtime)  # the new version's lists are saved into its directory too
        assert any(p.name == "serving-lists" for p in artifacts.rglob("*"))

    # no trace: every table, every file under the artifacts directory
    assert tables_naming(sqlite_store, WHO) == []
    assert files_naming(artifacts, [WHO]) == []
    erasures = sqlite_store.erasures.list()
    assert len(erasures) == 1 and WHO not in str(erasures[0].receipt)
    # the versions trained with the user are retired for good: rollback cannot reach them
    old = sqlite_store.models.get(str(before))
    assert old is not None and old.status == "failed" and "erasure" in str(old.error)
    assert client.post("/v1/models/rollback", headers=ADMIN).status_code == 409

    # the active model is the one fitted on data that never held the user
    ref_store = Store.open(f"sqlite:///{tmp_path / 'ref.db'}")
    ref_store.import_dataset(without(make_toy_platform(), WHO))
    reference = _fit(model, ref_store.to_dataset())
    ref_store.close()
    active = runtime.snapshot.model  # type: ignore[union-attr]
    users = [u for u in active.users_.ids.astype(str).tolist()]
    assert WHO not in users and users == reference.users_.ids.astype(str).tolist()
    got_items, got_scores = _scores(active, users)
    want_items, want_scores = _scores(reference, users)
    assert [list(x) for x in got_items] == [list(x) for x in want_items]
    np.testing.assert_array_equal(got_scores, want_scores)  # exact, not approximate


def test_erased_data_does_not_come_back(
    sqlite_store: Store, tmp_path: Path, make_client: ClientFactory
) -> None:
    artifacts = tmp_path / "artifacts"
    client, _ = _serve(sqlite_store, artifacts, "popularity", make_client)
    r = client.delete(f"/v1/users/{WHO}", params={"refit": "false"}, headers=ADMIN)
    assert r.status_code == 200 and r.json()["refit"] == "not requested"

    event = {"event_id": "late", "user": WHO, "item": "i001", "event": "like"}
    r = client.post("/v1/events", json=event, headers=WRITE)
    assert r.status_code == 200 and r.json() == {"received": 1, "accepted": 0, "duplicates": 0}
    assert client.put(f"/v1/users/{WHO}", json={"interests": []}, headers=WRITE).status_code == 409
    assert client.put(f"/v1/users/u001/follows/{WHO}", headers=WRITE).status_code == 409
    assert client.put(f"/v1/users/{WHO}/consent", json={}, headers=WRITE).status_code == 409
    # a re-import of the platform (the same synthetic data, say) skips the erased user
    counts = sqlite_store.import_dataset(make_toy_platform())
    assert counts["erased_skipped"] == 1
    assert tables_naming(sqlite_store, WHO) == []
    assert WHO not in sqlite_store.to_dataset().users.ids.astype(str)


def test_erasing_an_unknown_user_gives_an_empty_receipt(
    sqlite_store: Store, tmp_path: Path, make_client: ClientFactory
) -> None:
    client, _ = _serve(sqlite_store, tmp_path / "artifacts", "popularity", make_client)
    r = client.delete("/v1/users/nobody", params={"refit": "false"}, headers=ADMIN)
    assert r.status_code == 200
    assert set(r.json()["store"].values()) == {0}
    assert client.delete("/v1/users/nobody", headers=WRITE).status_code == 403


def test_other_users_explanations_stop_citing_an_erased_user_at_once(
    pipe: Path, sqlite_store: Store, tmp_path: Path
) -> None:
    users = [str(u) for u in make_toy_platform().users.ids]
    paths = []
    for kwargs in ({}, {"precompute": False}, {"cache_size": 0}):
        rt = ModelRuntime(freeze_gc=False, **kwargs)  # type: ignore[arg-type]
        rt.load(pipe, "v1")
        if rt.snapshot is not None and rt.snapshot.lists is not None:
            ready_lists(rt)
        paths.append(rt)
    counts = citations(paths[0], users)
    who = max(counts, key=lambda u: counts[u])
    ctx = make_context(Settings(artifacts_dir=tmp_path / "artifacts"), sqlite_store)
    for rt in paths:
        assert cited_by_others(rt, users, who)  # caches and lists warm, citing `who`
        rt.on_events([{"user": who, "item": "i001", "event": "like", "timestamp": 1.8e9}])
        receipt = erase_user(ctx, rt, who, refit=False)
        assert receipt.live["live_events"] == 1
        assert not cited_by_others(rt, users, who), "an erased user is still cited"
        assert rt.state.history(who) == [] and "i001" not in rt.state.counts()[0]


def test_pseudonymized_erasure_takes_the_raw_id(
    sqlite_store: Store, tmp_path: Path, make_client: ClientFactory
) -> None:
    secret = "a-pseudonym-secret-of-some-length"
    client = make_client(
        sqlite_store,
        ModelRuntime(sqlite_store, precompute=False, freeze_gc=False),
        api_keys=KEYS,
        artifacts_dir=tmp_path / "artifacts",
        pseudonym_secret=secret,
    )
    assert client.put("/v1/users/alice", json={"interests": ["x"]}, headers=WRITE).is_success
    client.post(
        "/v1/events",
        json={"event_id": "e1", "user": "alice", "item": "i1", "event": "like"},
        headers=WRITE,
    )
    assert client.put("/v1/users/alice/follows/bob", headers=WRITE).is_success
    assert tables_naming(sqlite_store, "alice") == [] and tables_naming(sqlite_store, "bob") == []
    pseudonym = Pseudonymizer(secret.encode()).user("alice")
    assert tables_naming(sqlite_store, pseudonym)  # stored under the pseudonym only
    export = client.get("/v1/users/alice/export", headers=ADMIN).json()
    assert export["user"] == "alice" and len(export["events"]) == 1
    assert export["following"][0]["followee"] == Pseudonymizer(secret.encode()).user("bob")
    r = client.delete("/v1/users/alice", headers=ADMIN)
    assert r.status_code == 200 and r.json()["store"]["events"] == 1
    assert tables_naming(sqlite_store, pseudonym) == []
    assert math.isfinite(r.json()["erased_at"])
