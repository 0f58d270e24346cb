"""What audit consumes: every event on `events.>`, through one durable JetStream consumer."""

from __future__ import annotations

from libs.common.consumer import Delivery, consume
from libs.common.runtime import ServiceRuntime
from services.audit import service
from services.audit.settings import AuditSettings


async def record_everything(runtime: ServiceRuntime, settings: AuditSettings) -> None:
    async def handle(batch: list[Delivery]) -> None:
        # Acknowledged by `consume` only after this commit: a crash means redelivery,
        # and redeliveries are recognised by event id.
        await service.append(runtime=runtime, events=[d.event for d in batch])

    await consume(
        runtime.js,
        durable=settings.consumer_name,
        subject="events.>",
        handle=handle,
        batch=settings.consume_batch,
        ack_wait_seconds=settings.consume_ack_wait_seconds,
    )
