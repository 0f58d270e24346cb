"""Attacks on the bus itself: each test fails if the attack works against a stack set up as `make run`."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import nats
import nkeys
import pytest
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.js.api import ConsumerConfig

from libs.common.bus import EVENTS_STREAM
from libs.common.revocation import REVOCATION_BUCKET
from onbehalf.stack import Stack
from tests.security.bus import anonymous_client, bus_client
from tests.support import World, wait_until

SERVICES = ("identity", "catalog", "cart", "orders", "audit")


@asynccontextmanager
async def watching(stack: Stack, user: str) -> AsyncIterator[tuple[Client, list[str]]]:
    """A client as `user` that records the server's refusals (permission violations)."""
    refusals: list[str] = []

    async def on_error(exc: Exception) -> None:
        refusals.append(str(exc))

    nc = await bus_client(stack, user)
    nc._error_cb = on_error  # the refusals arrive asynchronously, as -ERR from the server
    try:
        yield nc, refusals
    finally:
        with contextlib.suppress(Exception):
            await nc.close()


async def until(condition: object, *, timeout: float = 5.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():  # type: ignore[operator]
        if loop.time() > deadline:
            raise AssertionError("not true in time")
        await asyncio.sleep(0.02)


async def stream_messages(stack: Stack) -> int:
    nc = await bus_client(stack, "operator")
    try:
        return int((await nc.jetstream().stream_info(EVENTS_STREAM)).state.messages)
    finally:
        await nc.close()


# --- who gets in -------------------------------------------------------------------------------


async def test_an_anonymous_client_is_refused(stack: Stack) -> None:
    with pytest.raises(Exception, match=r"(?i)authorization"):
        nc = await anonymous_client(stack)
        await nc.close()


async def test_an_unknown_nkey_is_refused(stack: Stack) -> None:
    seed = nkeys.encode_seed(os.urandom(32), nkeys.PREFIX_BYTE_USER).decode()
    with pytest.raises(Exception):  # noqa: B017 - nats-py raises its own authorization errors
        nc = await nats.connect(
            stack.nats_url, nkeys_seed_str=seed, allow_reconnect=False, connect_timeout=3
        )
        await nc.close()


# --- reading what is not yours ----------------------------------------------------------------


@pytest.mark.parametrize("user", ["catalog", "cart", "orders", "identity"])
async def test_a_service_cannot_read_every_event(stack: Stack, world: World, user: str) -> None:
    async with watching(stack, user) as (nc, refusals):
        seen: list[Msg] = []

        async def collect(message: Msg) -> None:
            seen.append(message)

        await nc.subscribe("events.>", cb=collect)
        await until(lambda: any("permissions violation" in r.lower() for r in refusals))
        rep = world.login(world.rep)
        world.act_as(rep, world.org_a)  # an event every subscriber of events.> would see
        await nc.flush()
        assert seen == []


async def test_a_service_cannot_read_another_services_replies(stack: Stack) -> None:
    async with watching(stack, "audit") as (nc, refusals):
        await nc.subscribe("_INBOX.orders.>")
        await until(lambda: any("permissions violation" in r.lower() for r in refusals))


async def test_a_service_cannot_read_the_stream_through_a_consumer_of_its_own(
    stack: Stack,
) -> None:
    nc = await bus_client(stack, "catalog")
    try:
        with pytest.raises(Exception):  # noqa: B017 - refused requests time out or error
            await nc.jetstream(timeout=1.0).add_consumer(
                EVENTS_STREAM,
                config=ConsumerConfig(name="spy", durable_name="spy", filter_subject="events.>"),
            )
    finally:
        await nc.close()


# --- the JetStream admin API ------------------------------------------------------------------


@pytest.mark.parametrize("user", [*SERVICES, "operator"])
async def test_nobody_but_the_provisioner_purges_or_deletes_the_stream(
    stack: Stack, world: World, user: str
) -> None:
    before = await stream_messages(stack)
    assert before > 0
    nc = await bus_client(stack, user)
    try:
        js = nc.jetstream(timeout=1.0)  # a refused API request is never answered
        with pytest.raises(Exception):  # noqa: B017
            await js.purge_stream(EVENTS_STREAM)
        with pytest.raises(Exception):  # noqa: B017
            await js.delete_stream(EVENTS_STREAM)
        with pytest.raises(Exception):  # noqa: B017
            await js.delete_consumer(EVENTS_STREAM, "audit")
        with pytest.raises(Exception):  # noqa: B017
            await js.delete_key_value(REVOCATION_BUCKET)
    finally:
        await nc.close()
    assert await stream_messages(stack) >= before


# --- forging events ---------------------------------------------------------------------------


def _forged_event(event_type: str, source: str, data: dict[str, object]) -> tuple[str, bytes]:
    event_id = str(uuid.uuid4())
    body = {
        "specversion": "1.0",
        "id": event_id,
        "source": source,
        "type": event_type,
        "time": "2026-01-01T00:00:00Z",
        "datacontenttype": "application/json",
        "actorid": str(uuid.uuid4()),
        "subjectorgid": str(uuid.uuid4()),
        "data": data,
    }
    return event_id, json.dumps(body).encode()


@pytest.mark.parametrize(
    ("user", "event_type"),
    [
        ("cart", "orders.order.placed"),
        ("catalog", "identity.acting_session.ended"),
        ("cart", "identity.acting_session.ended"),
        ("orders", "identity.user.updated"),
        ("audit", "cart.lock.released"),
        ("operator", "orders.order.placed"),
    ],
)
async def test_a_service_cannot_publish_another_services_events(
    stack: Stack, user: str, event_type: str
) -> None:
    before = await stream_messages(stack)
    service = event_type.split(".", 1)[0]
    event_id, payload = _forged_event(event_type, f"/onbehalf/{service}", {"session_id": "x"})
    nc = await bus_client(stack, user)
    try:
        with pytest.raises(Exception):  # noqa: B017 - no ack ever comes for a refused publish
            await nc.jetstream().publish(
                f"events.{event_type}", payload, timeout=1.5, headers={"Nats-Msg-Id": event_id}
            )
    finally:
        await nc.close()
    assert await stream_messages(stack) == before or not await _stored(stack, event_id)


async def _stored(stack: Stack, event_id: str) -> bool:
    """Whether a message with this Nats-Msg-Id is in the stream (other tests may add events)."""
    nc = await bus_client(stack, "operator")
    try:
        js = nc.jetstream()
        subscription = await js.pull_subscribe("events.>", stream=EVENTS_STREAM)
        found = False
        with contextlib.suppress(Exception):
            while True:
                for message in await subscription.fetch(500, timeout=1.0):
                    found = found or (message.headers or {}).get("Nats-Msg-Id") == event_id
        return found
    finally:
        await nc.close()


# --- the revocation bucket --------------------------------------------------------------------


@pytest.mark.parametrize("user", ["catalog", "cart", "orders", "audit", "operator"])
async def test_only_identity_writes_the_revocation_bucket(
    stack: Stack, world: World, user: str
) -> None:
    rep = world.login(world.rep)
    acting, started = world.act_as(rep, world.org_a)
    assert acting.delete("identity", "/v1/acting-as/current").status_code == 204
    session_id = started["session_id"]
    wait_until(lambda: acting.get("cart", "/v1/cart").status_code == 401, what="revoked in cart")
    nc = await bus_client(stack, user)
    try:
        js = nc.jetstream(timeout=1.0)
        # Services may read the bucket (the operator may not even look it up); nobody but
        # identity changes it.
        with pytest.raises(Exception):  # noqa: B017
            await (await js.key_value(REVOCATION_BUCKET)).delete(session_id)
        with pytest.raises(Exception):  # noqa: B017
            await (await js.key_value(REVOCATION_BUCKET)).put(f"user.{world.rep['id']}", b"")
    finally:
        await nc.close()
    # Had the delete gone through, every watcher would have forgotten the revocation.
    assert acting.get("cart", "/v1/cart").status_code == 401
    assert acting.get("catalog", "/v1/products").status_code == 401


# --- answering requests one should not hear ---------------------------------------------------


@pytest.mark.parametrize("user", ["identity", "cart", "orders", "audit", "operator"])
async def test_nobody_but_catalog_answers_price_quotes(
    stack: Stack, world: World, user: str
) -> None:
    async with watching(stack, user) as (nc, refusals):
        answered: list[Msg] = []

        async def fake_catalog(message: Msg) -> None:
            answered.append(message)
            await message.respond(b'{"org_id": "x", "lines": {}, "unavailable": []}')

        await nc.subscribe("catalog.quote", cb=fake_catalog)
        await until(lambda: any("permissions violation" in r.lower() for r in refusals))
        buyer = world.login(world.buyer_a)
        added = buyer.post("cart", "/v1/cart/items", json={"sku": world.skus[0], "quantity": 1})
        assert added.status_code in (200, 201), added.text  # catalog itself priced it
        assert answered == []


@pytest.mark.parametrize(
    ("user", "subject"),
    [
        ("catalog", "cart.checkout"),
        ("cart", "cart.checkout"),
        ("audit", "identity.acting_activity"),
        ("operator", "identity.acting_activity"),
        ("catalog", "catalog.quote"),
    ],
)
async def test_requests_only_from_those_meant_to_make_them(
    stack: Stack, user: str, subject: str
) -> None:
    async with watching(stack, user) as (nc, refusals):
        await nc.publish(subject, b"{}")
        await until(lambda: any("permissions violation" in r.lower() for r in refusals))
