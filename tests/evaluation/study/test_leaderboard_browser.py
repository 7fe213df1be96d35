"""The leaderboard opens in a real browser: title, every plot rendered, tables sortable."""

from __future__ import annotations

from pathlib import Path

import pytest

from serendip.evaluation.study.leaderboard import write_leaderboard
from tests.browser import open_page
from tests.evaluation.study.test_leaderboard import MODELS, fake_results

pytestmark = pytest.mark.browser


def test_leaderboard_opens_with_every_plot(tmp_path: Path) -> None:
    results = fake_results()
    # One dataset (both protocols, with the failed cell) keeps the test fast.
    results["rows"] = [r for r in results["rows"] if r["dataset"] == "synthetic-small"]
    html = write_leaderboard(results, tmp_path)
    n_plots = len(list((tmp_path / "plots").glob("*.png")))
    with open_page(html.resolve().as_uri()) as page:
        assert page.title() == "Serendip study leaderboard · quick"
        images = page.evaluate(
            "Array.from(document.images).map(i => [i.complete, i.naturalWidth, i.naturalHeight])"
        )
        assert len(images) == n_plots == 6
        assert all(done and w > 100 and h > 100 for done, w, h in images), images
        text = page.inner_text("body")
        for model in MODELS:
            assert model in text
        assert "Failed cells" in text and "CapacityError" in text

        # Sorting: the first table starts best-first by NDCG@10; a click on "Model" sorts by name.
        table = page.locator("table.board").first
        first_model = "() => document.querySelector('table.board tbody tr').dataset.model"
        assert page.evaluate(first_model) == "pipeline"
        table.locator("th", has_text="Model").click()
        assert page.evaluate(first_model) == "ease"
        table.locator("th", has_text="NDCG@10").click()  # numbers sort descending first
        assert page.evaluate(first_model) == "pipeline"
