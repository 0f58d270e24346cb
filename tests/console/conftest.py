"""A real headless Chromium (Debian's package) driven by Playwright, against the session stack."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Playwright, sync_playwright

from onbehalf.stack import CONSOLE, Stack

CHROMIUM = os.environ.get("ONBEHALF_CHROMIUM", "/usr/bin/chromium")
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


# Package scope, not session: Playwright's sync API runs an event loop in the main thread
# while it is open, and every async test that runs after it (pytest-asyncio, asyncio.run)
# would find a loop already running.
@pytest.fixture(scope="package")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as running:
        yield running


@pytest.fixture(scope="package")
def browser(playwright: Playwright) -> Iterator[Browser]:
    if not Path(CHROMIUM).exists():
        # Never a silent skip: scripts/ensure-chromium.sh (run by make test and .ci/run) installs it.
        pytest.fail(f"{CHROMIUM} is missing: run scripts/ensure-chromium.sh (as root)")
    launched = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
    yield launched
    launched.close()


@pytest.fixture(scope="session")
def console_url(stack: Stack) -> str:
    return stack.url(CONSOLE)
