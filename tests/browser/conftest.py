"""Chromium driven by Playwright against the app served over real HTTP.

The browser is the Debian ``chromium`` package (Playwright cannot download its own here).
A missing browser fails the run with the command that installs it: it is never skipped.
"""

from __future__ import annotations

import os
import shutil

import pytest

from tests.live import serve

CHROMIUM = os.environ.get("TRIPCOMMS_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]


@pytest.fixture(scope="session")
def browser():
    if not os.path.exists(CHROMIUM):
        pytest.fail(
            f"Chromium not found at {CHROMIUM}. Install it with: sudo apt-get install -y chromium "
            "(or set TRIPCOMMS_CHROMIUM to its path)",
            pytrace=False,
        )
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        yield browser
        browser.close()


@pytest.fixture
def live_server(app):
    with serve(app) as url:
        yield url


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 360, "height": 740})
    page = context.new_page()
    page.set_default_timeout(10_000)
    yield page
    context.close()
