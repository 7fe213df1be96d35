"""The dashboard in real headless Chromium (Debian's `chromium`, driven by Playwright; nothing
downloads a browser) against a real uvicorn server on a free loopback port.

Every page loads without a console error (a Content-Security-Policy violation is one) and
without sideways scrolling on a phone; the user explorer shows recommendations with reasons
from two versions; the admin actions (activate, roll back) work from the page with the key
entered at sign-in. The run writes a screenshot of each page, laptop and phone size, to
`$SERENDIP_SCREENSHOTS` (default: a temporary directory) and prints their paths.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import uvicorn

from serendip.service.app import create_app
from serendip.service.process import free_port
from serendip.service.runtime import ModelRuntime
from serendip.store import EventIn, Store
from serendip.store.operations import ExposureIn
from tests.browser import CHROMIUM_ARGS, chromium_path
from tests.service.test_dashboard import ADMIN_KEY, PAGES, active_user, build_store, keyed_settings

pytestmark = pytest.mark.browser

LAPTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}


@dataclass
class Live:
    url: str
    store: Store
    runtime: ModelRuntime
    user: str
    shots: Path
    written: list[Path] = field(default_factory=list)


def add_live_traffic(store: Store, n_lists: int = 120) -> None:
    """Lists served since a running experiment started (alternating between its variants) and
    the clicks on them, so the experiment's statistics and the monitors have data."""
    items = store.catalog.all_ids()[:30]
    spec = {
        "variants": [
            {"name": "control", "model_version": "v1"},
            {"name": "pop", "model_version": "v2"},
        ],
        "primary_metric": "click",
        "window_s": 3600,
    }
    store.experiments.create("knn-vs-pop", "ab", spec)
    started = store.experiments.start("knn-vs-pop").started_at
    assert started is not None
    exposures, events = [], []
    for j in range(n_lists):
        user = f"u{j % 60:03d}"
        control = (j % 60) % 2 == 0
        at = started + 0.001 * (j + 1)
        shown = tuple(items[(j + r) % len(items)] for r in range(10))
        exposures.append(
            ExposureIn(
                f"req-{j}",
                user,
                "home",
                shown,
                "v1" if control else "v2",
                "knn-vs-pop",
                "control" if control else "pop",
                at=at,
            )
        )
        if j % (2 if control else 3) == 0:
            events.append(EventIn(f"live-{j}", user, shown[0], "click", at + 0.0005))
    store.exposures.add_many(exposures)
    store.events.add_batch(events)


def write_study(directory: Path) -> Path:
    """A small study output (results.json, results.csv) for the leaderboard page."""
    from serendip.evaluation.study.results import write_results

    def row(model: str, kind: str, ndcg: float, protocol: str = "temporal") -> dict[str, object]:
        return {
            "dataset": "synthetic-small",
            "protocol": protocol,
            "model": model,
            "kind": kind,
            "status": "ok",
            "metrics": {
                "ndcg@10": ndcg,
                "recall@10": 1.4 * ndcg,
                "coverage@10": 0.1 + ndcg,
                "novelty@10": 9.0 - 10 * ndcg,
            },
            "cost": {"fit_seconds": 40 * ndcg, "recommend_single_p50_ms": 3.0},
        }

    rows = [
        row("popularity", "baseline", 0.041),
        row("item-knn", "model", 0.118),
        row("pipeline", "pipeline", 0.152),
        row("ease", "model", 0.131),
        row("popularity", "baseline", 0.052, "leave-last"),
        row("pipeline", "pipeline", 0.171, "leave-last"),
    ]
    study = {"profile": "quick", "created": "2026-12-06T07:00:00Z", "code_version": "test"}
    write_results({"study": study, "rows": rows, "significance": []}, directory)
    return directory


@pytest.fixture(scope="module")
def live(
    tmp_path_factory: pytest.TempPathFactory, toy_platform: Any, model_dirs: dict[str, Path]
) -> Iterator[Live]:
    chromium_path()  # skips the module, with the reason, where Chromium is missing
    store = build_store(tmp_path_factory.mktemp("dash-live"), toy_platform, model_dirs)
    add_live_traffic(store)
    runtime = ModelRuntime(store)
    runtime.load(model_dirs["item-knn"], "v1")
    study = write_study(tmp_path_factory.mktemp("study"))
    settings = keyed_settings(store.url).model_copy(update={"study_dir": study})
    app = create_app(settings, store=store, runtime=runtime)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, name="dashboard-server", daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the server did not start"
        time.sleep(0.05)
    env = os.environ.get("SERENDIP_SCREENSHOTS")
    shots = Path(env) if env else tmp_path_factory.mktemp("screenshots")
    shots.mkdir(parents=True, exist_ok=True)
    state = Live(f"http://127.0.0.1:{port}", store, runtime, active_user(store), shots)
    try:
        yield state
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        store.close()
        if state.written:
            print("\ndashboard screenshots:\n" + "\n".join(f"  {p}" for p in state.written))


@pytest.fixture(scope="module")
def browser(live: Live) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()


class Watched:
    """A signed-in page that records console errors and uncaught script errors."""

    def __init__(self, browser: Any, live: Live, viewport: dict[str, int]) -> None:
        self.context = browser.new_context(viewport=viewport)
        self.page = self.context.new_page()
        self.errors: list[str] = []
        self.page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        self.page.on("pageerror", lambda e: self.errors.append(f"uncaught: {e}"))
        self.live = live
        self.page.goto(live.url + "/", wait_until="load")
        assert "/dashboard/login" in self.page.url  # keys configured: sign in first
        self.page.fill("#login-key", ADMIN_KEY)
        self.page.click("#login-form button[type=submit]")
        self.page.wait_for_url(live.url + "/")

    def open(self, path: str) -> Any:
        response = self.page.goto(self.live.url + path, wait_until="load")
        assert response is not None and response.status == 200, path
        return self.page

    def shot(self, name: str) -> Path:
        path = self.live.shots / f"{name}.png"
        self.page.screenshot(path=str(path), full_page=True)
        self.live.written.append(path)
        return path

    def close(self) -> None:
        self.context.close()


@pytest.fixture
def laptop(browser: Any, live: Live) -> Iterator[Watched]:
    w = Watched(browser, live, LAPTOP)
    yield w
    w.close()


def _name(path: str) -> str:
    return "overview" if path == "/" else path.rsplit("/", 1)[-1]


def test_every_page_loads_without_console_errors_on_a_laptop_and_a_phone(
    browser: Any, live: Live
) -> None:
    for size, viewport in (("laptop", LAPTOP), ("phone", PHONE)):
        w = Watched(browser, live, viewport)
        try:
            for path in PAGES:
                page = w.open(path)
                assert page.locator("h1").inner_text().strip(), path
                assert page.locator("nav a[aria-current=page]").count() == 1, path
                wide = page.evaluate(
                    "document.documentElement.scrollWidth - document.documentElement.clientWidth"
                )
                assert wide <= 1, f"{path} scrolls sideways by {wide}px at {size} width"
                w.shot(f"{_name(path)}-{size}")
            assert w.errors == [], w.errors
        finally:
            w.close()


def test_the_explorer_shows_recommendations_with_reasons_side_by_side(
    laptop: Watched, live: Live
) -> None:
    page = laptop.open("/dashboard/explorer")
    page.fill("#user", live.user)
    page.select_option("#version-a", "v1")
    page.select_option("#version-b", "v2")
    page.click("#show")
    page.wait_for_selector("#recommendations")
    columns = page.locator("section.rec-column")
    assert columns.count() == 2
    assert "v1" in columns.nth(0).locator("h2").inner_text()
    assert "v2" in columns.nth(1).locator("h2").inner_text()
    for i in range(2):
        recs = columns.nth(i).locator("li.rec")
        assert recs.count() >= 1
        reason = recs.first.locator(".reason").inner_text().strip()
        assert reason and reason != "(no reason given)"
        assert columns.nth(i).locator(".source").count() >= 1  # the sources named
    expected = live.runtime.recommend(live.user, 10, explain=True)
    first = columns.nth(0).locator("li.rec").first.locator(".item-id").inner_text()
    assert first == expected[0].item
    assert page.locator("#history tbody tr, section[aria-labelledby=history] tbody tr").count() >= 1
    laptop.shot("explorer-user-side-by-side")
    assert laptop.errors == [], laptop.errors


def test_the_leaderboard_ranks_the_study_by_ndcg(laptop: Watched) -> None:
    page = laptop.open("/dashboard/leaderboard")
    group = page.locator("section[aria-label='synthetic-small · temporal']")
    models = group.locator("tbody tr td:nth-child(2)").all_inner_texts()
    assert models == ["pipeline", "ease", "item-knn", "popularity"]
    assert laptop.errors == [], laptop.errors


def test_the_experiment_shows_live_statistics(laptop: Watched) -> None:
    page = laptop.open("/dashboard/experiments")
    panel = page.locator("section[aria-label='Experiment knn-vs-pop']")
    assert panel.count() == 1
    text = panel.inner_text()
    if "not available" in text:
        pytest.skip("the experiment analysis is not in this build")
    assert "control" in text and "pop" in text
    rows = panel.locator("table:not(.facts) tbody tr")
    assert rows.count() == 2
    users = [int(rows.nth(i).locator("td").nth(1).inner_text()) for i in range(2)]
    assert sum(users) == 60  # every user of the served lists, each in one variant
    assert laptop.errors == [], laptop.errors


def test_activate_and_roll_back_from_the_models_page(laptop: Watched, live: Live) -> None:
    from playwright.sync_api import expect

    page = laptop.open("/dashboard/models")
    assert page.locator("#active-version").inner_text() == "v1"
    # the key entered at sign-in is in the tab's sessionStorage, not in the page's HTML
    assert page.input_value("#admin-key") == ADMIN_KEY
    assert ADMIN_KEY not in page.content().replace(page.input_value("#admin-key"), "")
    page.click("button[data-admin=activate][data-version=v2]")
    expect(page.locator("#active-version")).to_have_text("v2", timeout=30_000)
    assert live.runtime.active_version == "v2"
    active = live.store.models.active()
    assert active is not None and active.version == "v2"
    laptop.shot("models-after-activate")
    page.click("#rollback")
    expect(page.locator("#active-version")).to_have_text("v1", timeout=30_000)
    assert live.runtime.active_version == "v1"
    assert laptop.errors == [], laptop.errors


def test_a_wrong_admin_key_is_refused_with_the_reason_and_nothing_changes(
    laptop: Watched, live: Live
) -> None:
    page = laptop.open("/dashboard/models")
    page.fill("#admin-key", "not-the-key")
    page.click("button[data-admin=activate][data-version=v2]")
    page.wait_for_selector("#admin-result.error")
    assert "refused (401)" in page.inner_text("#admin-result")
    assert live.runtime.active_version == "v1"
    # the refused call is logged by the browser as a failed resource load: expected here
    assert all("401" in e for e in laptop.errors), laptop.errors
