"""A buyer's budget in a real browser: the cart page says what is left of it, an order beyond
it waits, the admin's Approvals page lists it (orders filters by status), and the buyer
withdraws it from the order page, after which nothing waits."""

from __future__ import annotations

import re

from playwright.sync_api import Browser, expect

from tests.console.browsing import person, sign_in
from tests.support import World, customer_admin, ok


def test_the_buyer_sees_their_budget_and_withdraws_a_waiting_order(
    world: World, browser: Browser, console_url: str
) -> None:
    admin_api, admin_user = customer_admin(world, world.org_a)
    ok(
        admin_api.post(
            "orders",
            "/v1/budgets",
            json={
                "kind": "employee",
                "user_id": world.buyer_a["id"],
                "amount": "5.00",
                "currency": "EUR",
                "period": "month",
                "on_exceed": "approval",
            },
        ),
        201,
    )
    buyer_api = world.login(world.buyer_a)
    ok(buyer_api.post("cart", "/v1/cart/items", json={"sku": world.skus[0], "quantity": 1}))
    with person(browser, console_url) as buyer, person(browser, console_url) as admin:
        sign_in(buyer, world.buyer_a["email"])
        buyer.get_by_role("link", name="Cart").click()
        expect(buyer.locator("#own-budget")).to_contain_text("5.00 EUR left of 5.00 EUR")
        expect(buyer.locator("#own-budget")).to_contain_text("waits for an admin's approval")
        buyer.get_by_role("button", name="Place order").click()
        expect(buyer).to_have_url(re.compile(r"/orders/[0-9a-f-]+$"))
        expect(buyer.locator("#order-status")).to_have_text("awaiting_approval")
        order_id = buyer.url.rsplit("/", 1)[-1]

        sign_in(admin, admin_user["email"])
        admin.get_by_role("link", name="Approvals").click()
        rows = admin.locator("#approvals tbody tr[data-order-id]")
        expect(rows).to_have_count(1)
        expect(rows.first).to_have_attribute("data-order-id", order_id)

        buyer.get_by_role("button", name="Cancel this order").click()
        expect(buyer.get_by_role("status")).to_contain_text("The order is cancelled")
        expect(buyer.locator("#order-status")).to_have_text("cancelled")
        buyer.goto("/cart")
        expect(buyer.locator("#own-budget")).to_contain_text("5.00 EUR left")

        admin.reload()
        expect(admin.locator("#approvals")).to_contain_text("No order is waiting for approval")

    # A viewer has no budget line at all (orders refuses them one).
    with person(browser, console_url) as viewer:
        sign_in(viewer, world.viewer_a["email"])
        viewer.goto("/cart")
        expect(viewer.locator("#cart-items")).to_be_visible()
        expect(viewer.locator("#own-budget")).to_have_count(0)
