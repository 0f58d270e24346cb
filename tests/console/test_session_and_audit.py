"""The console's own guarantees (CSRF, cookie flags, a clear sign-in error), consent withdrawn
ending a rep's acting session with the reason, and a reviewer finding an order in the audit log."""

from __future__ import annotations

import re

from playwright.sync_api import Browser, Page, expect

from tests.cart.people import customer_admin, reviewer
from tests.console.browsing import act_as, person, shot, sign_in, text_of
from tests.support import World, ok, unique, wait_until


def test_csrf_is_checked_and_the_session_cookie_is_httponly_and_samesite(
    world: World, browser: Browser, console_url: str
) -> None:
    with person(browser, console_url) as page:
        page.goto("/login")
        page.get_by_label("Email").fill(world.buyer_a["email"])
        page.get_by_label("Password").fill("not-the-password-1")
        page.get_by_role("button", name="Sign in").click()
        expect(page.get_by_role("alert")).to_have_text("Wrong email or password.")

        sign_in(page, world.buyer_a["email"])
        [cookie] = page.context.cookies()
        assert cookie["httpOnly"] is True and cookie["sameSite"] in ("Strict", "Lax")
        assert page.evaluate("document.cookie") == ""  # no script can read it
        assert "Bearer" not in page.content() and "eyJ" not in page.content()  # no token

        body: dict[str, str | float | bool] = {"sku": world.skus[0], "quantity": "3"}
        without = page.request.post("/cart/items", form=body, max_redirects=0)
        assert without.status == 403, without.text()
        wrong = page.request.post(
            "/cart/items", form={**body, "csrf_token": "forged"}, max_redirects=0
        )
        assert wrong.status == 403
        assert ok(world.login(world.buyer_a).get("cart", "/v1/cart"))["items"] == []

        # With the page's own token the same post works: the check is what refused.
        page.goto("/catalog")
        page.locator(f"tr[data-sku='{world.skus[0]}'] button").click()
        expect(page.locator("#cart-items")).to_contain_text(world.skus[0])

        page.get_by_role("button", name="Sign out").click()
        expect(page).to_have_url(f"{console_url}/login")
        assert page.request.get("/cart", max_redirects=0).status == 303  # nothing held


def _reload_until(page: Page, text: str) -> str:
    def shown() -> str | None:
        content = text_of(page)
        if text in content:
            return content
        page.reload()  # a message is shown once: look before loading the page again
        return None

    return wait_until(shown, timeout=15, interval=0.2, what=f"{text!r} on {page.url}")


def test_consent_withdrawn_ends_the_reps_acting_session_and_his_page_says_why(
    world: World, browser: Browser, console_url: str
) -> None:
    _, admin_user = customer_admin(world, world.org_a)
    with person(browser, console_url) as rep_page, person(browser, console_url) as admin_page:
        sign_in(rep_page, world.rep["email"])
        act_as(rep_page, world.org_a["name"])

        sign_in(admin_page, admin_user["email"])
        admin_page.get_by_role("link", name="Remote assistance").click()
        expect(admin_page.locator("#consent-state")).to_contain_text("allowed")
        expect(admin_page.locator("#acting-sessions")).to_contain_text(world.rep["name"])
        admin_page.get_by_role("button", name="Refuse remote assistance").click()
        expect(admin_page.locator("#consent-state")).to_contain_text("refused")

        rep_page.goto("/cart")
        shown = _reload_until(rep_page, "Your acting session ended (")
        assert re.search(r"Your acting session ended \([^)]*refused remote assistance\)", shown)
        expect(rep_page).to_have_url(re.compile(r"/companies"))
        expect(rep_page.locator("#acting-badge")).to_have_count(0)

        admin_page.reload()
        expect(admin_page.locator("#acting-sessions")).to_contain_text("refused remote assistance")


def test_a_reviewer_finds_the_orders_audit_event_and_the_chain_verifies(
    world: World, browser: Browser, console_url: str
) -> None:
    acting, started = world.act_as(world.login(world.rep), world.org_a)
    ok(acting.post("cart", "/v1/cart/items", json={"sku": world.skus[0], "quantity": 1}))
    order = ok(acting.post("orders", "/v1/orders", headers={"Idempotency-Key": unique("k")}), 201)
    audit = reviewer(world)
    me = ok(audit.get("identity", "/v1/me"))
    with person(browser, console_url) as page:
        sign_in(page, me["email"])
        page.get_by_role("link", name="Audit log").click()
        page.get_by_label("Actor id").fill(world.rep["id"])
        page.get_by_label("Subject organisation id").fill(world.org_a["id"])
        page.get_by_role("button", name="Filter").click()
        placed = page.locator("#audit-events tr[data-type='com.onbehalf.orders.order.placed']")

        def found() -> bool:
            if placed.count():
                return True
            page.reload()
            return False

        wait_until(found, timeout=15, interval=0.2, what="the order's audit event on the page")
        row = placed.first.inner_text()
        assert f"{world.rep['id']} → {world.org_a['id']}" in row
        assert started["session_id"] in row
        assert order["id"]
        page.get_by_role("button", name="Verify chain").click()
        expect(page.locator("#verify-result")).to_contain_text("Chain ok")
        shot(page, "audit-page")
