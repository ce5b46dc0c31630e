"""A real headless Chromium (Debian's ``chromium``, driven by Playwright) for the picture tests.

Without a chromium binary the tests skip locally and fail in CI (``CI=true``), where ``.ci/run`` installs it.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from typing import Any

import pytest

from tests.cli.conftest import cli  # noqa: F401  (the CLI runner fixture, shared with the command tests)
from tests.daemon.conftest import wait_for_fixture  # noqa: F401  (poll until a condition holds)

_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    """One headless Chromium for the session."""
    binary = os.environ.get("REBALANCER_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    if binary is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is not installed (.ci/run installs Debian's chromium)")
        pytest.skip("chromium is not installed: apt-get install chromium")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=binary, args=_FLAGS)
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    """A fresh page, 1000 px wide."""
    opened = browser.new_page(viewport={"width": 1000, "height": 900})
    yield opened
    opened.close()
