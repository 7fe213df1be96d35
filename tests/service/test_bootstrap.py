"""First start: an empty store gets the synthetic platform and an active default model, and
`/readyz` turns 200 only then (or, with a fast model, as soon as the fast model serves, which the
default model replaces when its fit ends)."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

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
        bootstrap_fast_model=None,  # the one-step first start: the default model only
    )
    with TestClient(create_app(settings)) as client:
        ready = wait_ready(client)
        assert ready["model"] == "popularity" and ready["upgrading_to"] is None
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


def _gated_fits(
    monkeypatch: pytest.MonkeyPatch, gated: str, *, fail: set[str] | None = None
) -> tuple[threading.Event, threading.Event]:
    """Make the fit of model `gated` wait for the returned `release` event (`entered` is set when
    it starts), and the creation of every model in `fail` raise."""
    from serendip.models import registry

    real: Callable[..., Any] = registry.create_model
    entered, release = threading.Event(), threading.Event()

    def create_model(name: str, params: dict[str, Any] | None = None) -> Any:
        if name in (fail or set()):
            raise RuntimeError(f"{name} exploded")
        model = real(name, params)
        if name == gated:
            fit = model.fit

            def gated_fit(dataset: Any) -> Any:
                entered.set()
                assert release.wait(60), "the test never released the fit"
                return fit(dataset)

            model.fit = gated_fit
        return model

    monkeypatch.setattr(registry, "create_model", create_model)
    return entered, release


def _bootstrap_settings(tmp_path: Path, **overrides: Any) -> Settings:
    return Settings(
        db_url=f"sqlite:///{tmp_path / 'db.sqlite'}",
        artifacts_dir=tmp_path / "artifacts",
        bootstrap_preset="tiny",
        default_model="item-knn",  # "the slow one" here: the tests gate its fit
        bootstrap_fast_model="popularity",
        **overrides,
    )


def _wait_for(client: TestClient, done: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
    deadline = time.monotonic() + 60
    while not done(body := client.get("/readyz").json()):
        assert time.monotonic() < deadline, body
        time.sleep(0.05)
    return body


def test_first_start_serves_a_fast_model_then_swaps_to_the_default(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    entered, release = _gated_fits(monkeypatch, "item-knn")
    fast_entered, fast_release = _gated_fits(monkeypatch, "popularity")
    settings = _bootstrap_settings(tmp_path)
    caplog.set_level(logging.INFO, logger="serendip.service")
    with TestClient(create_app(settings)) as client:
        assert fast_entered.wait(60)
        r = client.get("/readyz")
        assert r.status_code == 503 and r.json()["upgrading_to"] is None
        assert r.json()["stage"].startswith("fitting the fast model 'popularity' (")
        assert r.json()["reason"].startswith("first start: fitting the fast model")
        fast_release.set()
        ready = wait_ready(client)
        assert ready["model"] == "popularity"
        fast = ready["model_version"]
        assert entered.wait(60)
        # the fast model answers while the default model's fit waits
        upgrading = client.get("/readyz").json()
        assert upgrading["ready"] and upgrading["model_version"] == fast
        assert upgrading["upgrading_to"] == "item-knn"
        assert upgrading["stage"].startswith("fitting the default model 'item-knn' (")
        recs = client.get("/v1/users/u000001/recommendations", params={"explain": True}).json()
        assert len(recs["items"]) == 10 and recs["model_version"] == fast
        assert recs["items"][0]["explanation"]["text"]
        release.set()
        done = _wait_for(client, lambda b: b["model"] == "item-knn" and b["stage"] is None)
        assert done["model_version"] != fast and done["upgrading_to"] is None
        models = client.get("/v1/models").json()
        assert models["active"] == done["model_version"]
        first, second = sorted(models["versions"], key=lambda v: v["created_at"])
        assert first["name"] == "popularity" and first["metrics"]["stand_in_for"] == "item-knn"
        assert second["name"] == "item-knn" and "stand_in_for" not in second["metrics"]
        recs = client.get("/v1/users/u000001/recommendations").json()
        assert recs["model_version"] == done["model_version"]
    logs = caplog.text
    assert "fitting the fast model 'popularity'" in logs
    assert f"{fast} (popularity) serving after" in logs
    assert "fitting the default model 'item-knn'" in logs
    assert "fitted the default model 'item-knn' in" in logs
    assert f"swapped {fast} (popularity) for {done['model_version']} (item-knn)" in logs


def test_a_failed_fast_model_leaves_the_default_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _gated_fits(monkeypatch, "none", fail={"popularity"})
    with TestClient(create_app(_bootstrap_settings(tmp_path))) as client:
        assert wait_ready(client)["model"] == "item-knn"
        (entry,) = client.get("/v1/models").json()["versions"]
        assert entry["name"] == "item-knn"


def test_a_restart_resumes_the_default_models_fit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The default model's fit failed (or the process stopped during it): the fast model keeps
    serving, and the next start loads it and fits the default model again."""
    settings = _bootstrap_settings(tmp_path)
    with monkeypatch.context() as m:
        _gated_fits(m, "none", fail={"item-knn"})
        app = create_app(settings)
        with TestClient(app) as client:
            fast = wait_ready(client)
            assert fast["model"] == "popularity"
            app.state.background.join(60)  # the first start ends: the default model's fit failed
            assert not app.state.background.is_alive()
            done = client.get("/readyz").json()
            assert done["model_version"] == fast["model_version"] and done["upgrading_to"] is None
    entered, release = _gated_fits(monkeypatch, "item-knn")
    with TestClient(create_app(settings)) as client:
        assert wait_ready(client)["model_version"] == fast["model_version"]
        assert entered.wait(60)
        upgrading = client.get("/readyz").json()
        assert upgrading["model"] == "popularity" and upgrading["upgrading_to"] == "item-knn"
        release.set()
        done = _wait_for(client, lambda b: b["model"] == "item-knn" and b["stage"] is None)
        assert done["upgrading_to"] is None
        assert len(client.get("/v1/models").json()["versions"]) == 2


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
