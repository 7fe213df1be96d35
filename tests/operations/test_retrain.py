"""Gated retraining on the tiny synthetic platform: a worse candidate is refused, a better one is
promoted and a running server serves it without a restart; lineage; the gate's rule."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from serendip import __version__
from serendip.errors import ConfigError, DataError
from serendip.operations.retrain import (
    candidate_like_active,
    fit_candidate,
    gate_passes,
    retrain,
)
from serendip.service.app import create_app
from serendip.service.settings import Settings
from serendip.store import EventIn, Store
from tests.service.conftest import wait_ready


@pytest.fixture
def store(tiny_url: str) -> Iterator[Store]:
    s = Store.open(tiny_url)
    yield s
    s.close()


def served_version(client: TestClient, user: str, want: str, timeout: float = 20.0) -> str:
    """The model version of `user`'s recommendations once it is `want` (or the last seen)."""
    deadline = time.monotonic() + timeout
    got = None
    while time.monotonic() < deadline:
        r = client.get(f"/v1/users/{user}/recommendations", params={"k": 5})
        assert r.status_code == 200, r.text
        got = r.json()["model_version"]
        if got == want:
            break
        time.sleep(0.1)
    return str(got)


def server(url: str, artifacts: Path) -> TestClient:
    """An in-process server on the store at `url`, watching the active version every 0.2 s."""
    app = create_app(Settings(db_url=url, artifacts_dir=artifacts, bootstrap=False))
    app.state.model_watch_s = 0.2
    return TestClient(app)


def test_a_worse_candidate_is_refused_and_the_active_model_stays(
    store: Store, tmp_path: Path
) -> None:
    first = retrain(store, tmp_path, fit_candidate("item-knn"))
    assert first.promoted and first.reason == "no active model to compare with"
    assert first.version is not None and first.active == first.version.version

    worse = retrain(store, tmp_path, fit_candidate("random"))
    assert not worse.promoted
    assert "below the active model's" in worse.reason
    assert worse.active_metrics is not None
    assert worse.candidate_metrics["ndcg@10"] < worse.active_metrics["ndcg@10"] * 0.99
    assert worse.version is None  # nothing registered
    assert [v.version for v in store.models.list()] == [first.version.version]
    active = store.models.active()
    assert active is not None and active.version == first.version.version


def test_a_better_candidate_is_promoted_and_served_without_a_restart(
    tiny_url: str, store: Store, tmp_path: Path
) -> None:
    seed = retrain(store, tmp_path, fit_candidate("random"))
    assert seed.version is not None
    v1 = seed.version.version
    with server(tiny_url, tmp_path) as client:
        wait_ready(client)
        user = "u0001" if store.events.recent("u0001", 1) else store.events.since(0, 1)[0].user
        assert served_version(client, user, v1) == v1

        other = Store.open(tiny_url)  # another process: `serendip retrain` from cron
        try:
            better = retrain(other, tmp_path, fit_candidate("item-knn"))
        finally:
            other.close()
        assert better.promoted, better.reason
        assert better.version is not None
        v2 = better.version.version
        assert better.candidate_metrics["ndcg@10"] > better.active_metrics["ndcg@10"]  # type: ignore[index]

        assert served_version(client, user, v2) == v2  # no restart, no API call
        assert client.get("/readyz").json()["model_version"] == v2
        metrics = client.get("/metrics").text
        assert f'serendip_model_info{{model="item-knn",version="{v2}"}} 1.0' in metrics
        assert "serendip_model_age_seconds" in metrics

        # `serendip rollback` is one store call; the server follows it too
        store.models.rollback()
        assert served_version(client, user, v1) == v1


def test_lineage_records_window_parameters_metrics_code_and_parent(
    store: Store, tmp_path: Path
) -> None:
    parent = retrain(store, tmp_path, fit_candidate("popularity"))
    assert parent.version is not None
    report = retrain(store, tmp_path, fit_candidate("item-knn", {"k": 30}), window_days=20)
    assert report.promoted and report.version is not None
    version = store.models.get(report.version.version)
    assert version is not None
    lin = version.lineage
    assert lin["parent"] == parent.version.version
    assert lin["model"] == "item-knn" and lin["params"]["k"] == 30
    newest = store.events.newest_timestamp()
    assert newest is not None and lin["data_window"]["end"] == newest
    assert lin["data_window"]["start"] == pytest.approx(newest - 20 * 86_400)
    assert 0 < lin["holdout"]["test_events"] < lin["data_window"]["events"]
    assert set(lin["metrics"]) == {"candidate", "active"}
    assert lin["metrics"]["candidate"]["ndcg@10"] == report.candidate_metrics["ndcg@10"]
    assert lin["gate"]["passed"] and lin["gate"]["tolerance"] == 0.01
    # the parent's data reaches past the cut: its recipe was refitted, and the lineage says so
    assert lin["gate"]["active_judged"].startswith("recipe refitted")
    assert lin["code_version"].startswith(__version__)
    assert "refitted on the whole window" in lin["refit"]
    manifest = json.loads((Path(version.path) / "manifest.json").read_text())
    assert manifest["lineage"]["parent"] == parent.version.version
    assert version.metrics["holdout_ndcg@10"] == report.candidate_metrics["ndcg@10"]


def test_a_scheduled_retrain_refits_the_active_recipe(store: Store, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no model version is active"):
        candidate_like_active(store)
    retrain(store, tmp_path, fit_candidate("item-knn", {"k": 25}))
    again = candidate_like_active(store)
    assert again.name == "item-knn" and again.params["k"] == 25
    report = retrain(store, tmp_path, again)
    assert report.promoted  # the same recipe on the same data: equal, within the tolerance


def test_the_gate_rule() -> None:
    assert gate_passes(0.099, 0.1, 0.01, "ndcg@10").passed  # 1% worse: within the tolerance
    refused = gate_passes(0.098, 0.1, 0.01, "ndcg@10")
    assert not refused.passed and "floor 0.0990" in refused.reason
    assert not gate_passes(0.0999, 0.1, 0.0, "ndcg@10").passed
    assert gate_passes(0.0, None, 0.01, "ndcg@10").passed


def test_bad_requests_are_errors_before_any_fit(tmp_path: Path, store: Store) -> None:
    with pytest.raises(ConfigError, match="unknown model 'nope'"):
        fit_candidate("nope")
    with pytest.raises(ConfigError, match="tolerance"):
        retrain(store, tmp_path, fit_candidate("popularity"), tolerance=1.5)
    empty = Store.open("sqlite:///:memory:")
    try:
        with pytest.raises(DataError, match="no events"):
            retrain(empty, tmp_path, fit_candidate("popularity"))
    finally:
        empty.close()


def test_an_active_model_whose_data_ends_before_the_holdout_is_judged_as_served(
    store: Store, tmp_path: Path
) -> None:
    first = retrain(store, tmp_path, fit_candidate("item-knn"))
    assert first.version is not None
    newest = store.events.newest_timestamp()
    assert newest is not None
    # a month of new traffic after the fit: the newest half of the events again, each on the
    # next item of the catalog (new user-item pairs)
    events = store.events.since(0)
    later = events[len(events) // 2 :]
    ids = store.catalog.all_ids()
    nxt = {a: b for a, b in zip(ids, ids[1:] + ids[:1], strict=True)}
    shift = newest + 30 * 86_400 - later[0].timestamp
    store.events.add_batch(
        [
            EventIn(f"later:{j}", e.user, nxt.get(e.item, e.item), e.event, e.timestamp + shift)
            for j, e in enumerate(later)
        ]
    )
    report = retrain(store, tmp_path, fit_candidate("popularity"))
    assert report.lineage["holdout"]["cut"] > newest
    assert report.lineage["gate"]["active_judged"].startswith("artifact as served")
    assert report.active_metrics is not None
