"""Durable JetStream consumption: fetch a batch, hand it over, acknowledge only after it is handled."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import structlog
from cloudevents.core.v1.event import CloudEvent
from nats.aio.msg import Msg
from nats.errors import TimeoutError as NatsTimeoutError
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from prometheus_client import Counter

from libs.common.bus import EVENTS_STREAM
from libs.common.events import decode

log = structlog.get_logger("consumer")

HANDLER_FAILURES = Counter(
    "onbehalf_consumer_handler_failures_total", "Batches a handler failed on", ["durable"]
)

# Consecutive failed fetches (other than "nothing there") before the subscription is rebuilt:
# about two seconds, long enough for a reconnect to settle, short enough to notice a consumer
# that no longer exists (e.g. NATS came back with a fresh store).
_RESUBSCRIBE_AFTER_FAILURES = 8


@dataclass(frozen=True, slots=True)
class Delivery:
    """One received event and the JetStream message to acknowledge."""

    event: CloudEvent
    message: Msg


BatchHandler = Callable[[list[Delivery]], Awaitable[None]]


def durable_config(*, durable: str, subject: str, batch: int, ack_wait: float) -> ConsumerConfig:
    """The durable's configuration; applied on every start, so a changed ack_wait takes effect."""
    return ConsumerConfig(
        name=durable,
        durable_name=durable,
        filter_subject=subject,
        ack_policy=AckPolicy.EXPLICIT,
        deliver_policy=DeliverPolicy.ALL,
        ack_wait=ack_wait,
        max_ack_pending=batch * 4,
    )


async def _subscribe(
    js: JetStreamContext, config: ConsumerConfig
) -> JetStreamContext.PullSubscription:
    durable = config.durable_name
    try:
        # Create, or update an existing durable to this configuration (nats-server >= 2.10).
        await js.add_consumer(EVENTS_STREAM, config=config)
    except Exception as exc:
        # E.g. a setting the server will not change on an existing durable: keep the existing
        # one (it still holds our position) and say so. If it does not exist, binding fails
        # below and the caller retries.
        log.warning("consumer_config_not_applied", durable=durable, error=repr(exc))
    return await js.pull_subscribe_bind(durable=durable, stream=EVENTS_STREAM)


async def consume(
    js: JetStreamContext,
    *,
    durable: str,
    subject: str,
    handle: BatchHandler,
    batch: int = 256,
    ack_wait_seconds: float = 30.0,
) -> None:
    """Run forever: a batch is acknowledged after `handle` returns, redelivered if it raises.

    Nothing here ends the task but cancellation: NATS being away, the consumer missing, a
    failing handler or a failing ack all lead to a retry. A crash between the handler's
    commit and the ack means a redelivery after `ack_wait_seconds`, so handlers must be
    idempotent (by event id).
    """
    config = durable_config(
        durable=durable, subject=subject, batch=batch, ack_wait=ack_wait_seconds
    )
    while True:
        try:
            subscription = await _subscribe(js, config)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # NATS away or JetStream not ready yet after a restart
            log.warning("subscribe_failed", durable=durable, error=repr(exc))
            await asyncio.sleep(0.5)  # back-off before trying again
            continue
        try:
            await _pump(subscription, durable=durable, batch=batch, handle=handle)
        finally:
            # Without this, a drain at shutdown waits on status messages that no fetch will
            # ever read from this subscription's queue (and the process hangs on SIGTERM).
            with contextlib.suppress(Exception):
                await subscription.unsubscribe()


async def _next_batch(subscription: JetStreamContext.PullSubscription, batch: int) -> list[Msg]:
    """Wait for one message, then take whatever else is already there, up to `batch`.

    A single `fetch(batch)` that receives fewer than `batch` messages waits out its whole
    timeout for the rest: at a trickle, every event would wait up to that long."""
    messages = await subscription.fetch(1, timeout=1.0)
    if batch > 1:
        # A time-out here only means nothing else was waiting.
        # (nats-py raises either its own TimeoutError or asyncio's, depending on the path.)
        with contextlib.suppress(NatsTimeoutError, asyncio.TimeoutError):
            messages += await subscription.fetch(batch - 1, timeout=0.005)
    return messages


async def _pump(
    subscription: JetStreamContext.PullSubscription,
    *,
    durable: str,
    batch: int,
    handle: BatchHandler,
) -> None:
    """Fetch and handle until the subscription looks broken; then return to rebuild it."""
    failures = 0
    while True:
        try:
            messages = await _next_batch(subscription, batch)
        except (TimeoutError, NatsTimeoutError):
            failures = 0  # an empty stream answers like this: the consumer is fine
            continue
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # NATS away: the client reconnects; try again shortly
            failures += 1
            log.warning("fetch_failed", durable=durable, error=repr(exc), failures=failures)
            if failures >= _RESUBSCRIBE_AFTER_FAILURES:
                return
            await asyncio.sleep(0.25)  # back-off before the next fetch
            continue
        failures = 0
        deliveries = []
        for message in messages:
            try:
                deliveries.append(Delivery(decode(message.data), message))
            except Exception as exc:
                # A message that is not a CloudEvent will never become one: drop it loudly.
                log.error("undecodable_event", durable=durable, error=repr(exc))
                with contextlib.suppress(Exception):
                    await message.term()
        if not deliveries:
            continue
        try:
            await handle(deliveries)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            HANDLER_FAILURES.labels(durable).inc()
            log.exception("handler_failed", durable=durable, error=repr(exc))
            for delivery in deliveries:
                with contextlib.suppress(Exception):
                    await delivery.message.nak(delay=1.0)
            continue
        try:
            for delivery in deliveries:
                await delivery.message.ack()
        except Exception as exc:
            # Handled and committed, but the ack did not leave: the messages come back after
            # ack_wait and the handler recognises them by event id.
            log.warning("ack_failed", durable=durable, error=repr(exc))
