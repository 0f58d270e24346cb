"""Poison messages: malformed events are dead-lettered with their error, and no consumer stops."""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import uuid
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, TypeVar, cast

import httpx
import nats
import pytest
from nats.aio.client import Client
from nats.js.api import StorageType, StreamConfig, StreamInfo
from prometheus_client import REGISTRY
from typer.testing import CliRunner

from devtools.stacks import seed_file
from libs.common.bus import DEADLETTER_STREAM, EVENTS_STREAM
from libs.common.consumer import Delivery, PoisonMessage, consume
from libs.common.deadletter import DeadLetter, read_dead_letters
from onbehalf.cli import app
from onbehalf.stack import Stack, start_nats
from tests.security.bus import bus_client
from tests.support import Api, World, audit_events, ok, unique, wait_until

T = TypeVar("T")

# More than a consumer's max_ack_pending (4 x its batch of 256): before dead letters, that many
# failing messages held every slot, and nothing after them was ever delivered again.
FLOOD = 1_100


def run(coroutine: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coroutine)


def cloud_event(event_type: str, data: Any, **attributes: Any) -> dict[str, Any]:
    """A CloudEvent as JSON would carry it; `attributes` override or add envelope attributes."""
    return {
        "specversion": "1.0",
        "id": str(uuid.uuid4()),
        "source": "/onbehalf/identity",
        "type": event_type,
        "time": "2026-01-01T00:00:00Z",
        "datacontenttype": "application/json",
        "data": data,
        **attributes,
    }


def encoded(value: dict[str, Any]) -> bytes:
    return json.dumps(value).encode()


async def _last_sequence(js: Any, stream: str) -> int:
    info: StreamInfo = await js.stream_info(stream)
    return int(info.state.last_seq or 0)


async def publish_all(client: Client, subject: str, payloads: list[bytes]) -> None:
    """Stored in JetStream (acknowledged), fast: a flood is the point."""
    js = client.jetstream()
    for payload in payloads:
        await js.publish_async(subject, payload, stream=EVENTS_STREAM)
    await asyncio.wait_for(js.publish_async_completed(), timeout=30)


def dead_letter_count(api: Api, service: str, durable: str, reason: str) -> float:
    labels = {"durable": durable, "reason": reason}
    return metric(api, service, "onbehalf_consumer_dead_letters_total", labels)


def wait_for_dead_letters(
    api: Api, service: str, durable: str, reason: str, *, at_least: float, timeout: float
) -> None:
    """Until the service's metric says `durable` dead-lettered `at_least` for `reason`."""

    def counted() -> bool:
        return dead_letter_count(api, service, durable, reason) >= at_least

    wait_until(counted, timeout=timeout, interval=0.25, what=f"{durable} dead-lettered ({reason})")


def metric(api: Api, service: str, name: str, labels: dict[str, str]) -> float:
    """A counter's value from the service's /metrics (0 if it has no such sample yet)."""
    text = ok_text(api.get(service, "/metrics"))
    wanted = ",".join(f'{key}="{value}"' for key, value in sorted(labels.items()))
    for line in text.splitlines():
        match = re.fullmatch(rf"{name}\{{(.*)\}} (\S+)", line)
        if match and ",".join(sorted(match.group(1).split(","))) == wanted:
            return float(match.group(2))
    return 0.0


def ok_text(response: httpx.Response) -> str:
    assert response.status_code == 200, response.text
    return response.text


# -- The consumer itself, against a NATS server of its own ------------------------------------


def test_one_bad_message_costs_its_batch_nothing(tmp_path: Path) -> None:
    """Good, poison, undecodable and always-failing messages in one batch: the good ones are
    handled once each and acknowledged, each bad one is dead-lettered with its reason and
    error, and the consumer goes on with what comes next."""
    server = start_nats(tmp_path / "nats")
    prefix = f"events.trial{uuid.uuid4().hex[:8]}"
    durable = unique("trial")
    handled: list[str] = []
    four_handled = asyncio.Event()

    def event(kind: str) -> bytes:
        return encoded(cloud_event(f"trial.{kind}", {"kind": kind}, source="/trial"))

    async def handle(batch: list[Delivery]) -> None:
        kinds = [cast(dict[str, Any], delivery.event.get_data())["kind"] for delivery in batch]
        if "poison" in kinds:
            raise PoisonMessage("a poison message, as the handler can tell")
        if "failing" in kinds:
            raise RuntimeError("fails on every delivery")
        handled.extend(delivery.event.get_id() for delivery in batch)
        if len(handled) >= 4:
            four_handled.set()

    async def scenario() -> tuple[list[DeadLetter], list[str], Any]:
        client = await nats.connect(server.url)
        js = client.jetstream()
        for name, subjects in (
            (EVENTS_STREAM, ["events.>"]),
            (DEADLETTER_STREAM, ["deadletter.>"]),
        ):
            await js.add_stream(
                StreamConfig(name=name, subjects=subjects, storage=StorageType.FILE)
            )
        before = await _last_sequence(js, DEADLETTER_STREAM)
        payloads = [
            event("good"),
            event("poison"),
            b"not json at all",
            event("good"),
            event("failing"),
            encoded(cloud_event("trial.bad_time", {"kind": "good"}, time="99999-01-01T00:00:00Z")),
            event("good"),
        ]
        # All stored before the consumer starts: its first fetch takes them as one batch.
        await publish_all(client, f"{prefix}.x", payloads)
        task = asyncio.create_task(
            consume(
                js,
                service="trial",
                durable=durable,
                subject=f"{prefix}.>",
                handle=handle,
                batch=16,
                ack_wait_seconds=5.0,
                max_deliveries=3,
            )
        )
        try:
            loop = asyncio.get_running_loop()
            deadline = loop.time() + 30
            letters: list[DeadLetter] = []
            while len(letters) < 4 and loop.time() < deadline:
                letters = await read_dead_letters(
                    js, subject=f"deadletter.trial.{durable}", after=before
                )
                await asyncio.sleep(0.05)  # polling interval of a condition with a deadline
            # What comes after the bad ones is still consumed.
            await publish_all(client, f"{prefix}.x", [event("good")])
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(four_handled.wait(), timeout=deadline - loop.time())
            info = await js.consumer_info(EVENTS_STREAM, durable)
            while (info.num_ack_pending or info.num_pending) and loop.time() < deadline:
                await asyncio.sleep(0.05)
                info = await js.consumer_info(EVENTS_STREAM, durable)
            return letters, list(handled), info
        finally:
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            await client.close()

    try:
        letters, handled_ids, info = run(scenario())
    finally:
        server.stop()

    assert len(handled_ids) == 4 and len(set(handled_ids)) == 4, handled_ids
    assert (info.num_ack_pending, info.num_pending) == (0, 0), "good messages left unacknowledged"
    by_reason: dict[str, list[DeadLetter]] = {}
    for letter in letters:
        by_reason.setdefault(letter.reason or "", []).append(letter)
    assert sorted(by_reason) == ["attempts_exhausted", "poison", "undecodable"], letters
    assert len(by_reason["undecodable"]) == 2  # not JSON; a CloudEvent with an impossible time
    poison = by_reason["poison"][0]
    assert "PoisonMessage" in (poison.error or "") and poison.deliveries == 1
    assert json.loads(poison.payload)["data"] == {"kind": "poison"}  # the original, unchanged
    assert poison.original_subject == f"{prefix}.x" and poison.durable == durable
    assert poison.original_sequence is not None
    exhausted = by_reason["attempts_exhausted"][0]
    assert exhausted.deliveries == 3 and "fails on every delivery" in (exhausted.error or "")
    assert {letter.payload for letter in by_reason["undecodable"]} >= {b"not json at all"}
    for reason, count in (("poison", 1), ("undecodable", 2), ("attempts_exhausted", 1)):
        sample = REGISTRY.get_sample_value(
            "onbehalf_consumer_dead_letters_total", {"durable": durable, "reason": reason}
        )
        assert sample == count, (reason, sample)


# -- Every consumer of the running system -------------------------------------------------


def test_a_flood_of_malformed_ended_sessions_does_not_stop_revocation(
    stack: Stack, world: World
) -> None:
    """1,100 `acting_session.ended` events whose session id is no valid KV key ("a b*>"):
    identity's revocation projector and cart's lock release dead-letter them and go on, so
    a session stopped afterwards is refused everywhere within a second."""
    rep = world.login(world.rep)
    acting, _started = world.act_as(rep, world.org_a)
    ok(acting.get("cart", "/v1/cart"))
    marker = unique("flood")
    consumers = (("identity", "identity-revocations"), ("cart", "cart-lock-release"))
    counted_before = {
        durable: dead_letter_count(world.admin, service, durable, "poison")
        for service, durable in consumers
    }

    async def flood() -> None:
        client = await bus_client(stack, user="identity")
        try:
            poison = [
                encoded(
                    cloud_event(
                        "identity.acting_session.ended",
                        {"session_id": "a b*>", "reason": marker, "n": n},
                    )
                )
                for n in range(FLOOD)
            ]
            await publish_all(client, "events.identity.acting_session.ended", poison)
        finally:
            await client.close()

    before = run(_dead_letters_so_far(stack))
    run(flood())
    for service, durable in consumers:
        wait_for_dead_letters(
            world.admin,
            service,
            durable,
            "poison",
            at_least=counted_before[durable] + FLOOD,
            timeout=90,
        )

    ok(acting.delete("identity", "/v1/acting-as/current"), 204)
    for service, path in (("cart", "/v1/cart"), ("orders", "/v1/orders")):

        def refused(s: str = service, p: str = path) -> bool:
            return acting.get(s, p).status_code == 401

        wait_until(refused, timeout=1.5, what=f"{service} refuses the stopped session")

    for service, durable in consumers:
        letters = run(_read_letters(stack, f"deadletter.{service}.{durable}", before))
        ours = [letter for letter in letters if marker.encode() in letter.payload]
        assert len(ours) == FLOOD, (durable, len(ours))
        assert {letter.reason for letter in ours} == {"poison"}
        assert "session_id" in (ours[0].error or ""), ours[0].error
        assert ours[0].original_subject == "events.identity.acting_session.ended"


def test_malformed_events_are_dead_lettered_and_auditing_goes_on(
    stack: Stack, world: World
) -> None:
    """Not JSON, JSON that is no CloudEvent, impossible or naive times, and a flood of events
    whose time cannot be stored: audit dead-letters each and keeps recording real changes."""
    marker = unique("bad")
    kinds: dict[str, bytes] = {
        "not_json": f"not json {marker}".encode(),
        "not_a_cloudevent": encoded({"hello": marker}),
        "year_99999": encoded(cloud_event("orders.poison", marker, time="99999-01-01T00:00:00Z")),
        "garbage_time": encoded(cloud_event("orders.poison", marker, time="yesterday")),
        "naive_time": encoded(cloud_event("orders.poison", marker, time="2026-01-01T00:00:00")),
        "bad_attribute": encoded(cloud_event("orders.poison", marker, specversion="0.3")),
    }
    # Decodes, but the time overflows once converted to UTC: only storing it would fail.
    unstorable = [
        encoded(cloud_event("orders.poison", {"marker": marker}, time="9999-12-31T23:59:59-05:00"))
        for _ in range(FLOOD)
    ]

    counted_before = {
        reason: dead_letter_count(world.admin, "audit", "audit", reason)
        for reason in ("undecodable", "poison")
    }

    async def publish() -> None:
        client = await bus_client(stack, user="orders")
        try:
            await publish_all(client, "events.orders.poison", [*kinds.values(), *unstorable])
        finally:
            await client.close()

    before = run(_dead_letters_so_far(stack))
    run(publish())
    # A real change made after the poison, through the public API, is still audited.
    org = ok(
        world.admin.post(
            "identity",
            "/v1/orgs",
            json={"name": unique("After poison"), "contract_number": unique("C"), "country": "DE"},
        ),
        201,
    )
    wait_until(
        lambda: [e for e in audit_events(world.admin, subject_org_id=org["id"])],
        timeout=60,
        interval=0.25,
        what="the change after the poison audited",
    )

    for reason, expected in (("undecodable", len(kinds)), ("poison", FLOOD)):
        wait_for_dead_letters(
            world.admin,
            "audit",
            "audit",
            reason,
            at_least=counted_before[reason] + expected,
            timeout=60,
        )
    letters = [
        letter
        for letter in run(_read_letters(stack, "deadletter.audit.audit", before))
        if marker.encode() in letter.payload
    ]
    assert len(letters) == len(kinds) + FLOOD
    by_payload = {letter.payload: letter for letter in letters}
    for kind, payload in kinds.items():
        letter = by_payload[payload]
        assert letter.reason == "undecodable", kind
        assert letter.error and letter.original_subject == "events.orders.poison", kind
    overflow = [letter for letter in letters if letter.payload in set(unstorable)]
    assert {letter.reason for letter in overflow} == {"poison"}
    assert "time is out of range" in (overflow[0].error or "")
    verified = ok(world.admin.get("audit", "/v1/audit/verify"))
    assert verified["ok"] is True


def test_operators_list_dead_letters(stack: Stack, world: World) -> None:
    """`onbehalf deadletters list` shows the consumer, reason, error and original message."""
    marker = unique("cli")

    async def publish() -> None:
        client = await bus_client(stack, user="orders")
        try:
            await publish_all(client, "events.orders.poison", [f"{marker} <html>".encode()])
        finally:
            await client.close()

    before = run(_dead_letters_so_far(stack))
    run(publish())
    wait_until(
        lambda: any(
            marker.encode() in letter.payload
            for letter in run(_read_letters(stack, "deadletter.audit.audit", before))
        ),
        timeout=30,
        what="the message dead-lettered",
    )
    result = CliRunner().invoke(
        app,
        [
            "deadletters",
            "list",
            "--nats-url",
            stack.nats_url,
            "--nats-creds",
            str(seed_file(stack, "operator")),
            "--service",
            "audit",
            "--after",
            str(before),
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    row = next(row for row in rows if marker in row["payload_text"])
    assert row["durable"] == "audit" and row["reason"] == "undecodable"
    assert row["original_subject"] == "events.orders.poison" and row["error"]


async def _dead_letters_so_far(stack: Stack) -> int:
    """The dead-letter stream's last sequence: what a test reads after is its own doing."""
    client = await bus_client(stack, user="operator")
    try:
        return await _last_sequence(client.jetstream(), DEADLETTER_STREAM)
    finally:
        await client.close()


async def _read_letters(stack: Stack, subject: str, after: int) -> list[DeadLetter]:
    client = await bus_client(stack, user="operator")
    try:
        return await read_dead_letters(
            client.jetstream(), subject=subject, after=after, limit=10_000
        )
    finally:
        await client.close()
