"""What identity consumes: its own ended-session events, turned into revocation entries."""

from __future__ import annotations

from libs.common.consumer import Delivery, consume
from libs.common.revocation import publish_revocation
from libs.common.runtime import ServiceRuntime
from services.identity.events import ACTING_SESSION_ENDED


async def project_revocations(runtime: ServiceRuntime) -> None:
    """Every ended session goes into the revocation bucket every service watches.

    Going through the stream (not a direct put at stop time) means a stop made while
    NATS was down still revokes the token once the outbox relay gets through.
    """
    ttl = float(runtime.settings.acting_session_max_seconds)

    async def handle(batch: list[Delivery]) -> None:
        for delivery in batch:
            data = delivery.event.get_data()
            if isinstance(data, dict) and isinstance(data.get("session_id"), str):
                await publish_revocation(runtime.js, data["session_id"], ttl=ttl)

    await consume(
        runtime.js,
        durable="identity-revocations",
        subject=f"events.{ACTING_SESSION_ENDED}",
        handle=handle,
    )
