"""What identity consumes: ended sessions (to revoke them), activity reports, and the clock."""

from __future__ import annotations

import asyncio

import structlog
from nats.aio.msg import Msg
from nats.js.kv import KeyValue
from pydantic import BaseModel, Field

from libs.common.activity import ACTIVITY_SUBJECT
from libs.common.consumer import UUID_PATTERN, Delivery, consume, event_data
from libs.common.revocation import publish_revocation, revocation_bucket, set_user_revoked
from libs.common.runtime import ServiceRuntime
from services.identity import service
from services.identity.events import ACTING_SESSION_ENDED, USER_UPDATED

log = structlog.get_logger("identity.handlers")


class EndedSession(BaseModel):
    """What the revocation projector reads of `identity.acting_session.ended`; the id becomes
    a revocation-bucket key."""

    session_id: str = Field(pattern=UUID_PATTERN)


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
        ended = [event_data(delivery.event, EndedSession) for delivery in batch]
        for session in ended:
            await publish_revocation(kv, session.session_id)

    await consume(
        runtime.js,
        service="identity",
        durable="identity-revocations",
        subject=f"events.{ACTING_SESSION_ENDED}",
        handle=handle,
        max_deliveries=runtime.settings.consumer_max_deliveries,
    )


async def project_user_revocations(runtime: ServiceRuntime) -> None:
    """A deactivated user's login tokens stop working everywhere, not only at their expiry."""
    kv = await _bucket(runtime)

    async def handle(batch: list[Delivery]) -> None:
        for delivery in batch:
            data = delivery.event.get_data()
            user = data.get("user") if isinstance(data, dict) else None
            if isinstance(user, dict) and isinstance(user.get("id"), str):
                await set_user_revoked(kv, user["id"], revoked=not user.get("active", True))

    await consume(
        runtime.js,
        service="identity",
        durable="identity-user-revocations",
        subject=f"events.{USER_UPDATED}",
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
                    await service.record_activity(runtime=runtime, session_ids=batch)
                except Exception as exc:
                    seen.update(batch)
                    log.warning("activity_write_failed", error=repr(exc))
    finally:
        await subscription.unsubscribe()


async def end_timed_out_sessions(identity: service.Identity) -> None:
    """Idle and over-age sessions end (and so are revoked) within one sweep period."""
    while True:
        await asyncio.sleep(identity.settings.session_sweep_seconds)  # a period, not sync
        try:
            while await service.end_timed_out_sessions(identity=identity) == 500:
                pass
        except Exception as exc:
            log.warning("session_sweep_failed", error=repr(exc))
