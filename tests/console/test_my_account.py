"""Everyone's "My account" page in a real browser: a customer user opts in to a personal login
link, makes one, signs in with it in another browser, revokes it (then it is refused); a staff
member's default company opens an acting session at sign-in, and only while the policy allows
it (else the page says why); a rep who can act for customers sees identity's refusal of a
login link."""

from __future__ import annotations

import re

from playwright.sync_api import Browser, expect

from tests.console.browsing import person, shot, sign_in, text_of
from tests.support import World, ok


def test_a_login_link_signs_in_until_it_is_revoked(
    world: World, browser: Browser, console_url: str
) -> None:
    with person(browser, console_url) as page:
        sign_in(page, world.buyer_a["email"])
        page.get_by_role("link", name="My account").click()
        page.get_by_role("button", name="Yes, I want an individual login link").click()
        expect(page.locator("#login-link-state")).to_contain_text("You want an individual")
        page.get_by_role("button", name="Make a new login link").click()
        link = page.locator("#new-login-link").inner_text()
        assert link.startswith(f"{console_url}/login-link#")
        shot(page, "my-account")

        with person(browser, console_url) as elsewhere:
            # The secret is after "#": the page's script posts it, the address bar drops it.
            elsewhere.goto(link)
            expect(elsewhere.get_by_role("button", name="Sign out")).to_be_visible()
            assert world.buyer_a["name"] in elsewhere.locator("header").inner_text()
            assert "#" not in elsewhere.url

        page.get_by_role("button", name="Revoke my login link").click()
        expect(page.get_by_role("status")).to_contain_text("revoked")

        with person(browser, console_url) as later:
            with later.expect_response(lambda r: r.request.method == "POST") as posted:
                later.goto(link)
            assert posted.value.status == 401
            expect(later.get_by_role("alert")).to_contain_text("not valid")
            expect(later.get_by_role("button", name="Sign out")).to_have_count(0)


def test_the_default_company_opens_an_acting_session_at_sign_in_while_allowed(
    world: World, browser: Browser, console_url: str
) -> None:
    with person(browser, console_url) as page:
        sign_in(page, world.rep["email"])
        page.get_by_role("link", name="My account").click()
        form = page.locator("#default-company")
        form.get_by_label("Default company").select_option(label=world.org_a["name"])
        form.get_by_label("After signing in").select_option("default_customer")
        form.get_by_role("button", name="Save default company").click()
        expect(page.get_by_role("status")).to_contain_text("saved")

        # A login link is identity's to refuse for staff who can act for customers.
        page.get_by_role("button", name="Yes, I want an individual login link").click()
        page.get_by_role("button", name="Make a new login link").click()
        expect(page.get_by_role("alert")).to_be_visible()
        assert "login link" in text_of(page).lower()
        expect(page.locator("#new-login-link")).to_have_count(0)

        page.get_by_role("button", name="Sign out").click()
        sign_in(page, world.rep["email"])
        expect(page.locator("#acting-badge")).to_contain_text(f"Acting as {world.org_a['name']}")
        expect(page).to_have_url(re.compile(r"/catalog$"))

        page.get_by_role("button", name="Sign out").click()
        ok(
            world.admin.delete(
                "identity", f"/v1/orgs/{world.org_a['id']}/caretakers/{world.rep['id']}"
            ),
            204,
        )
        sign_in(page, world.rep["email"])
        expect(page.locator("#acting-badge")).to_have_count(0)
        expect(page.locator("p.notice")).to_contain_text(
            "No acting session for your default company: not a caretaker"
        )
        expect(page).to_have_url(re.compile(r"/companies"))
