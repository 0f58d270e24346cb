"""Helpers of the browser tests: a person in their own browser context, signing in, acting."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from playwright.sync_api import Browser, Locator, Page, expect

from tests.support import PASSWORD

SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "console"


@contextmanager
def person(browser: Browser, console_url: str) -> Iterator[Page]:
    """One person: a browser context of their own (own cookies), one page."""
    context = browser.new_context(base_url=console_url, viewport={"width": 1280, "height": 800})
    context.set_default_timeout(15_000)
    try:
        yield context.new_page()
    finally:
        context.close()


def sign_in(page: Page, email: str, password: str = PASSWORD) -> None:
    page.goto("/login")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("button", name="Sign out")).to_be_visible()


def act_as(page: Page, org_name: str, *, mode: str = "full") -> None:
    label = "Log in as customer" if mode == "full" else "View as customer"
    page.goto("/companies?q=" + org_name)
    page.get_by_role("button", name=f"{label} {org_name}").click()
    expect(page.locator("#acting-badge")).to_contain_text(f"Acting as {org_name}")


def shot(page: Page, name: str) -> None:
    """A screenshot for docs/console.md, made by the test that checks what it shows."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


def company_name_cells(page: Page) -> Locator:
    """The first cell of each company row: give it to `expect`, which waits for the page a
    click navigates to, where reading the rows at once could see the old page or none."""
    return page.locator("#companies tbody tr[data-org-id] > td:first-child")


def text_of(page: Page) -> str:
    return re.sub(r"\s+", " ", page.locator("main").inner_text())
