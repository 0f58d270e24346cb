"""What audit consumes: every event on `events.>`, through one durable JetStream consumer."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime

from cloudevents.core.v1.event import CloudEvent

from libs.common.consumer import Delivery, consume
from libs.common.metrics import AUDIT_LAG
from libs.common.runtime import ServiceRuntime
from libs.common.signing import EventPublicKey
from services.audit import service
from services.audit.provenance import Incoming
from services.audit.settings import AuditSettings


def observe_lag(events: Iterable[CloudEvent]) -> None:
    """The audit lag of each event of a committed batch: from its `time` to now (a redelivered
    event counts again, with its longer lag; a clock running behind counts as no lag)."""
    now = datetime.now(UTC)
    for event in events:
        moment = event.get_time()
        if moment is not None and moment.utcoffset() is not None:
            AUDIT_LAG.observe(max((now - moment).total_seconds(), 0.0))


async def record_everything(
    runtime: ServiceRuntime, settings: AuditSettings, keys: dict[str, EventPublicKey]
) -> None:
    async def handle(batch: list[Delivery]) -> None:
        # Acknowledged by `consume` only after this commit: a crash means redelivery,
        # and redeliveries are recognised by event id. An event append cannot store raises
        # PoisonMessage: `consume` retries the batch without it and dead-letters it.
        # The subject and raw bytes go along: who may publish on the subject is part of the
        # proof of origin, and a refused event's finding keeps its bytes.
        incoming = [Incoming(d.event, d.message.subject, d.message.data) for d in batch]
        await service.append(runtime=runtime, incoming=incoming, keys=keys)
        observe_lag(d.event for d in batch)

    await consume(
        runtime.js,
        service=settings.service_name,
        durable=settings.consumer_name,
        subject="events.>",
        handle=handle,
        batch=settings.consume_batch,
        ack_wait_seconds=settings.consume_ack_wait_seconds,
        max_deliveries=settings.consumer_max_deliveries,
        linger_seconds=settings.consume_linger_seconds,
    )
