"""The seed platforms' flows in a real Chromium: a rep acts for a customer, orders, signs in as
himself; many companies, the cart lock and its take-over; the view-only acting session."""

from __future__ import annotations

from typing import Any

from playwright.sync_api import Browser, expect

from tests.console.browsing import act_as, company_name_cells, person, shot, sign_in, text_of
from tests.support import World, ok, unique, wait_until


def _acting_sessions(world: World, org: dict[str, Any]) -> list[dict[str, Any]]:
    body = ok(world.admin.get("identity", f"/v1/orgs/{org['id']}/acting-sessions"))
    return list(body["items"])


def test_seed_004_a_rep_acts_for_a_customer_orders_and_signs_in_as_himself(
    world: World, browser: Browser, console_url: str
) -> None:
    org, rep, buyer = world.org_a, world.rep, world.buyer_a
    with person(browser, console_url) as buyer_page, person(browser, console_url) as rep_page:
        # The customer's buyer leaves something in the cart.
        sign_in(buyer_page, buyer["email"])
        buyer_page.goto("/catalog")
        buyer_page.get_by_role("button", name="Add Product 1 to cart").click()
        expect(buyer_page.locator("#cart-items")).to_contain_text(world.skus[1])

        sign_in(rep_page, rep["email"])
        expect(rep_page.locator("#not-acting")).to_have_text(
            "You are not acting for a customer — choose a company"
        )
        expect(company_name_cells(rep_page)).to_have_text(
            [org["name"]]
        )  # exactly the ones he cares for
        shot(rep_page, "company-list")

        rep_page.get_by_role("button", name=f"Log in as customer {org['name']}").click()
        badge = rep_page.locator("#acting-badge summary")
        expect(badge).to_contain_text(f"Acting as {org['name']} — {rep['name']}")
        expect(badge).to_contain_text("full access")
        expect(badge).to_have_css("background-color", "rgb(194, 27, 27)")
        # The catalog at the customer's own price.
        expect(rep_page.locator(f"tr[data-sku='{world.skus[0]}'] .price")).to_contain_text("7.50")
        badge.click()
        expect(rep_page.get_by_role("button", name="Stop acting as customer")).to_be_visible()
        shot(rep_page, "acting-badge")
        rep_page.get_by_role("link", name="Keep acting").click()

        rep_page.goto("/cart")
        expect(rep_page.locator("#cart-items")).to_contain_text(world.skus[1])  # the buyer's
        rep_page.get_by_role("button", name="Lock the cart").click()
        expect(rep_page.locator("#lock")).to_contain_text("You hold the lock")
        rep_page.goto("/catalog")
        rep_page.get_by_role("button", name="Add Product 0 to cart").click()
        expect(rep_page.locator("#cart-total")).to_contain_text("18.50")  # 7.50 + 11.00
        place = rep_page.get_by_role("button", name="Place order")
        place.dblclick()  # one order for a double click: the console's Idempotency-Key
        expect(rep_page.locator("#placed-by")).to_contain_text(
            f"Placed by {rep['name']} on behalf of {org['name']}"
        )
        orders = ok(world.login(buyer).get("orders", "/v1/orders"))["items"]
        assert len(orders) == 1 and orders[0]["placed_by"]["id"] == rep["id"]

        # The buyer sees the order, placed by the rep.
        buyer_page.goto("/orders")
        expect(buyer_page.locator("#orders")).to_contain_text(rep["name"])
        buyer_page.locator("#orders a").first.click()
        expect(buyer_page.locator("#placed-by")).to_contain_text(f"Placed by {rep['name']}")

        rep_page.get_by_role("button", name="Sign in as yourself").click()
        expect(rep_page).to_have_url(f"{console_url}/companies")
        expect(rep_page.locator("#not-acting")).to_be_visible()
        expect(rep_page.locator("#acting-badge")).to_have_count(0)

    # The acting session ended in identity, and cart no longer honours it (its lock is gone).
    [session] = _acting_sessions(world, org)
    assert session["end_reason"] == "stopped" and session["ended_at"]
    buyer_api = world.login(buyer)
    wait_until(
        lambda: ok(buyer_api.get("cart", "/v1/cart"))["lock"] is None,
        what="the ended session's lock released by cart",
    )


def test_seed_001_many_companies_the_lock_and_a_supervisors_take_over(
    world: World, browser: Browser, console_url: str
) -> None:
    prefix = unique("Seed001")
    orgs = [
        ok(
            world.admin.post(
                "identity",
                "/v1/orgs",
                json={"name": f"{prefix} {n:02d}", "contract_number": unique("C"), "country": "AT"},
            ),
            201,
        )
        for n in range(23)
    ]
    target = orgs[5]
    permissions = ["place_orders_as_customer", "view_as_customer"]
    rep = world.staff(roles=["sales_rep"], permissions=permissions, caretaker_of=orgs)
    colleague = world.staff(roles=["sales_rep"], permissions=permissions, caretaker_of=[target])
    supervisor = world.staff(
        roles=["csr_supervisor"], permissions=permissions, caretaker_of=[target]
    )
    with (
        person(browser, console_url) as rep_page,
        person(browser, console_url) as colleague_page,
        person(browser, console_url) as supervisor_page,
    ):
        sign_in(rep_page, rep["email"])
        expect(company_name_cells(rep_page)).to_have_count(20)  # one page holds at most 20
        rep_page.get_by_role("link", name="Next").click()
        expect(company_name_cells(rep_page)).to_have_text(
            [f"{prefix} {n:02d}" for n in range(20, 23)]
        )
        rep_page.get_by_role("link", name="Previous").click()
        expect(company_name_cells(rep_page)).to_have_count(20)
        rep_page.get_by_label("Search by name, contract number or country").fill(target["name"])
        rep_page.get_by_role("button", name="Search").click()
        expect(company_name_cells(rep_page)).to_have_text([target["name"]])

        rep_page.get_by_role("button", name=f"Log in as customer {target['name']}").click()
        rep_page.goto("/cart")
        rep_page.get_by_role("button", name="Lock the cart").click()
        expect(rep_page.locator("#lock")).to_contain_text("You hold the lock")

        sign_in(colleague_page, colleague["email"])
        act_as(colleague_page, target["name"])
        colleague_page.goto("/cart")
        expect(colleague_page.locator("#locked-by")).to_have_text(f"Locked by {rep['name']}")
        shot(colleague_page, "cart-under-lock")

        sign_in(supervisor_page, supervisor["email"])
        act_as(supervisor_page, target["name"])
        supervisor_page.goto("/cart")
        supervisor_page.get_by_role("button", name=f"Take over from {rep['name']}").click()
        expect(supervisor_page.locator("#lock")).to_contain_text("You hold the lock")
        expect(supervisor_page.locator("main")).to_contain_text(f"taken over from {rep['name']}")

        # The first rep's next change is refused on the page, naming the new holder.
        rep_page.goto("/catalog?q=" + world.skus[2])
        rep_page.locator(f"tr[data-sku='{world.skus[2]}'] button").click()
        expect(rep_page.locator(".error")).to_contain_text(
            f"the cart is locked by {supervisor['name']}"
        )
        assert "Traceback" not in text_of(rep_page)


def test_view_mode_offers_no_change_and_a_forged_post_is_refused(
    world: World, browser: Browser, console_url: str
) -> None:
    csr = world.staff(roles=["csr"], permissions=["view_as_customer"], caretaker_of=[world.org_a])
    buyer_api = world.login(world.buyer_a)
    ok(buyer_api.post("cart", "/v1/cart/items", json={"sku": world.skus[0], "quantity": 2}))
    order = ok(
        buyer_api.post("orders", "/v1/orders", headers={"Idempotency-Key": unique("k")}), 201
    )
    ok(buyer_api.post("cart", "/v1/cart/items", json={"sku": world.skus[1], "quantity": 1}))
    with person(browser, console_url) as page:
        sign_in(page, csr["email"])
        expect(
            page.get_by_role("button", name=f"Log in as customer {world.org_a['name']}")
        ).to_have_count(0)
        act_as(page, world.org_a["name"], mode="view")
        expect(page.locator("#acting-badge summary")).to_contain_text("view only")
        for path in ("/catalog", "/cart", f"/orders/{order['id']}"):
            page.goto(path)
            expect(page.locator("#why-disabled")).to_contain_text("View-only acting session")
            changing = page.locator("main form[method=post] button")
            assert changing.count() > 0
            for index in range(changing.count()):
                expect(changing.nth(index)).to_be_disabled()
        page.goto("/catalog")
        csrf = page.locator("input[name=csrf_token]").first.get_attribute("value")
        forged = page.request.post(
            "/cart/items",
            form={"csrf_token": csrf or "", "sku": world.skus[0], "quantity": "5"},
            max_redirects=0,
        )
        assert forged.status == 403, forged.text()
        assert "view" in forged.text().lower()
    assert [i["quantity"] for i in ok(buyer_api.get("cart", "/v1/cart"))["items"]] == [1]
