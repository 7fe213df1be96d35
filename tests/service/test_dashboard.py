"""The dashboard's pages (server-rendered HTML at `/` and `/dashboard/...`): sign-in with an admin
key, every page renders the store's and runtime's numbers, the user explorer shows reasons from
two versions side by side, mistakes answer 4xx with the reason. One app per module (toy
platform, real runtime serving item-kNN as v1, popularity registered as v2)."""

from __future__ import annotations

import contextlib
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from serendip.service.app import create_app
from serendip.service.runtime import ModelRuntime
from serendip.service.settings import ApiKey, Settings
from serendip.store import Store

ADMIN_KEY = "admin-secret-0123456789"
READ_KEY = "read-secret-0123456789"

PAGES = (
    "/",
    "/dashboard/leaderboard",
    "/dashboard/explorer",
    "/dashboard/experiments",
    "/dashboard/monitors",
    "/dashboard/models",
)


@dataclass
class Dash:
    store: Store
    runtime: ModelRuntime
    client: TestClient
    user: str  # a user with history


def build_store(directory: Path, toy_platform: Any, model_dirs: dict[str, Path]) -> Store:
    """A store with the toy platform, item-kNN registered and active as v1, popularity as v2."""
    store = Store.open(f"sqlite:///{directory / 'dash.db'}")
    store.import_dataset(toy_platform)
    store.models.register("item-knn", str(model_dirs["item-knn"]), {"ndcg@10": 0.21}, version="v1")
    store.models.register(
        "popularity", str(model_dirs["popularity"]), {"ndcg@10": 0.12}, version="v2"
    )
    store.models.activate("v1")
    return store


def keyed_settings(db_url: str) -> Settings:
    return Settings(
        db_url=db_url,
        bootstrap=False,
        api_keys=[
            ApiKey(name="ops", key=SecretStr(ADMIN_KEY), scopes=frozenset({"admin"})),
            ApiKey(name="reader", key=SecretStr(READ_KEY), scopes=frozenset({"read"})),
        ],
    )


def active_user(store: Store) -> str:
    with store.database.read() as conn:
        from sqlalchemy import func, select

        from serendip.store.repositories import EVENTS

        row = conn.execute(
            select(EVENTS.c.user_id).group_by(EVENTS.c.user_id).order_by(func.count().desc())
        ).first()
    assert row is not None
    return str(row[0])


@pytest.fixture(scope="module")
def dash(
    tmp_path_factory: pytest.TempPathFactory, toy_platform: Any, model_dirs: dict[str, Path]
) -> Iterator[Dash]:
    store = build_store(tmp_path_factory.mktemp("dash"), toy_platform, model_dirs)
    runtime = ModelRuntime(store)
    runtime.load(model_dirs["item-knn"], "v1")
    app = create_app(keyed_settings(store.url), store=store, runtime=runtime)
    with TestClient(app, follow_redirects=False) as client:
        r = client.post("/dashboard/login", data={"key": ADMIN_KEY, "next": "/"})
        assert r.status_code == 303, r.text
        yield Dash(store, runtime, client, active_user(store))
    store.close()


def test_pages_need_an_admin_sign_in_when_keys_are_configured(dash: Dash) -> None:
    anonymous = TestClient(dash.client.app, follow_redirects=False)
    r = anonymous.get("/dashboard/explorer?user=u1")
    assert r.status_code == 303
    assert r.headers["location"] == "/dashboard/login?next=%2Fdashboard%2Fexplorer%3Fuser%3Du1"
    assert anonymous.get("/dashboard/login").status_code == 200
    # a forged cookie opens nothing
    anonymous.cookies.set("serendip_dashboard", "0" * 64)
    assert anonymous.get("/").status_code == 303


def test_sign_in_refuses_wrong_and_read_only_keys_with_the_reason(dash: Dash) -> None:
    c = TestClient(dash.client.app, follow_redirects=False)
    r = c.post("/dashboard/login", data={"key": "nope"})
    assert r.status_code == 401 and "unknown API key" in r.text
    r = c.post("/dashboard/login", data={"key": READ_KEY})
    assert r.status_code == 403 and "lacks the &#39;admin&#39; scope" in r.text
    r = c.post("/dashboard/login", data={"key": ADMIN_KEY, "next": "//evil.example/x"})
    assert r.status_code == 303 and r.headers["location"] == "/"
    cookie = r.cookies.get("serendip_dashboard")
    assert cookie and ADMIN_KEY not in cookie  # an HMAC of the key, never the key
    set_cookie = r.headers["set-cookie"].lower()
    assert "httponly" in set_cookie and "samesite=strict" in set_cookie
    assert c.get("/dashboard/models").status_code == 200
    assert c.post("/dashboard/logout").status_code == 303


@pytest.mark.parametrize("path", PAGES)
def test_every_page_renders_with_a_strict_content_security_policy(dash: Dash, path: str) -> None:
    r = dash.client.get(path)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/html")
    csp = r.headers["content-security-policy"]
    assert "default-src 'none'" in csp and "unsafe-inline" not in csp
    nonce = re.search(r"'nonce-([^']+)'", csp)
    assert nonce and f'nonce="{nonce.group(1)}"' in r.text
    assert r.headers["cache-control"] == "no-store"
    assert 'name="viewport"' in r.text  # readable on a phone
    for href in PAGES:  # the navigation links every page
        assert f'href="{href}"' in r.text


def test_the_overview_shows_the_stores_counts_and_event_types(dash: Dash) -> None:
    text = dash.client.get("/").text
    for n in (dash.store.users.count(), dash.store.events.count(), dash.store.social.count()):
        assert f"{n:,}" in text
    assert "Event types" in text and "Recent activity" in text
    assert "v1" in text  # the model serving


def test_the_explorer_shows_history_followees_and_reasons_side_by_side(dash: Dash) -> None:
    user = dash.user
    r = dash.client.get("/dashboard/explorer", params={"user": user, "a": "v1", "b": "v2"})
    assert r.status_code == 200, r.text
    text = r.text
    assert "Recommendations · v1" in text and "Recommendations · v2" in text
    recs = dash.runtime.recommend(user, 10, explain=True)
    assert recs and recs[0].item in text
    reason = str((recs[0].explanation or {}).get("text", ""))
    assert reason and _html(reason) in text
    latest = dash.store.events.recent(user, 1)[0]
    assert latest.item in text
    for followee in dash.store.social.followees(user)[:3]:
        assert f"user={followee}" in text
    # the dashboard's own look at a user is no exposure
    assert dash.store.exposures.for_user(user) == []


def test_the_explorer_answers_a_bad_version_with_422_and_the_reason(dash: Dash) -> None:
    r = dash.client.get("/dashboard/explorer", params={"user": "u1", "b": "v99"})
    assert r.status_code == 422
    assert "No model version &#39;v99&#39; is registered" in r.text
    r = dash.client.get("/dashboard/explorer", params={"user": "x" * 300})
    assert r.status_code == 422  # FastAPI's validation, naming the field
    assert dash.client.get("/dashboard/explorer", params={"k": 0}).status_code == 422


def test_an_unknown_user_gets_the_cold_start_list(dash: Dash) -> None:
    r = dash.client.get("/dashboard/explorer", params={"user": "nobody-at-all"})
    assert r.status_code == 200
    assert "Nothing is stored about this user" in r.text
    assert r.text.count('class="rec"') >= 1


@contextlib.contextmanager
def _study(dash: Dash, path: Path | None) -> Iterator[None]:
    """Point the running app's settings at a study directory (as --study would). Starlette's
    State keeps attributes in a dict, which monkeypatch would delete on undo: restored here."""
    state = dash.client.app.state  # type: ignore[attr-defined]
    kept = state.settings
    state.settings = kept.model_copy(update={"study_dir": path})
    try:
        yield
    finally:
        state.settings = kept


def test_the_leaderboard_falls_back_to_the_model_versions(dash: Dash) -> None:
    with _study(dash, None):
        text = dash.client.get("/dashboard/leaderboard").text
    assert "No study directory is configured" in text
    assert text.index("v1 (item-knn)") < text.index("v2 (popularity)")  # by NDCG@10
    assert "0.2100" in text


def test_the_leaderboard_reads_a_study_directory(dash: Dash, tmp_path: Path) -> None:
    from serendip.evaluation.study.results import write_results

    def row(model: str, ndcg: float, status: str = "ok") -> dict[str, object]:
        return {
            "dataset": "toy",
            "protocol": "temporal",
            "model": model,
            "kind": "baseline",
            "status": status,
            "error": "" if status == "ok" else "out of memory",
            "metrics": {"ndcg@10": ndcg, "recall@10": ndcg / 2} if status == "ok" else {},
            "cost": {"fit_seconds": 1.5, "recommend_single_p50_ms": 2.0},
        }

    results = {
        "study": {"profile": "quick", "created": "2026-12-06"},
        "rows": [row("popularity", 0.05), row("ease", 0.3125), row("neumf", 0, "failed")],
        "significance": [],
    }
    write_results(results, tmp_path)
    with _study(dash, tmp_path):
        text = dash.client.get("/dashboard/leaderboard").text
    assert "toy · temporal" in text and "quick" in text
    assert text.index(">ease<") < text.index(">popularity<")
    assert "0.3125" in text and "1.5 s" in text
    assert "neumf" in text and "out of memory" in text
    with _study(dash, tmp_path / "missing"):
        assert "could not be read" in dash.client.get("/dashboard/leaderboard").text


def test_experiments_show_their_state_and_statistics(dash: Dash) -> None:
    spec = {"variants": [{"name": "control"}, {"name": "pop", "model_version": "v2"}]}
    dash.store.experiments.create("exp-draft", "ab", spec)
    text = dash.client.get("/dashboard/experiments").text
    assert "exp-draft" in text and "Not started" in text
    assert "pop → v2" in text


def test_monitors_show_every_monitor_with_its_bounds(dash: Dash) -> None:
    text = dash.client.get("/dashboard/monitors").text
    if "not available" in text:
        pytest.skip("serendip.operations.monitors is not in this build")
    assert "Live quality" in text and "Drift" in text
    assert "click_through" in text


def test_the_models_page_lists_versions_with_their_actions(dash: Dash) -> None:
    text = dash.client.get("/dashboard/models").text
    assert 'id="active-version">v1<' in text
    assert 'data-admin="activate" data-version="v2"' in text
    assert 'data-version="v1"' not in text  # the serving one has no activate button
    assert 'id="admin-key"' in text and 'data-admin="rollback"' in text


def test_the_models_page_shows_a_retrained_versions_lineage(dash: Dash, tmp_path: Path) -> None:
    lineage = {"parent": "v1", "gate": {"passed": False, "reason": "ndcg@10 0.1 < 0.2"}}
    dash.store.models.register("item-knn", str(tmp_path), {}, version="v3", lineage=lineage)
    text = dash.client.get("/dashboard/models").text
    assert "from v1" in text and "gate refused: ndcg@10 0.1 &lt; 0.2" in text


def test_without_keys_the_pages_are_open(dash: Dash) -> None:
    app = create_app(
        Settings(db_url=dash.store.url, bootstrap=False), store=dash.store, runtime=dash.runtime
    )
    with TestClient(app, follow_redirects=False) as c:
        r = c.get("/dashboard/models")
        assert r.status_code == 200
        assert "no API keys" in r.text and 'id="admin-key"' not in r.text
        assert c.get("/dashboard/login").status_code == 303


def test_every_page_renders_on_an_empty_store_before_any_model_is_active(tmp_path: Path) -> None:
    store = Store.open(f"sqlite:///{tmp_path / 'empty.db'}")
    app = create_app(Settings(db_url=store.url, bootstrap=False), store=store)
    try:
        with TestClient(app) as c:
            for path in PAGES:
                r = c.get(path)
                assert r.status_code == 200, (path, r.text)
            assert "no model is active" in c.get("/").text
            r = c.get("/dashboard/explorer", params={"user": "someone"})
            assert "No model is active yet." in r.text
    finally:
        store.close()


def test_the_overview_is_fast_enough_for_a_dashboard(dash: Dash) -> None:
    start = time.perf_counter()
    for _ in range(3):
        assert dash.client.get("/").status_code == 200
    assert (time.perf_counter() - start) / 3 < 2.0


def _html(text: str) -> str:
    import html

    return html.escape(text, quote=True)
