"""The same races against PostgreSQL: cart and orders on a real server (pgserver), in a stack of their own."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from devtools.stacks import stack_on_postgres
from libs.common.db import create_engine
from onbehalf.stack import Stack
from tests.cart.people import acting_staff, at_once, customer_admin
from tests.conftest import ADMIN_EMAIL
from tests.support import Api, World, build_world, ok, unique, wait_until

pytestmark = pytest.mark.postgres


@pytest.fixture(scope="module")
def pg_stack(tmp_path_factory: pytest.TempPathFactory, admin_password: str) -> Iterator[Stack]:
    with stack_on_postgres(
        tmp_path_factory.mktemp("pg-stack"),
        services=("cart", "orders"),
        admin_email=ADMIN_EMAIL,
        admin_password=admin_password,
        extra_env={
            # Any caretaker may take over a lock idle for a second; staff must lock first.
            "ONBEHALF_LOCK_TAKEOVER_IDLE_SECONDS": "0",
            "ONBEHALF_REQUIRE_LOCK_FOR_ACTING_CHANGES": "true",
        },
    ) as stack:
        yield stack


@pytest.fixture
def pg_world(pg_stack: Stack, http: httpx.Client, admin_password: str) -> World:
    return build_world(Api(stack=pg_stack, client=http).login(ADMIN_EMAIL, admin_password))


def test_locking_at_once_exactly_one_wins(pg_world: World) -> None:
    staff = [acting_staff(pg_world) for _ in range(4)]
    buyer = pg_world.login(pg_world.buyer_a)
    # The first round creates the organisation's lock row; later rounds race on an existing
    # free row, where only the compare-and-set tells the winner from the losers.
    for _ in range(3):
        responses = at_once([(api, "POST", "cart", "/v1/cart/lock", {}) for api, _, _ in staff])
        assert sorted(r.status_code for r in responses) == [200, 409, 409, 409], [
            r.text for r in responses
        ]
        winner = next(r.json() for r in responses if r.status_code == 200)
        losers = [r.json() for r in responses if r.status_code == 409]
        assert all(body["lock"]["session_id"] == winner["session_id"] for body in losers)
        assert ok(buyer.get("cart", "/v1/cart"))["lock"] == winner
        holder = next(api for api, _, s in staff if s["session_id"] == winner["session_id"])
        assert holder.delete("cart", "/v1/cart/lock").status_code == 204


def test_taking_over_at_once_exactly_one_wins(pg_world: World) -> None:
    rep, _, rep_session = acting_staff(pg_world)
    ok(rep.post("cart", "/v1/cart/lock"))
    supervisors = [acting_staff(pg_world, roles=["csr_supervisor"]) for _ in range(4)]
    body = {"json": {"holder_session_id": rep_session["session_id"]}}
    responses = at_once(
        [(api, "POST", "cart", "/v1/cart/lock/takeover", body) for api, _, _ in supervisors]
    )
    assert sorted(r.status_code for r in responses) == [200, 409, 409, 409], [
        r.text for r in responses
    ]
    winner = next(r.json() for r in responses if r.status_code == 200)
    assert ok(rep.get("cart", "/v1/cart"))["lock"]["session_id"] == winner["session_id"]
    refused = rep.post("cart", "/v1/cart/items", json={"sku": pg_world.skus[0], "quantity": 1})
    assert refused.status_code == 409
    assert refused.json()["lock"]["holder"]["name"] == winner["holder"]["name"]


def test_changes_queue_and_a_shared_version_lets_exactly_one_through(pg_world: World) -> None:
    buyer = pg_world.login(pg_world.buyer_a)
    sku = pg_world.skus[0]
    # Without If-Match, simultaneous changes all go through and none is lost.
    responses = at_once(
        [(buyer, "POST", "cart", "/v1/cart/items", {"json": {"sku": sku, "quantity": 1}})] * 6
    )
    assert [r.status_code for r in responses] == [200] * 6, [r.text for r in responses]
    cart = buyer.get("cart", "/v1/cart")
    assert ok(cart)["items"][0]["quantity"] == 6
    # With the same If-Match, exactly one.
    headers = {"If-Match": cart.headers["ETag"]}
    responses = at_once(
        [
            (
                buyer,
                "PATCH",
                "cart",
                f"/v1/cart/items/{sku}",
                {"json": {"quantity": q}, "headers": headers},
            )
            for q in (1, 2, 3, 4)
        ]
    )
    assert sorted(r.status_code for r in responses) == [200, 412, 412, 412]
    assert ok(buyer.get("cart", "/v1/cart"))["version"] == ok(cart)["version"] + 1


def test_cancelling_at_once_exactly_one_wins(pg_world: World) -> None:
    buyer = pg_world.login(pg_world.buyer_a)
    ok(buyer.post("cart", "/v1/cart/items", json={"sku": pg_world.skus[0], "quantity": 1}))
    order = ok(buyer.post("orders", "/v1/orders", headers={"Idempotency-Key": unique("k")}), 201)
    admin, _ = customer_admin(pg_world, pg_world.org_a)
    rep, _, _ = acting_staff(pg_world)
    path = f"/v1/orders/{order['id']}/cancel"
    responses = at_once([(api, "POST", "orders", path, {}) for api in (admin, rep, admin, rep)])
    assert sorted(r.status_code for r in responses) == [200, 409, 409, 409]


def test_idle_lock_is_taken_over_by_a_caretaker_and_staff_must_lock_first(pg_world: World) -> None:
    rep, _, rep_session = acting_staff(pg_world)
    colleague, colleague_user, _ = acting_staff(pg_world)
    sku = pg_world.skus[0]

    # This deployment requires staff to lock before changing; the customer's users need not.
    unlocked = rep.post("cart", "/v1/cart/items", json={"sku": sku, "quantity": 1})
    assert unlocked.status_code == 409 and "POST /v1/cart/lock" in unlocked.json()["detail"]
    ok(
        pg_world.login(pg_world.buyer_a).post(
            "cart", "/v1/cart/items", json={"sku": sku, "quantity": 1}
        )
    )

    ok(rep.post("cart", "/v1/cart/lock"))
    ok(rep.post("cart", "/v1/cart/items", json={"sku": sku, "quantity": 1}))
    named = {"holder_session_id": rep_session["session_id"]}
    in_use = colleague.post("cart", "/v1/cart/lock/takeover", json=named)
    assert in_use.status_code == 403 and in_use.json()["reason"].startswith(
        "the cart lock is in use"
    )

    # Idle longer than the limit (0 s here, so from the next whole second), any caretaker may.
    def taken() -> dict[str, Any] | None:
        response = colleague.post("cart", "/v1/cart/lock/takeover", json=named)
        return response.json() if response.status_code == 200 else None

    lock = wait_until(taken, what="the idle lock taken over")
    assert lock["holder"]["id"] == colleague_user["id"]
    ok(colleague.post("cart", "/v1/cart/items", json={"sku": sku, "quantity": 1}))
    assert rep.post("cart", "/v1/cart/items", json={"sku": sku, "quantity": 1}).status_code == 409


def test_a_checkout_queued_behind_a_change_empties_the_cart_as_the_change_left_it(
    pg_world: World, pg_stack: Stack
) -> None:
    """An order's checkout waits for the organisation's lock row like every cart change; it
    must then see the cart as the change it waited for left it. Here the test itself is that
    change: it holds the lock row, lets the checkout queue behind it, adds 5 to the ordered
    line and commits. The order took 1, so 5 stay; a checkout that acted on the cart as it was
    before the wait would close the cart and lose them."""
    buyer = pg_world.login(pg_world.buyer_a)
    sku = pg_world.skus[0]
    cart = ok(buyer.post("cart", "/v1/cart/items", json={"sku": sku, "quantity": 1}))
    url = pg_stack.database_urls["cart"]
    held, changed = threading.Event(), threading.Event()

    async def change_behind_the_lock() -> None:
        engine = create_engine(url)
        try:
            async with engine.connect() as watcher, engine.begin() as change:
                await change.execute(
                    text("SELECT version FROM cart_locks WHERE org_id = :org FOR UPDATE"),
                    {"org": cart["org_id"]},
                )
                held.set()
                # A row lock is waited for on its holder's transaction id.
                waiting = text(
                    "SELECT count(*) FROM pg_locks WHERE locktype = 'transactionid' AND NOT granted"
                )
                deadline = asyncio.get_running_loop().time() + 20.0
                while (await watcher.execute(waiting)).scalar() == 0:
                    assert asyncio.get_running_loop().time() < deadline, "no checkout queued"
                    await asyncio.sleep(0.01)
                await change.execute(
                    text("UPDATE cart_items SET quantity = quantity + 5 WHERE cart_id = :cart"),
                    {"cart": cart["id"]},
                )
                await change.execute(
                    text("UPDATE carts SET version = version + 1 WHERE id = :cart"),
                    {"cart": cart["id"]},
                )
            changed.set()
        finally:
            await engine.dispose()

    with ThreadPoolExecutor(max_workers=1) as pool:
        holder = pool.submit(asyncio.run, change_behind_the_lock())
        assert held.wait(20.0)
        placed = buyer.post("orders", "/v1/orders", headers={"Idempotency-Key": unique("k")})
        holder.result(timeout=30.0)
    assert placed.status_code == 201, placed.text
    assert changed.is_set()

    def lines() -> list[tuple[str, int]]:
        return [
            (item["sku"], item["quantity"]) for item in ok(buyer.get("cart", "/v1/cart"))["items"]
        ]

    # 6 until the checkout has run (the change's 1 + 5); then what the checkout left.
    # (Wrapped: an emptied cart's [] is an answer too.)
    (left,) = wait_until(
        lambda: (now,) if (now := lines()) != [(sku, 6)] else None, what="checkout"
    )
    assert left == [(sku, 5)]
