"""GET /v1/monitors: every monitor with value, thresholds and status from the store; the
thresholds file; read scope; the /metrics gauges."""

from __future__ import annotations

from pathlib import Path

from serendip.operations.monitors import run_monitors
from serendip.service.metrics import ServiceMetrics
from serendip.store import Store
from tests.conftest import make_toy_platform
from tests.operations.traffic import DAY, T, add_events, item_weights, platform_store
from tests.service.conftest import ClientFactory, FakeRuntime

DRIFT = {"item_popularity_psi", "item_js", "category_psi", "category_js"}


def _traffic(store: Store, *, shifted: bool) -> None:
    ds = make_toy_platform()
    platform_store(store, ds)
    add_events(store, ds, item_weights(ds), T - 8 * DAY, T - DAY, 2800, seed=1, prefix="ref")
    add_events(store, ds, item_weights(ds, shifted=shifted), T - DAY, T, 400, seed=2, prefix="c")


def test_shifted_traffic_is_listed_out_of_bounds(
    store: Store, fake_runtime: FakeRuntime, make_client: ClientFactory
) -> None:
    _traffic(store, shifted=True)
    client = make_client(store, fake_runtime)
    r = client.get("/v1/monitors", params={"end": T})
    assert r.status_code == 200, r.text
    body = r.json()
    assert set(body["out_of_bounds"]) >= DRIFT
    assert body["window_end"] == T and body["window_start"] == T - DAY
    cat = next(m for m in body["monitors"] if m["name"] == "category_psi")
    assert cat["out_of_bounds"] and cat["value"] > cat["max"] == 0.2
    assert cat["kind"] == "drift" and "category" in cat["description"]
    ctr = next(m for m in body["monitors"] if m["name"] == "click_through")
    assert ctr["value"] is None and "too few served lists" in ctr["note"]
    assert not ctr["out_of_bounds"]


def test_unchanged_traffic_is_quiet_and_the_file_sets_thresholds(
    sqlite_store: Store, fake_runtime: FakeRuntime, make_client: ClientFactory, tmp_path: Path
) -> None:
    _traffic(sqlite_store, shifted=False)
    quiet = make_client(sqlite_store, fake_runtime).get("/v1/monitors", params={"end": T})
    assert quiet.status_code == 200 and quiet.json()["out_of_bounds"] == []

    strict = tmp_path / "monitors.toml"
    strict.write_text("[thresholds.category_js]\nmax = 0.001\n")
    client = make_client(sqlite_store, fake_runtime, monitors_file=strict)
    body = client.get("/v1/monitors", params={"end": T}).json()
    assert body["out_of_bounds"] == ["category_js"]


def test_a_bad_monitors_file_is_a_503_naming_it(
    sqlite_store: Store, fake_runtime: FakeRuntime, make_client: ClientFactory, tmp_path: Path
) -> None:
    bad = tmp_path / "monitors.toml"
    bad.write_text("[thresholds.nope]\nmax = 1\n")
    r = make_client(sqlite_store, fake_runtime, monitors_file=bad).get("/v1/monitors")
    assert r.status_code == 503
    assert "monitors file" in r.json()["detail"] and "nope" in r.json()["detail"]


def test_monitors_need_the_read_scope(
    sqlite_store: Store, fake_runtime: FakeRuntime, make_client: ClientFactory
) -> None:
    keys = [
        {"name": "writer", "key": "w-secret", "scopes": ["write"]},
        {"name": "reader", "key": "r-secret", "scopes": ["read"]},
    ]
    client = make_client(sqlite_store, fake_runtime, api_keys=keys)
    assert client.get("/v1/monitors").status_code == 401
    r = client.get("/v1/monitors", headers={"Authorization": "Bearer w-secret"})
    assert r.status_code == 403
    r = client.get("/v1/monitors", headers={"Authorization": "Bearer r-secret"})
    assert r.status_code == 200


def test_monitor_values_and_status_reach_the_gauges(sqlite_store: Store) -> None:
    _traffic(sqlite_store, shifted=True)
    m = ServiceMetrics()
    m.observe_monitors(run_monitors(sqlite_store, end=T).results)
    text = m.render().decode()
    assert 'serendip_monitor_out_of_bounds{monitor="category_psi"} 1.0' in text
    assert 'serendip_monitor_out_of_bounds{monitor="event_rate_ratio"} 0.0' in text
    assert 'serendip_monitor_value{kind="drift",monitor="event_rate_ratio"} 1.0' in text
    assert 'serendip_monitor_value{kind="quality",monitor="click_through"}' not in text  # no data
    m.observe_exposures(3, experiment="exp1", variant="b")
    m.observe_ingest(5, 2)
    text = m.render().decode()
    assert 'serendip_exposures_logged_total{experiment="exp1",variant="b"} 3.0' in text
    assert 'serendip_events_ingested_total{outcome="duplicate"} 2.0' in text
