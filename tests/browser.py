"""Real headless Chromium (Debian's `chromium`) driven by Playwright, for report and dashboard tests.

Playwright's own browser download is never used: we launch the system Chromium, so the tests work
offline. Tests using `open_page` carry the `browser` marker and skip where Chromium is missing.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def chromium_path() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        pytest.skip(
            "headless Chromium not installed (Debian package 'chromium'; `make setup` installs it as root)"
        )
    return path


@contextmanager
def open_page(url: str) -> Iterator[Any]:
    """A loaded Playwright page for `url` in headless system Chromium."""
    from playwright.sync_api import sync_playwright

    exe = chromium_path()
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=exe, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            page.goto(url, wait_until="load")
            yield page
        finally:
            browser.close()
