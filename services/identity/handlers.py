"""What identity consumes: ended sessions (to revoke them), activity reports, and the clock."""

from __future__ import annotations

import asyncio

import structlog
from cloudevents.core.v1.event import CloudEvent
from nats.aio.msg import Msg
from nats.js.kv import KeyValue

from libs.common.activity import ACTIVITY_SUBJECT
from libs.common.consumer import Delivery, PoisonMessage, consume, event_data
from libs.common.revocation import (
    Standing,
    login_key,
    org_key,
    publish_revocation,
    raise_standing,
    revocation_bucket,
    user_key,
)
from libs.common.runtime import ServiceRuntime
from libs.contracts.base import cloudevents_type
from services.identity import acting_sessions
from services.identity.events import (
    ActingSessionEnded,
    LoginSessionEnded,
    OrgUpdated,
    PasswordChanged,
    UserUpdated,
)
from services.identity.settings import identity_settings

log = structlog.get_logger("identity.handlers")


async def _bucket(runtime: ServiceRuntime) -> KeyValue:
    """Looked up once per projector, not once per event (each look-up is a JetStream request)."""
    return await revocation_bucket(
        runtime.js, ttl_seconds=float(runtime.settings.acting_session_max_seconds)
    )


async def project_revocations(runtime: ServiceRuntime) -> None:
    """Every ended session goes into the revocation bucket every service watches.

    Going through the stream (not a direct put at stop time) means a stop made while
    NATS was down still revokes the token once the outbox relay gets through.
    """
    kv = await _bucket(runtime)

    async def handle(batch: list[Delivery]) -> None:
        # All read before any is written: a malformed one raises PoisonMessage, and `consume`
        # dead-letters it and handles the others one by one.
        ended = [event_data(delivery.event, ActingSessionEnded) for delivery in batch]
        for session in ended:
            await publish_revocation(kv, session.session_id)

    await consume(
        runtime.js,
        service="identity",
        durable="identity-revocations",
        subject=ActingSessionEnded.subject(),
        handle=handle,
        max_deliveries=runtime.settings.consumer_max_deliveries,
    )


def _standing_entry(event: CloudEvent) -> tuple[str, Standing] | None:
    """The bucket entry an event about rights calls for, if any. Generation 0 needs none:
    no token of an older generation exists. One that does not fit its contract is passed
    over here (this projector reads every identity event; the ones it needs are checked)."""
    try:
        # Either form: a v1 event (bare name) replayed from the stream is projected the same way.
        match cloudevents_type(event.get_type()):
            case UserUpdated.event_type:
                user = event_data(event, UserUpdated)
                key, standing = user_key(user.user.id), Standing(user.generation, user.user.active)
            case PasswordChanged.event_type:
                changed = event_data(event, PasswordChanged)
                key, standing = (
                    user_key(changed.user_id),
                    Standing(changed.generation, changed.active),
                )
            case OrgUpdated.event_type:
                org = event_data(event, OrgUpdated)
                key = org_key(org.org.id)
                standing = Standing(org.generation, org.org.status == "active")
            case _:
                return None
    except PoisonMessage:
        return None
    return (key, standing) if standing.generation > 0 else None


async def project_standing(runtime: ServiceRuntime) -> None:
    """Changed rights and ended login sessions go into the revocation bucket, so that every
    service refuses older tokens within a second, not at their expiry. Through the stream,
    like project_revocations: a change made while NATS was down still takes effect."""
    kv = await _bucket(runtime)

    async def handle(batch: list[Delivery]) -> None:
        for delivery in batch:
            if LoginSessionEnded.is_type_of(delivery.event.get_type()):
                try:
                    ended = event_data(delivery.event, LoginSessionEnded)
                except PoisonMessage:
                    continue
                await publish_revocation(kv, login_key(ended.login_session_id))
                continue
            entry = _standing_entry(delivery.event)
            if entry is not None:
                await raise_standing(kv, *entry)

    await consume(
        runtime.js,
        service="identity",
        durable="identity-standing",
        subject="events.identity.>",
        handle=handle,
        max_deliveries=runtime.settings.consumer_max_deliveries,
    )


async def record_activity(runtime: ServiceRuntime, *, flush_seconds: float = 1.0) -> None:
    """Collect activity reports from every service and write them once per `flush_seconds`."""
    seen: set[str] = set()

    async def on_report(message: Msg) -> None:
        seen.add(message.data.decode(errors="replace")[:64])

    subscription = await runtime.nc.subscribe(ACTIVITY_SUBJECT, cb=on_report)
    try:
        while True:
            await asyncio.sleep(flush_seconds)  # a flush period, not synchronisation
            if seen:
                batch = set(seen)
                seen.clear()
                try:
                    await acting_sessions.record_activity(runtime=runtime, session_ids=batch)
                except Exception as exc:
                    seen.update(batch)
                    log.warning("activity_write_failed", error=repr(exc))
    finally:
        await subscription.unsubscribe()


async def end_timed_out_sessions(runtime: ServiceRuntime) -> None:
    """Idle and over-age sessions end (and so are revoked) within one sweep period."""
    period = identity_settings(runtime).session_sweep_seconds
    while True:
        await asyncio.sleep(period)  # a period, not sync
        try:
            while await acting_sessions.end_timed_out_sessions(runtime=runtime) == 500:
                pass
        except Exception as exc:
            log.warning("session_sweep_failed", error=repr(exc))
