"""The browser tests' Chromium and pages: Debian's headless Chromium driven by Playwright, and a phone-sized page of
a farm with its API key entered once.

The browser is the system's (``TALKFARM_CHROMIUM``, default ``/usr/bin/chromium``; scripts/test.sh installs it): a
missing browser or Playwright fails the test, it is never skipped and never downloaded. Screenshots and timings go
to ``TALKFARM_TEST_ARTIFACTS`` (default ``test-artifacts/``).
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import pytest

from tests.farm import Farm

CHROMIUM = Path(os.environ.get("TALKFARM_CHROMIUM", "/usr/bin/chromium"))
ARTIFACTS = Path(os.environ.get("TALKFARM_TEST_ARTIFACTS", "test-artifacts"))
PHONE = {"width": 412, "height": 915}


@contextmanager
def chromium(*args: str) -> Iterator[Any]:
    """Headless Chromium with autoplay allowed and ``args`` added."""
    if not CHROMIUM.exists():
        pytest.fail(f"no browser at {CHROMIUM}: install Debian's chromium (apt-get install chromium; scripts/test.sh "
                    "does) or name another with TALKFARM_CHROMIUM")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail("Playwright is not installed: pip install -e '.[dev]' (never `playwright install`)")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM),
                                             args=["--autoplay-policy=no-user-gesture-required", *args])
        try:
            yield browser
        finally:
            browser.close()


@contextmanager
def farm_page(browser: Any, farm: Farm, init_script: str | None = None, **context: Any) -> Iterator[Any]:
    """A phone-sized page of the farm, its API key entered once; page errors are collected in ``page.errors``."""
    browser_context = browser.new_context(viewport=PHONE, **context)
    if init_script:
        browser_context.add_init_script(init_script)
    page = browser_context.new_page()
    page.errors = []
    page.on("pageerror", lambda error: page.errors.append(str(error)))
    page.goto(farm.url + "/")
    page.get_by_label("Your API key").fill(farm.token)
    page.get_by_role("button", name="Save key").click()
    page.locator("#key-saved").wait_for(state="visible")
    try:
        yield page
    finally:
        browser_context.close()


def artifacts() -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS
