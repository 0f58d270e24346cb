"""A customer admin's pages in a real browser: employees (a deactivated employee is refused
at once), invitations (sent, refused twice, accepted on the public page from the mail's
link, resent, revoked), budgets and approvals (the approval mail's link, approving in the
browser), and how the admins hear of acting sessions; an acting session sees the policy's
refusal on these pages."""

from __future__ import annotations

import re

import httpx
from playwright.sync_api import Browser, expect

from onbehalf.stack import Stack
from tests.cart.people import customer_admin
from tests.console.browsing import act_as, person, shot, sign_in, text_of
from tests.customers.mailbox import wait_for_mail
from tests.support import PASSWORD, World, ok, unique, wait_until

NEW_PASSWORD = "a-Long-enough-passphrase-42"


def _link(body: str, path: str) -> str:
    found = re.search(rf"(http://\S+{path}\S*)", body)
    assert found, body
    return found.group(1)


def test_the_admin_changes_a_role_and_deactivates_an_employee_who_is_then_refused(
    world: World, stack: Stack, browser: Browser, console_url: str
) -> None:
    _, admin_user = customer_admin(world, world.org_a)
    buyer = world.login(world.buyer_a)
    ok(buyer.get("cart", "/v1/cart"))
    with person(browser, console_url) as page:
        sign_in(page, admin_user["email"])
        page.get_by_role("link", name="Employees").click()
        row = page.locator(f"#employees tr[data-user-id='{world.viewer_a['id']}']")
        expect(row.locator(".role")).to_have_text("viewer")
        row.get_by_label(f"Role of {world.viewer_a['name']}").select_option("buyer")
        row.get_by_role("button", name=f"Save role of {world.viewer_a['name']}").click()
        expect(page.get_by_role("status")).to_contain_text(f"{world.viewer_a['name']} is now buyer")
        expect(row.locator(".role")).to_have_text("buyer")

        page.get_by_role("button", name=f"Deactivate {world.buyer_a['name']}").click()
        target = page.locator(f"#employees tr[data-user-id='{world.buyer_a['id']}']")
        expect(target.locator(".active")).to_have_text("no")
        shot(page, "employees")

    # Refused at once: a new login, and (within a second, every service) the old token.
    login = httpx.post(
        stack.url("identity") + "/v1/auth/token",
        json={"email": world.buyer_a["email"], "password": PASSWORD},
    )
    assert login.status_code in (401, 403), login.text
    wait_until(
        lambda: buyer.get("cart", "/v1/cart").status_code == 401,
        timeout=1.5,
        interval=0.05,
        what="the deactivated buyer's token refused by cart",
    )

    # Staff acting for the customer see the policy's refusal, never the employees.
    with person(browser, console_url) as rep_page:
        sign_in(rep_page, world.rep["email"])
        act_as(rep_page, world.org_a["name"])
        answer = rep_page.goto("/employees")
        assert answer is not None and answer.status == 403
        assert "acting" in text_of(rep_page)
        expect(rep_page.locator("#employees")).to_have_count(0)


def test_an_invitation_is_sent_refused_twice_and_accepted_on_the_page_from_the_mail(
    world: World, stack: Stack, browser: Browser, console_url: str
) -> None:
    admin_api, admin_user = customer_admin(world, world.org_a)
    email = unique("colleague") + "@example.test"
    other = unique("other") + "@example.test"
    with person(browser, console_url) as page:
        sign_in(page, admin_user["email"])
        page.get_by_role("link", name="Invitations").click()
        for address in (email, other):
            page.get_by_label("Email").fill(address)
            page.get_by_label("Name").fill("New Colleague")
            page.get_by_label("Role").select_option("buyer")
            page.get_by_role("button", name="Send invitation").click()
            expect(page.get_by_role("status")).to_contain_text(f"Invitation sent to {address}")

        # The same address again: identity's clear 409, shown with its status.
        page.get_by_label("Email").fill(email.upper())
        page.get_by_label("Name").fill("Twice")
        with page.expect_response(lambda r: r.url.endswith("/invitations")) as posted:
            page.get_by_role("button", name="Send invitation").click()
        assert posted.value.status == 409
        expect(page.get_by_role("alert")).to_contain_text("already has an open invitation")

        page.get_by_role("button", name=f"Resend to {other}").click()
        expect(page.get_by_role("status")).to_contain_text(f"Invitation to {other} sent again")
        page.get_by_role("button", name=f"Revoke invitation of {other}").click()
        expect(page.get_by_role("status")).to_contain_text(f"Invitation to {other} revoked")
        page.get_by_role("link", name="pending").click()
        expect(page.locator("#invitations tbody")).to_contain_text(email)
        expect(page.locator("#invitations tbody")).not_to_contain_text(other)
        shot(page, "invitations")

    mail = wait_for_mail(stack, email, "invitation")[0]
    link = _link(mail["body"], "/invitations/")
    assert link.startswith(console_url)
    resent = wait_for_mail(stack, other, "invitation", count=2)[-1]
    revoked_link = _link(resent["body"], "/invitations/")

    with person(browser, console_url) as invitee:
        answer = invitee.goto(revoked_link)
        assert answer is not None and answer.ok
        invitee.get_by_label("Choose a password").fill(NEW_PASSWORD)
        invitee.get_by_label("The same password again").fill(NEW_PASSWORD)
        invitee.get_by_role("button", name="Create my account").click()
        expect(invitee.get_by_role("alert")).to_contain_text("this invitation was revoked")

        invitee.goto(link)
        invitee.get_by_label("Choose a password").fill("short")
        invitee.get_by_label("The same password again").fill("short")
        invitee.get_by_role("button", name="Create my account").click()
        expect(invitee.get_by_role("alert")).to_be_visible()  # identity's password rule
        invitee.get_by_label("Choose a password").fill(NEW_PASSWORD)
        invitee.get_by_label("The same password again").fill(NEW_PASSWORD)
        invitee.get_by_role("button", name="Create my account").click()
        expect(invitee.get_by_role("button", name="Sign out")).to_be_visible()
        expect(invitee.get_by_role("status")).to_contain_text("your account is ready")
        expect(invitee).to_have_url(re.compile(r"/catalog$"))

    me = ok(world.admin.login(email, NEW_PASSWORD).get("identity", "/v1/me"))
    assert me["org_id"] == world.org_a["id"] and me["roles"] == ["buyer"]
    accepted = ok(
        admin_api.get(
            "identity", f"/v1/orgs/{world.org_a['id']}/invitations", params={"status": "accepted"}
        )
    )["items"]
    assert [i["email"] for i in accepted] == [email]


def test_the_admin_sets_a_budget_gets_the_approval_mail_and_approves_in_the_browser(
    world: World, stack: Stack, browser: Browser, console_url: str
) -> None:
    admin_api, admin_user = customer_admin(world, world.org_a)
    buyer = world.login(world.buyer_a)
    with person(browser, console_url) as page:
        sign_in(page, admin_user["email"])
        page.get_by_role("link", name="Budgets").click()
        page.get_by_label("one employee").check()
        page.get_by_label("Employee (employee budget)").select_option(world.buyer_a["id"])
        page.get_by_label("Amount").fill("5.00")
        page.get_by_label("Currency").fill("EUR")
        page.get_by_label("Period").select_option("month")
        page.get_by_label("When an order exceeds it").select_option("approval")
        page.get_by_role("button", name="Save budget").click()
        expect(page.get_by_role("status")).to_contain_text("saved")
        [budget] = ok(admin_api.get("orders", "/v1/budgets"))["items"]
        assert budget["user_id"] == world.buyer_a["id"] and budget["on_exceed"] == "approval"
        row = page.locator(f"#budgets tr[data-budget-id='{budget['id']}']")
        expect(row).to_contain_text(world.buyer_a["name"])

        # Edit: the same budget also holds the orders the seller's staff place for us.
        row.get_by_role("link", name=f"Edit {budget['name']}").click()
        expect(page.get_by_label("Amount")).to_have_value("5.00")
        page.get_by_label("Orders the seller's staff place for us count").check()
        page.get_by_role("button", name="Save budget").click()
        expect(row.locator(".assisted")).to_have_text("yes")

        # 7.50 exceeds 5.00: the order waits, and the admins are mailed a link to approve it.
        ok(buyer.post("cart", "/v1/cart/items", json={"sku": world.skus[0], "quantity": 1}))
        order = ok(
            buyer.post("orders", "/v1/orders", headers={"Idempotency-Key": unique("k")}), 201
        )
        assert order["status"] == "awaiting_approval"
        mail = wait_for_mail(stack, admin_user["email"], "approval_request")[0]
        assert "7.50 EUR" in mail["subject"] and world.buyer_a["name"] in mail["subject"]
        assert order["id"] in mail["body"]
        page.goto(_link(mail["body"], "/approvals"))
        waiting = page.locator(f"#approvals tr[data-order-id='{order['id']}']")
        expect(waiting).to_contain_text("7.50 EUR")
        shot(page, "approvals")
        waiting.get_by_role("button", name=f"Approve order {order['id'][:8]}").click()
        expect(page.get_by_role("status")).to_contain_text("approved: it is now placed")
        expect(page.locator("#approvals")).to_contain_text("No order is waiting for approval")

    assert ok(buyer.get("orders", f"/v1/orders/{order['id']}"))["status"] == "placed"
    [spent] = ok(admin_api.get("orders", "/v1/budgets"))["items"]
    assert spent["spent"] == "7.50" and spent["for_assisted_orders"] is True


def test_the_admin_chooses_how_acting_sessions_are_told(
    world: World, browser: Browser, console_url: str
) -> None:
    admin_api, admin_user = customer_admin(world, world.org_a)
    path = f"/v1/orgs/{world.org_a['id']}/acting-notices"
    assert ok(admin_api.get("identity", path))["acting_notices"] == "every_session"
    with person(browser, console_url) as page:
        sign_in(page, admin_user["email"])
        page.get_by_role("link", name="Remote assistance").click()
        page.get_by_label("one mail a day listing them").check()
        page.get_by_role("button", name="Save how we are told").click()
        expect(page.get_by_role("status")).to_contain_text("one mail a day")
        expect(page.get_by_label("one mail a day listing them")).to_be_checked()
    assert ok(admin_api.get("identity", path))["acting_notices"] == "daily_digest"
