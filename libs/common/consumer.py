"""Durable JetStream consumption: fetch a batch, hand it over, acknowledge only after it is handled."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import structlog
from cloudevents.core.v1.event import CloudEvent
from nats.aio.msg import Msg
from nats.errors import TimeoutError as NatsTimeoutError
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

from libs.common.bus import EVENTS_STREAM
from libs.common.events import decode

log = structlog.get_logger("consumer")


@dataclass(frozen=True, slots=True)
class Delivery:
    """One received event and the JetStream message to acknowledge."""

    event: CloudEvent
    message: Msg


BatchHandler = Callable[[list[Delivery]], Awaitable[None]]


async def consume(
    js: JetStreamContext,
    *,
    durable: str,
    subject: str,
    handle: BatchHandler,
    batch: int = 256,
    ack_wait_seconds: float = 30.0,
) -> None:
    """Run forever: a batch is acknowledged after `handle` returns, redelivered if it raises."""
    subscription = await js.pull_subscribe(
        subject,
        durable=durable,
        stream=EVENTS_STREAM,
        config=ConsumerConfig(
            ack_policy=AckPolicy.EXPLICIT,
            deliver_policy=DeliverPolicy.ALL,
            ack_wait=ack_wait_seconds,
            max_ack_pending=batch * 4,
        ),
    )
    while True:
        try:
            messages = await subscription.fetch(batch, timeout=1.0)
        except NatsTimeoutError:
            continue
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # NATS away: the client reconnects; try again shortly
            log.warning("fetch_failed", durable=durable, error=repr(exc))
            await asyncio.sleep(0.25)
            continue
        deliveries = []
        for message in messages:
            try:
                deliveries.append(Delivery(decode(message.data), message))
            except Exception as exc:
                # A message that is not a CloudEvent will never become one: drop it loudly.
                log.error("undecodable_event", durable=durable, error=repr(exc))
                await message.term()
        if not deliveries:
            continue
        try:
            await handle(deliveries)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.exception("handler_failed", durable=durable, error=repr(exc))
            for delivery in deliveries:
                await delivery.message.nak(delay=1.0)
            continue
        for delivery in deliveries:
            await delivery.message.ack()
