"""The cart lock on SQLite: holder, 409 for everyone else, release, end with the session, take-over, races."""

from __future__ import annotations

from typing import Any

import httpx

from tests.cart.people import acting_staff, at_once, reviewer
from tests.support import Api, World, audit_events, ok, wait_until


def _add(api: Api, sku: str, quantity: int = 1) -> httpx.Response:
    return api.post("cart", "/v1/cart/items", json={"sku": sku, "quantity": quantity})


def _assert_locked_by(response: httpx.Response, name: str) -> None:
    assert response.status_code == 409, response.text
    body = response.json()
    assert name in body["detail"]
    assert body["lock"]["holder"]["name"] == name


def test_holder_changes_the_cart_and_everyone_else_gets_409_naming_them(world: World) -> None:
    rep, rep_user, rep_session = acting_staff(world)
    colleague, _, _ = acting_staff(world)
    buyer = world.login(world.buyer_a)
    sku = world.skus[0]

    lock = ok(rep.post("cart", "/v1/cart/lock"))
    assert lock["holder"] == {"id": rep_user["id"], "name": rep_user["name"]}
    assert lock["session_id"] == rep_session["session_id"]
    assert lock["since"] and lock["last_activity_at"]
    assert ok(rep.post("cart", "/v1/cart/lock"))["since"] == lock["since"]  # locking again: no-op

    # Everyone sees who holds the lock, the customer's own users included.
    seen = ok(buyer.get("cart", "/v1/cart"))["lock"]
    assert seen["holder"]["name"] == rep_user["name"]
    assert seen["session_id"] == rep_session["session_id"]

    before = ok(buyer.get("cart", "/v1/cart"))
    _assert_locked_by(_add(buyer, sku), rep_user["name"])
    _assert_locked_by(_add(colleague, sku), rep_user["name"])
    _assert_locked_by(colleague.post("cart", "/v1/cart/lock"), rep_user["name"])
    _assert_locked_by(colleague.delete("cart", "/v1/cart/lock"), rep_user["name"])
    # Placing an order empties the cart, so it is a change too.
    placing = buyer.post("orders", "/v1/orders", headers={"Idempotency-Key": "while-locked"})
    _assert_locked_by(placing, rep_user["name"])
    assert ok(buyer.get("cart", "/v1/cart")) == before  # nothing was written

    cart = ok(_add(rep, sku, 2))
    assert [(i["sku"], i["quantity"]) for i in cart["items"]] == [(sku, 2)]
    assert cart["lock"]["last_activity_at"] >= lock["last_activity_at"]

    assert rep.delete("cart", "/v1/cart/lock").status_code == 204
    assert rep.delete("cart", "/v1/cart/lock").status_code == 204  # releasing a free cart: no-op
    assert ok(buyer.get("cart", "/v1/cart"))["lock"] is None
    assert ok(_add(buyer, sku))["items"][0]["quantity"] == 3

    audit = reviewer(world)

    def lock_events() -> list[dict[str, Any]] | None:
        found = audit_events(audit, session_id=rep_session["session_id"])
        types = [e["type"] for e in found if e["type"].startswith("com.onbehalf.cart.lock.")]
        return (
            found
            if {"com.onbehalf.cart.lock.acquired", "com.onbehalf.cart.lock.released"} <= set(types)
            else None
        )

    events = wait_until(lock_events, what="lock acquired and released, audited")
    acquired = next(e for e in events if e["type"] == "com.onbehalf.cart.lock.acquired")
    released = next(e for e in events if e["type"] == "com.onbehalf.cart.lock.released")
    for event in (acquired, released):
        assert event["actor"]["id"] == rep_user["id"]
        assert event["subject"]["org_id"] == world.org_a["id"]
    assert acquired["data"]["holder"]["name"] == rep_user["name"]
    assert released["data"]["reason"] == "released"


def test_only_full_mode_acting_staff_lock_and_the_policy_says_why(world: World) -> None:
    viewing, _, _ = acting_staff(world, mode="view")
    refused = viewing.post("cart", "/v1/cart/lock")
    assert refused.status_code == 403
    assert refused.json()["reason"] == "a view-mode acting session cannot lock the cart"

    buyer = world.login(world.buyer_a)
    for response in (buyer.post("cart", "/v1/cart/lock"), buyer.delete("cart", "/v1/cart/lock")):
        assert response.status_code == 403
        assert response.json()["reason"] == "only a staff member acting in full mode locks the cart"

    plain_staff = world.login(world.rep)
    refused = plain_staff.post("cart", "/v1/cart/lock")
    assert refused.status_code == 403
    assert refused.json()["reason"] == (
        "staff reach a customer's catalog, cart and orders only by acting as the customer"
    )
    assert ok(buyer.get("cart", "/v1/cart"))["lock"] is None


def test_the_lock_ends_with_the_holders_acting_session(world: World) -> None:
    rep, rep_user, rep_session = acting_staff(world)
    buyer = world.login(world.buyer_a)
    ok(rep.post("cart", "/v1/cart/lock"))
    _assert_locked_by(_add(buyer, world.skus[0]), rep_user["name"])

    assert rep.delete("identity", "/v1/acting-as/current").status_code == 204

    # Once the revocation reaches cart, the lock blocks nobody: the buyer's change goes through.
    def added() -> dict[str, Any] | None:
        response = _add(buyer, world.skus[0])
        return response.json() if response.status_code == 200 else None

    cart = wait_until(added, what="the buyer changes the cart after the session ended")
    assert cart["items"][0]["quantity"] == 1 and cart["lock"] is None

    audit = reviewer(world)

    def released() -> list[dict[str, Any]]:
        return [
            e
            for e in audit_events(audit, session_id=rep_session["session_id"])
            if e["type"] == "com.onbehalf.cart.lock.released"
        ]

    [event] = wait_until(released, what="the lock's end audited")
    assert event["data"]["reason"] == "session_ended"
    assert event["data"]["session_end_reason"] == "stopped"
    assert event["data"]["holder"]["name"] == rep_user["name"]
    assert event["subject"]["org_id"] == world.org_a["id"]


def test_a_supervisor_takes_over_and_the_previous_holder_is_refused(world: World) -> None:
    rep, rep_user, rep_session = acting_staff(world)
    supervisor, sup_user, sup_session = acting_staff(world, roles=["csr_supervisor"])
    ok(rep.post("cart", "/v1/cart/lock"))

    # A take-over names the lock the caller saw.
    missing = supervisor.post("cart", "/v1/cart/lock/takeover", json={})
    assert missing.status_code == 422 and "holder_session_id" in missing.json()["detail"]
    taken = ok(
        supervisor.post(
            "cart",
            "/v1/cart/lock/takeover",
            json={"holder_session_id": rep_session["session_id"]},
        )
    )
    assert taken["holder"] == {"id": sup_user["id"], "name": sup_user["name"]}
    assert taken["session_id"] == sup_session["session_id"]

    _assert_locked_by(_add(rep, world.skus[0]), sup_user["name"])
    _assert_locked_by(rep.delete("cart", "/v1/cart/lock"), sup_user["name"])
    ok(_add(supervisor, world.skus[0]))

    # The previous holder is a caretaker without the supervisor role: the lock is in use.
    refused = rep.post(
        "cart", "/v1/cart/lock/takeover", json={"holder_session_id": sup_session["session_id"]}
    )
    assert refused.status_code == 403
    assert refused.json()["reason"].startswith("the cart lock is in use")

    audit = reviewer(world)

    def taken_over() -> list[dict[str, Any]]:
        return audit_events(
            audit, session_id=sup_session["session_id"], type="com.onbehalf.cart.lock.taken_over"
        )

    [event] = wait_until(taken_over, what="the take-over audited")
    assert event["data"]["previous_holder"]["id"] == rep_user["id"]
    assert event["data"]["previous_holder"]["session_id"] == rep_session["session_id"]
    assert event["data"]["holder"]["id"] == sup_user["id"]
    assert event["actor"]["id"] == sup_user["id"]
    assert event["subject"]["org_id"] == world.org_a["id"]


def test_a_take_over_of_a_lock_that_changed_hands_is_409(world: World) -> None:
    rep, _, rep_session = acting_staff(world)
    first, first_user, _ = acting_staff(world, roles=["csr_supervisor"])
    second, _, _ = acting_staff(world, roles=["platform_admin"])
    ok(rep.post("cart", "/v1/cart/lock"))
    named = {"json": {"holder_session_id": rep_session["session_id"]}}
    ok(first.post("cart", "/v1/cart/lock/takeover", **named))
    # The second saw the rep's lock; it is the first supervisor's by now.
    _assert_locked_by(second.post("cart", "/v1/cart/lock/takeover", **named), first_user["name"])


def test_a_take_over_without_a_body_takes_the_current_holders_lock(world: World) -> None:
    """Contract v1: POST /v1/cart/lock/takeover with no body; the policy still decides."""
    rep, rep_user, _ = acting_staff(world)
    supervisor, sup_user, sup_session = acting_staff(world, roles=["csr_supervisor"])
    ok(rep.post("cart", "/v1/cart/lock"))
    own = ok(rep.post("cart", "/v1/cart/lock/takeover"))  # one's own lock: nothing to take
    assert own["holder"]["id"] == rep_user["id"]
    taken = ok(supervisor.post("cart", "/v1/cart/lock/takeover"))
    assert taken["holder"] == {"id": sup_user["id"], "name": sup_user["name"]}
    assert taken["session_id"] == sup_session["session_id"]
    _assert_locked_by(_add(rep, world.skus[0]), sup_user["name"])
    in_use = rep.post("cart", "/v1/cart/lock/takeover")
    assert in_use.status_code == 403
    assert in_use.json()["reason"].startswith("the cart lock is in use")


def test_two_staff_locking_at_once_exactly_one_wins(world: World) -> None:
    staff = [acting_staff(world) for _ in range(4)]
    responses = at_once([(api, "POST", "cart", "/v1/cart/lock", {}) for api, _, _ in staff])
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [200, 409, 409, 409], [r.text for r in responses]
    winner = next(r.json() for r in responses if r.status_code == 200)
    for response in responses:
        if response.status_code == 409:
            assert response.json()["lock"]["session_id"] == winner["session_id"]
    seen = ok(world.login(world.buyer_a).get("cart", "/v1/cart"))["lock"]
    assert seen["session_id"] == winner["session_id"]


def test_two_supervisors_taking_over_at_once_exactly_one_wins(world: World) -> None:
    rep, _, rep_session = acting_staff(world)
    supervisors = [acting_staff(world, roles=["csr_supervisor"]) for _ in range(3)]
    ok(rep.post("cart", "/v1/cart/lock"))
    body = {"json": {"holder_session_id": rep_session["session_id"]}}
    responses = at_once(
        [(api, "POST", "cart", "/v1/cart/lock/takeover", body) for api, _, _ in supervisors]
    )
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [200, 409, 409], [r.text for r in responses]
    winner = next(r.json() for r in responses if r.status_code == 200)
    assert ok(rep.get("cart", "/v1/cart"))["lock"]["session_id"] == winner["session_id"]
