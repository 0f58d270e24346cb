"""Cart and orders in one process (ONBEHALF_COLOCATE=cart+orders): the same answers, refusals and
audit as apart, orders' requests of cart answered without the bus, one restart for both; with
catalog beside cart, its price quotes answered without the bus too."""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from nats.aio.msg import Msg

from devtools.stacks import connect_bus, start_replica
from libs.common.checkout import CHECKOUT_SUBJECT
from libs.common.quotes import QUOTE_SUBJECT
from libs.contracts.cart import CartSnapshotRequest
from onbehalf.colocated import SPEC_VARIABLE as COLOCATED_SPEC_VARIABLE
from onbehalf.stack import (
    PROJECT_ROOT,
    Stack,
    StackError,
    parse_colocate,
    start_stack,
    wait_healthy,
)
from onbehalf.supervise import Supervisor
from tests.cart.people import acting_staff
from tests.support import Api, World, audit_events, build_world, ok, security_reviewer, wait_until

ADMIN = "admin@colocated.test"
CART_REQUESTS = (CartSnapshotRequest.subject, CHECKOUT_SUBJECT)


@pytest.fixture(scope="module")
def colocated(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Stack, Api]]:
    password = secrets.token_urlsafe(16)
    workdir = tmp_path_factory.mktemp("colocated")
    stack = start_stack(
        workdir / "stack",
        admin_email=ADMIN,
        admin_password=password,
        colocate="cart+orders",
        extra_env={"ONBEHALF_TRACE_FILE": str(workdir / "spans.jsonl")},
    )
    try:
        with httpx.Client(timeout=15.0) as client:
            yield stack, Api(stack=stack, client=client).login(ADMIN, password)
    finally:
        stack.stop()


@pytest.fixture
def shared_world(colocated: tuple[Stack, Api]) -> World:
    return build_world(colocated[1])


def _place_acting_order(
    world: World, key: str, *, traceparent: str | None = None
) -> tuple[dict[str, Any], dict[str, Any]]:
    rep = world.login(world.rep)
    acting, started = world.act_as(rep, world.org_a)
    ok(acting.post("cart", "/v1/cart/items", json={"sku": world.skus[0], "quantity": 2}))
    headers = {"Idempotency-Key": key, **({"traceparent": traceparent} if traceparent else {})}
    order = ok(acting.post("orders", "/v1/orders", headers=headers), 201)
    return order, started


async def _seen_on_the_bus(
    stack: Stack, listener: str, subjects: tuple[str, ...], act: Callable[[], object]
) -> list[str]:
    """Do `act` while listening, as `listener` may, on `subjects`: the subjects of the
    requests that crossed the bus meanwhile."""
    nc = await connect_bus(stack, listener)
    seen: list[str] = []

    async def heard(message: Msg) -> None:
        seen.append(message.subject)

    try:
        for subject in subjects:
            await nc.subscribe(subject, cb=heard)  # no queue group: a copy of every request
        await nc.flush()
        act()
        # Whatever was published before the last answer arrives before this round trip ends.
        await nc.flush()
    finally:
        await nc.close()
    return seen


async def _requests_of_cart_seen_on_the_bus(stack: Stack, world: World) -> list[str]:
    """Place an acting order while listening, as cart may, on the subjects orders asks cart on."""
    return await _seen_on_the_bus(
        stack, "cart", CART_REQUESTS, lambda: _place_acting_order(world, "listened")
    )


def _add_priced_item(world: World) -> dict[str, Any]:
    """An acting rep adds an item to the customer's cart: cart asks catalog for its price."""
    acting, _ = world.act_as(world.login(world.rep), world.org_a)
    cart = ok(acting.post("cart", "/v1/cart/items", json={"sku": world.skus[0], "quantity": 3}))
    return next(line for line in cart["items"] if line["sku"] == world.skus[0])


async def _quotes_seen_on_the_bus(stack: Stack, world: World) -> tuple[list[str], dict[str, Any]]:
    added: list[dict[str, Any]] = []
    seen = await _seen_on_the_bus(
        stack, "catalog", (QUOTE_SUBJECT,), lambda: added.append(_add_priced_item(world))
    )
    return seen, added[0]


def test_cart_and_orders_share_a_process_and_an_acting_order_is_placed_and_audited(
    colocated: tuple[Stack, Api], shared_world: World
) -> None:
    stack, admin = colocated
    assert stack.services["cart"].process.pid == stack.services["orders"].process.pid
    assert stack.services["catalog"].process.pid != stack.services["cart"].process.pid
    # Each still answers on its own port, as itself.
    assert ok(admin.get("cart", "/healthz"))["service"] == "cart"
    assert ok(admin.get("orders", "/healthz"))["service"] == "orders"

    world = shared_world
    order, started = _place_acting_order(world, "one")
    assert order["customer_org_id"] == world.org_a["id"]
    assert order["placed_by"]["id"] == world.rep["id"] and order["placed_on_behalf"] is True
    assert order["total"] == "15.00"  # catalog's price for A, quoted through the bus
    buyer = world.login(world.buyer_a)
    assert ok(buyer.get("cart", "/v1/cart"))["items"] == []  # checked out before the answer

    wanted = {
        "com.onbehalf.cart.item.added",
        "com.onbehalf.orders.order.placed",
        "com.onbehalf.cart.checked_out",
    }

    def recorded() -> list[dict[str, Any]] | None:
        events = audit_events(security_reviewer(admin), session_id=started["session_id"])
        return events if wanted <= {e["type"] for e in events} else None

    for event in wait_until(recorded, what="item added, order placed, cart checked out audited"):
        assert event["actor"]["id"] == world.rep["id"]
        assert event["subject"]["org_id"] == world.org_a["id"]


def test_the_request_answered_in_the_process_stays_in_the_orders_trace(
    colocated: tuple[Stack, Api], shared_world: World
) -> None:
    """The shared process's spans: orders' in-process request of cart is the parent of cart's
    answer, which asks catalog for prices over NATS, all in the trace of the order's request;
    each service's spans carry its own name, as when it runs alone."""
    stack = colocated[0]
    trace_file = stack.workdir.parent / "spans.jsonl"
    # The order's request continues a trace of the test's own (W3C traceparent).
    trace_id = secrets.token_hex(16)
    _place_acting_order(shared_world, "traced", traceparent=f"00-{trace_id}-{'1' * 16}-01")

    def order_trace() -> list[dict[str, Any]] | None:
        spans = [json.loads(line) for line in trace_file.read_text().splitlines() if line]
        mine = [s for s in spans if s["trace_id"] == trace_id]
        # A span is written when it ends, and a parent ends after its children (the order's
        # server span after its answer is sent): the test can read the file in between, so it
        # waits for the spans it names and for every parent of those it has.
        names = {(s["name"], s["kind"]) for s in mine}
        ids = {s["span_id"] for s in mine} | {"1" * 16}
        done = {("serve catalog.quote", "SERVER"), ("POST /v1/orders", "SERVER")} <= names
        return mine if done and all(s["parent_id"] in ids for s in mine) else None

    spans = wait_until(order_trace, what="the spans of the placed order")
    by_id = {s["span_id"]: s for s in spans}
    asked = [s for s in spans if s["name"] == "request cart.order_snapshot"]
    assert asked and {s["service"] for s in asked} == {"onbehalf-orders"}
    assert {s["attributes"]["messaging.system"] for s in asked} == {"in-process"}
    served = [s for s in spans if s["name"] == "serve cart.order_snapshot"]
    assert served and all(by_id[s["parent_id"]] in asked for s in served)
    assert {s["service"] for s in served} == {"onbehalf-cart"}
    placed = [s for s in spans if s["name"] == "POST /v1/orders" and s["kind"] == "SERVER"]
    assert placed and {s["service"] for s in placed} == {"onbehalf-orders"}
    quotes = [s for s in spans if s["name"] == "serve catalog.quote"]
    assert {s["service"] for s in quotes} == {"onbehalf-catalog"}  # catalog: over the bus
    assert all(s["parent_id"] in by_id for s in spans if s["parent_id"] != "1" * 16)
    assert any(s["parent_id"] == "1" * 16 for s in spans)  # the test's trace is continued


async def test_orders_asks_cart_in_the_process_not_over_the_bus(
    colocated: tuple[Stack, Api], shared_world: World
) -> None:
    assert await _requests_of_cart_seen_on_the_bus(colocated[0], shared_world) == []


async def test_apart_the_same_requests_cross_the_bus(stack: Stack, world: World) -> None:
    """The listener above hears them when cart and orders run apart (the default): its empty
    list means the requests stayed in the process, not that it could not hear."""
    assert sorted(await _requests_of_cart_seen_on_the_bus(stack, world)) == sorted(CART_REQUESTS)


async def test_apart_cart_asks_catalog_for_prices_over_the_bus(stack: Stack, world: World) -> None:
    seen, line = await _quotes_seen_on_the_bus(stack, world)
    assert seen == [QUOTE_SUBJECT]
    assert line["quantity"] == 3 and line["unit_price"]


async def test_a_replica_of_a_colocated_service_is_another_process_of_its_group(
    colocated: tuple[Stack, Api], shared_world: World
) -> None:
    """Scaling out a shared process (devtools.stacks.start_replica, bench --processes): the
    replica brings cart and orders together again, each on a port of its own, so an order
    placed through it still asks cart in its process, and its cart is the customer's one."""
    stack = colocated[0]
    orders_2 = start_replica(stack, "orders")
    cart_2 = next(
        s for s in stack.replicas.values() if s.name == "cart" and s.process is orders_2.process
    )
    assert orders_2.process.pid != stack.services["orders"].process.pid
    assert cart_2.port != orders_2.port

    world = shared_world
    acting, _ = world.act_as(world.login(world.rep), world.org_a)
    bearer = {"Authorization": f"Bearer {acting.token}"}
    placed: list[httpx.Response] = []

    def place_through_the_replica() -> None:
        with httpx.Client(timeout=15.0) as http:
            line = {"sku": world.skus[0], "quantity": 2}
            ok(
                http.post(
                    f"http://127.0.0.1:{cart_2.port}/v1/cart/items", headers=bearer, json=line
                )
            )
            placed.append(
                http.post(
                    f"http://127.0.0.1:{orders_2.port}/v1/orders",
                    headers={**bearer, "Idempotency-Key": "through-the-replica"},
                )
            )

    assert await _seen_on_the_bus(stack, "cart", CART_REQUESTS, place_through_the_replica) == []
    order = ok(placed[0], 201)
    assert order["total"] == "15.00" and order["placed_on_behalf"] is True
    assert ok(acting.get("cart", "/v1/cart"))["items"] == []  # the first process sees it out


@pytest.fixture(scope="module")
def catalog_beside_cart(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Stack, Api]]:
    password = secrets.token_urlsafe(16)
    stack = start_stack(
        tmp_path_factory.mktemp("catalog-cart") / "stack",
        admin_email=ADMIN,
        admin_password=password,
        colocate="catalog+cart",
    )
    try:
        with httpx.Client(timeout=15.0) as client:
            yield stack, Api(stack=stack, client=client).login(ADMIN, password)
    finally:
        stack.stop()


async def test_with_catalog_beside_it_cart_gets_prices_in_the_process_not_over_the_bus(
    catalog_beside_cart: tuple[Stack, Api],
) -> None:
    """The same price as over the bus (the customer's, from the quote), asked of catalog's
    responder in the process: nothing crosses the bus."""
    stack, admin = catalog_beside_cart
    world = build_world(admin)
    seen, line = await _quotes_seen_on_the_bus(stack, world)
    assert seen == []
    assert line["quantity"] == 3 and line["unit_price"]
    listed = ok(world.login(world.buyer_a).get("catalog", f"/v1/products?q={world.skus[0]}"))
    product = next(item for item in listed["items"] if item["sku"] == world.skus[0])
    assert line["unit_price"] == product["price"]  # what the customer pays, as over the bus


def test_cart_refusals_reach_the_caller_unchanged(shared_world: World) -> None:
    world = shared_world
    viewing, _, _ = acting_staff(world, mode="view")
    refused = viewing.post("orders", "/v1/orders", headers={"Idempotency-Key": "view"})
    assert refused.status_code == 403 and refused.json()["reason"]  # the policy's reason

    rep, rep_user, _ = acting_staff(world)
    buyer = world.login(world.buyer_a)
    ok(rep.post("cart", "/v1/cart/lock"))
    ok(rep.post("cart", "/v1/cart/items", json={"sku": world.skus[0], "quantity": 1}))
    blocked = buyer.post("orders", "/v1/orders", headers={"Idempotency-Key": "buyer"})
    assert blocked.status_code == 409 and rep_user["name"] in blocked.json()["detail"]
    assert ok(buyer.get("cart", "/v1/cart"))["items"]  # nothing checked out by the refusal


def test_colocation_names_two_or_more_services_once_each() -> None:
    assert parse_colocate("cart+orders") == [("cart", "orders")]
    assert parse_colocate("cart+orders, catalog+audit") == [
        ("cart", "orders"),
        ("catalog", "audit"),
    ]
    assert parse_colocate("") == []
    for wrong in ("cart", "cart+cart", "cart+orders,orders+audit", "identity+cart", "cart+shop"):
        with pytest.raises(StackError, match="ONBEHALF_COLOCATE"):
            parse_colocate(wrong)


@pytest.mark.parametrize(
    ("spec", "says"),
    [
        (None, "ONBEHALF_COLOCATED is not set"),
        ("{cart: 8003}", "ONBEHALF_COLOCATED is not JSON"),
        ('["cart", "orders"]', "ONBEHALF_COLOCATED must be an object"),
        ('{"cart": {"port": "8003"}, "orders": {"port": 8004}}', "cart needs a port"),
        ('{"cart": {"port": 8003, "env": {"A": 1}}, "orders": {"port": 8004}}', "cart's env"),
        ('{"identity": {"port": 8001}, "cart": {"port": 8003}}', "got ['identity', 'cart']"),
    ],
)
def test_a_hand_written_spec_that_is_wrong_is_refused_in_one_line(
    spec: str | None, says: str
) -> None:
    """The launcher run by hand (a shared pod, docs/operations.md): exit 2 and one line saying
    what is wrong, before any service is built."""
    env = {k: v for k, v in os.environ.items() if k != COLOCATED_SPEC_VARIABLE}
    if spec is not None:
        env[COLOCATED_SPEC_VARIABLE] = spec
    launched = subprocess.run(
        [sys.executable, "-m", "onbehalf.colocated"],
        env=env,
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert launched.returncode == 2, launched.stderr
    assert launched.stderr.splitlines() == [launched.stderr.strip()]
    assert launched.stderr.startswith("onbehalf.colocated: ") and says in launched.stderr


def test_one_service_failing_to_start_stops_the_shared_process(tmp_path: Path) -> None:
    """Cart cannot open its database: the process exits (code 3) rather than serve orders
    alone, and the stack says which service failed and why."""
    not_a_folder = tmp_path / "not-a-folder"
    not_a_folder.write_text("a file where cart's database folder should be")
    with pytest.raises(StackError, match=r"cart exited at start \(code 3\)") as failed:
        start_stack(
            tmp_path / "stack",
            admin_email=ADMIN,
            admin_password=secrets.token_urlsafe(16),
            colocate="cart+orders",
            database_urls={"cart": f"sqlite+aiosqlite:///{not_a_folder / 'cart.db'}"},
        )
    assert "not-a-folder" in str(failed.value)  # the end of the log: cart's own error


def test_the_shared_process_goes_down_and_comes_back_as_one(
    colocated: tuple[Stack, Api],
) -> None:
    """Last in this file: it kills the module's shared process (the supervisor brings it back)."""
    stack, admin = colocated
    said: list[str] = []
    supervisor = Supervisor(stack, say=said.append, first_backoff=0.1)
    old_pid = stack.services["cart"].process.pid
    stack.services["orders"].kill()  # kill -9 of the one process
    assert stack.services["cart"].process.poll() is not None  # cart went with it
    assert supervisor.check() == ["cart+orders"]
    assert any(line.startswith("cart+orders exited") for line in said)
    for name in ("cart", "orders"):
        wait_healthy(stack.services[name])
    new_pid = stack.services["cart"].process.pid
    assert new_pid != old_pid and stack.services["orders"].process.pid == new_pid
    assert supervisor.check() == []
    order, _ = _place_acting_order(build_world(admin), "after-restart")
    assert order["total"] == "15.00"


def test_sigterm_stops_every_service_of_the_process_gracefully(
    colocated: tuple[Stack, Api],
) -> None:
    """After the restart above: SIGTERM (what `make run`'s Ctrl-C and Kubernetes send) ends
    both services' lifespans and the process exits 0, not killed by the signal."""
    process = colocated[0].services["cart"].process
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=30) == 0
    assert colocated[0].services["orders"].process.poll() == 0
