"""The analysis report opens in a real browser with every plot rendered."""

from __future__ import annotations

from pathlib import Path

import pytest

from serendip.data.analysis import analyze_dataset, write_report
from serendip.data.loaders import load_lastfm, load_movielens, load_source
from serendip.data.synthetic import generate_platform
from tests.browser import open_page
from tests.conftest import shared_data

pytestmark = pytest.mark.browser

SECTIONS = ["Summary", "Activity and popularity", "Cold start"]


def _check_report(html: Path, min_images: int) -> None:
    with open_page(html.resolve().as_uri()) as page:
        images = page.evaluate(
            "Array.from(document.images).map(i => [i.complete, i.naturalWidth, i.naturalHeight])"
        )
        assert len(images) >= min_images
        assert all(done and w > 100 and h > 100 for done, w, h in images), images
        text = page.inner_text("body")
        for section in SECTIONS:
            assert section in text


def test_synthetic_platform_report_opens_with_plots(tmp_path: Path) -> None:
    data = generate_platform("small", seed=1, out=tmp_path / "small")
    html = write_report(analyze_dataset(load_source(data)), tmp_path / "report")
    _check_report(html, min_images=6)
    with open_page(html.resolve().as_uri()) as page:
        assert "Social graph" in page.inner_text("body")


@pytest.mark.realdata
def test_movielens_report_opens_with_plots(tmp_path: Path) -> None:
    ds = load_movielens(shared_data("ml-100k"))
    _check_report(write_report(analyze_dataset(ds), tmp_path / "r"), min_images=5)


@pytest.mark.realdata
def test_lastfm_report_opens_with_plots(tmp_path: Path) -> None:
    ds = load_lastfm(shared_data("lastfm-2k"))
    _check_report(write_report(analyze_dataset(ds), tmp_path / "r"), min_images=3)
