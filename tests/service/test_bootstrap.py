"""First start: an empty store gets the synthetic platform and an active default model, and
`/readyz` turns 200 only then."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from serendip.errors import ConfigError
from serendip.service.app import create_app
from serendip.service.bootstrap import FALLBACK_MODEL, default_model_name
from serendip.service.settings import Settings
from tests.service.conftest import wait_ready


def test_first_start_loads_a_platform_and_serves(tmp_path: Path) -> None:
    settings = Settings(
        db_url=f"sqlite:///{tmp_path / 'db.sqlite'}",
        artifacts_dir=tmp_path / "artifacts",
        bootstrap_preset="tiny",
        default_model="popularity",
    )
    with TestClient(create_app(settings)) as client:
        ready = wait_ready(client)
        version = ready["model_version"]
        models = client.get("/v1/models").json()
        assert models["active"] == version
        (entry,) = models["versions"]
        assert entry["name"] == "popularity" and entry["metrics"]["n_interactions"] > 10_000
        assert entry["metrics"]["trained_on"] == "synthetic:tiny:seed42"
        recs = client.get("/v1/users/u000001/recommendations", params={"explain": True}).json()
        assert len(recs["items"]) == 10 and recs["model_version"] == version
        assert 'serendip_model_version_info{version="' + str(version) in client.get("/metrics").text

    # second start: the active version loads at once, no new bootstrap
    with TestClient(create_app(settings)) as client:
        assert wait_ready(client)["model_version"] == version
        assert len(client.get("/v1/models").json()["versions"]) == 1


def test_no_bootstrap_means_not_ready_with_a_reason(tmp_path: Path) -> None:
    settings = Settings(db_url=f"sqlite:///{tmp_path / 'db.sqlite'}", bootstrap=False)
    with TestClient(create_app(settings)) as client:
        r = client.get("/readyz")
        assert r.status_code == 503 and "activate" in r.json()["reason"]
        assert client.get("/healthz").status_code == 200
        ev = {"event_id": "e1", "user": "u", "item": "i", "event": "view"}
        assert client.post("/v1/events", json=ev).status_code == 200  # ingestion works unready


def test_default_model_choice() -> None:
    assert default_model_name("ials") == "ials"
    assert default_model_name() in ("pipeline", FALLBACK_MODEL)
    with pytest.raises(ConfigError, match="unknown default model 'nope'"):
        default_model_name("nope")


def test_active_version_that_fails_to_load_is_reported(tmp_path: Path) -> None:
    from serendip.store import Store

    settings = Settings(db_url=f"sqlite:///{tmp_path / 'db.sqlite'}")
    with Store.open(settings.db_url) as store:
        v = store.models.register("item-knn", str(tmp_path / "gone")).version
        store.models.activate(v)
    with TestClient(create_app(settings)) as client:
        deadline = time.monotonic() + 30
        while "loading" in (reason := client.get("/readyz").json()["reason"] or ""):
            assert time.monotonic() < deadline
            time.sleep(0.05)
        assert f"active model {v} failed to load" in reason
        assert client.get("/healthz").status_code == 200
        assert client.get("/v1/users/u1/recommendations").status_code == 503


def test_fit_uses_the_window_and_params_and_saves_the_serving_lists(tmp_path: Path) -> None:
    """`train_window_days` fits on recent events only, `default_model_params` reach the
    model, and a pipeline is saved with its precomputed lists, which the next load finds."""
    from serendip.models import get_model_class
    from serendip.service.bootstrap import fit_and_register
    from serendip.service.runtime import ModelRuntime
    from serendip.serving.precompute import LISTS_DIR
    from serendip.store import Store
    from tests.conftest import make_toy_platform

    try:
        cls = get_model_class("pipeline")
    except ConfigError:
        pytest.skip("pipeline model not registered")
    ds = make_toy_platform()
    settings = Settings(
        db_url=f"sqlite:///{tmp_path / 'db.sqlite'}",
        artifacts_dir=tmp_path / "artifacts",
        default_model="pipeline",
        default_model_params=dict(cls.quick_params),
        train_window_days=20,
    )
    store = Store.open(settings.db_url)
    try:
        version = fit_and_register(store, ds, settings, source="toy")
    finally:
        store.close()
    metrics = version.metrics
    assert 0 < metrics["n_interactions"] < ds.n_interactions
    assert metrics["trained_on"] == "toy:last20d" and metrics["lists_seconds"] > 0
    assert (Path(version.path) / LISTS_DIR / "meta.json").is_file()
    rt = ModelRuntime(build_in_background=False)
    rt.load(Path(version.path), version.version)
    assert rt.snapshot is not None and rt.snapshot.lists is not None
    assert rt.snapshot.lists.state == "ready"
