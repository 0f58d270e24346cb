"""Events that prove their origin: forged `orders.order.placed` events are findings, not records."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from libs.common.events import EventContext, build_event, encode, service_source
from libs.common.signing import (
    EventSigningKey,
    key_id,
    load_public_keys,
    load_signing_key,
    public_keys_path,
    signing_key_path,
)
from onbehalf.stack import SERVICES, Stack, free_port, start_service
from tests.security.bus import bus_client
from tests.support import Api, World, ok, wait_until

ORDER_PLACED = "com.onbehalf.orders.order.placed"


def real_key(stack: Stack, service: str) -> EventSigningKey:
    """A service's real signing key, as an attacker who stole that one file would hold it."""
    return load_signing_key(signing_key_path(stack.secrets_dir, service), service=service)


def fresh_key(*, service: str, kid: str | None = None) -> EventSigningKey:
    private = Ed25519PrivateKey.generate()
    return EventSigningKey(
        service=service, kid=kid or key_id(private.public_key()), private_key=private
    )


def forged_order(
    world: World,
    *,
    source: str = service_source("orders"),
    type: str = ORDER_PLACED,
    key: Any = None,
) -> Any:
    """An order placed "by" the world's rep for customer A, for one cent."""
    context = EventContext(
        actor_id=world.rep["id"],
        actor_org_id=world.rep["org_id"],
        subject_org_id=world.org_a["id"],
        subject_user_id=None,
        acting_session_id=str(uuid.uuid4()),
        policy_revision="forged",
    )
    data = {"order_id": str(uuid.uuid4()), "total": "0.01", "currency": "EUR"}
    return build_event(source=source, type=type, data=data, context=context, signing_key=key)


async def _publish(stack: Stack, user: str, subject: str, payload: bytes, msg_id: str) -> None:
    """Straight into JetStream with the bus credentials of `user` (leaked or misused)."""
    nc = await bus_client(stack, user)
    try:
        await nc.jetstream().publish(subject, payload, headers={"Nats-Msg-Id": msg_id})
    finally:
        await nc.close()


def publish(stack: Stack, subject: str, event: Any, *, user: str = "orders") -> None:
    asyncio.run(_publish(stack, user, subject, encode(event), event.get_id()))


def finding_for(admin: Api, event_id: str) -> dict[str, Any] | None:
    items = ok(admin.get("audit", "/v1/audit/findings", params={"limit": 500}))["items"]
    return next((f for f in items if f["event_id"] == event_id), None)


def chained_finding(admin: Api, event_id: str) -> dict[str, Any] | None:
    """The `audit.finding.recorded` record (signed by audit, in the chain) about `event_id`."""
    params = {"type": "com.onbehalf.audit.finding.recorded", "limit": 500}
    items = ok(admin.get("audit", "/v1/audit/events", params=params))["items"]
    return next((e for e in items if e["data"]["event_id"] == event_id), None)


def recorded_ids(admin: Api, event_type: str) -> set[str]:
    params = {"type": event_type, "limit": 500}
    return {e["id"] for e in ok(admin.get("audit", "/v1/audit/events", params=params))["items"]}


Forgery = Callable[[Stack, World], tuple[str, Any, str]]


def _unsigned(stack: Stack, world: World) -> tuple[str, Any, str]:
    return "events.orders.order.placed", forged_order(world), "not signed"


def _orders_kid_other_key(stack: Stack, world: World) -> tuple[str, Any, str]:
    key = fresh_key(service="orders", kid=real_key(stack, "orders").kid)
    return "events.orders.order.placed", forged_order(world, key=key), "signature does not match"


def _unknown_key(stack: Stack, world: World) -> tuple[str, Any, str]:
    key = fresh_key(service="orders")
    return "events.orders.order.placed", forged_order(world, key=key), "unknown key"


def _cart_key_claims_orders(stack: Stack, world: World) -> tuple[str, Any, str]:
    event = forged_order(world, key=real_key(stack, "cart"))
    return "events.orders.order.placed", event, "signed by cart, but type"


def _cart_event_on_orders_subject(stack: Stack, world: World) -> tuple[str, Any, str]:
    # A genuine-looking cart event, properly signed by cart, replayed on orders' subject.
    event = forged_order(
        world,
        source=service_source("cart"),
        type="com.onbehalf.cart.item.added",
        key=real_key(stack, "cart"),
    )
    return "events.orders.order.placed", event, "arrived on another subject"


def _orders_key_other_source(stack: Stack, world: World) -> tuple[str, Any, str]:
    event = forged_order(world, source=service_source("cart"), key=real_key(stack, "orders"))
    return "events.orders.order.placed", event, "names another emitter"


@pytest.mark.parametrize(
    "forge",
    [
        _unsigned,
        _orders_kid_other_key,
        _unknown_key,
        _cart_key_claims_orders,
        _cart_event_on_orders_subject,
        _orders_key_other_source,
    ],
    ids=[
        "unsigned",
        "orders-kid-other-key",
        "unknown-key",
        "cart-key-orders-type",
        "cart-event-on-orders-subject",
        "orders-key-cart-source",
    ],
)
def test_forged_order_event_is_a_finding_not_a_record(
    stack: Stack, admin: Api, world: World, forge: Forgery
) -> None:
    subject, event, why = forge(stack, world)
    publish(stack, subject, event)

    # Audit handled it once the finding is chained (audit signs it, the chain records it).
    chained = wait_until(
        lambda: chained_finding(admin, event.get_id()), timeout=20.0, what="finding chained"
    )
    assert chained["emitter"] == "audit" and chained["source"] == service_source("audit")
    assert why in chained["data"]["reason"], chained["data"]
    assert chained["data"]["nats_subject"] == subject

    finding = finding_for(admin, event.get_id())
    assert finding is not None
    assert why in finding["reason"]
    assert finding["event_type"] == event.get_type() and finding["source"] == event.get_source()
    assert len(finding["payload_sha256"]) == 64 and finding["payload"]
    assert event.get_id() not in recorded_ids(admin, event.get_type())
    verified = ok(admin.get("audit", "/v1/audit/verify"))
    assert verified["ok"] and verified["signatures_checked"], verified


def test_a_redelivered_forgery_is_one_finding(stack: Stack, admin: Api, world: World) -> None:
    event = forged_order(world)
    publish(stack, "events.orders.order.placed", event)
    wait_until(lambda: chained_finding(admin, event.get_id()), timeout=20.0, what="chained")
    # Same bytes again under another message id (past JetStream's de-duplication).
    payload = encode(event)
    asyncio.run(_publish(stack, "orders", "events.orders.order.placed", payload, "again"))
    marker = forged_order(world)
    publish(stack, "events.orders.order.placed", marker)
    wait_until(lambda: chained_finding(admin, marker.get_id()), timeout=20.0, what="marker")
    items = ok(admin.get("audit", "/v1/audit/findings", params={"limit": 500}))["items"]
    assert [f["event_id"] for f in items].count(event.get_id()) == 1


def test_genuine_events_name_their_emitter_and_verify(
    stack: Stack, admin: Api, world: World
) -> None:
    rep = world.login(world.rep)
    acting, started = world.act_as(rep, world.org_a)
    assert acting.delete("identity", "/v1/acting-as/current").status_code == 204

    def session_events() -> list[dict[str, Any]] | None:
        params = {"session_id": started["session_id"], "limit": 50}
        items = ok(admin.get("audit", "/v1/audit/events", params=params))["items"]
        return items if len(items) >= 2 else None

    events = wait_until(session_events, timeout=20.0, what="the acting session audited")
    assert {e["type"] for e in events} >= {
        "com.onbehalf.identity.acting_session.started",
        "com.onbehalf.identity.acting_session.ended",
    }
    assert {e["emitter"] for e in events} == {"identity"}
    verified = ok(admin.get("audit", "/v1/audit/verify"))
    assert verified["ok"] and verified["signatures_checked"], verified


def test_each_service_publishes_its_event_key(stack: Stack) -> None:
    published = load_public_keys(public_keys_path(stack.secrets_dir))
    with httpx.Client(timeout=10.0) as client:
        for service in SERVICES:
            body = ok(client.get(stack.url(service) + "/.well-known/event-keys.json"))
            [jwk] = body["keys"]
            assert jwk["service"] == service and jwk["crv"] == "Ed25519"
            assert published[jwk["kid"]].jwk() == jwk
            assert "d" not in jwk  # the public half only


def test_a_service_without_a_signing_key_refuses_to_start(tmp_path: Path) -> None:
    service = start_service(
        "catalog",
        port=free_port(),
        env={"ONBEHALF_DATA_DIR": str(tmp_path / "db"), "NATS_URL": "nats://127.0.0.1:1"},
        log_dir=tmp_path / "logs",
    )
    try:
        code = service.process.wait(timeout=60)
    finally:
        service.stop()
    assert code != 0
    log = service.log_path.read_text()
    assert "MissingSigningKey" in log and "ONBEHALF_EVENT_SIGNING_KEY_FILE" in log, log[-2000:]
