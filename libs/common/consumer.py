"""Durable JetStream consumption: handle, then acknowledge; set aside what can never be handled."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

import structlog
from cloudevents.core.v1.event import CloudEvent
from nats.aio.msg import Msg
from nats.errors import TimeoutError as NatsTimeoutError
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from prometheus_client import Counter
from pydantic import BaseModel, ValidationError

from libs.common import tracing
from libs.common.bus import EVENTS_STREAM
from libs.common.deadletter import EXHAUSTED, POISON, UNDECODABLE, dead_letter, header_text
from libs.common.events import EventContext, context_of_event, decode

log = structlog.get_logger("consumer")

HANDLER_FAILURES = Counter(
    "onbehalf_consumer_handler_failures_total", "Batches a handler failed on", ["durable"]
)

# Consecutive failed fetches (other than "nothing there") before the subscription is rebuilt:
# about two seconds, long enough for a reconnect to settle, short enough to notice a consumer
# that no longer exists (e.g. NATS came back with a fresh store).
_RESUBSCRIBE_AFTER_FAILURES = 8
# Deliveries of a message whose handling keeps failing (not as poison) before it is given up
# on; with the doubling delay below, five deliveries span about 15 seconds.
DEFAULT_MAX_DELIVERIES = 5
_MAX_RETRY_DELAY_SECONDS = 30.0

M = TypeVar("M", bound=BaseModel)

# What every id our services issue looks like (a UUID). An id read from an event that is not
# one is malformed: it can match nothing, and as a KV key (a space, `*`, `>`) it is invalid.
UUID_PATTERN = r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"


class PoisonMessage(Exception):
    """A message its handler can never handle (malformed data, an impossible value): it goes to
    the dead letters at once instead of being retried. Anything else a handler raises is taken
    as passing (a database away) and retried."""


def event_data(event: CloudEvent, model: type[M]) -> M:
    """The event's data as `model`, or PoisonMessage saying what is wrong with it."""
    try:
        return model.model_validate(event.get_data())
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in error['loc']) or 'data'}: {error['msg']}"
            for error in exc.errors(include_input=False)[:5]
        )
        raise PoisonMessage(f"{event.get_type()} data is not usable: {problems}") from None


def checked_context(event: CloudEvent, *, policy_revision: str) -> EventContext:
    """The actor and subject of `event`, for the events a handler publishes because of it;
    PoisonMessage if they are not ids (they would poison every consumer of those events too)."""
    context = context_of_event(event, policy_revision=policy_revision)
    for name in ("actor_id", "actor_org_id", "subject_org_id", "subject_user_id"):
        value = getattr(context, name)
        if value is not None and not (isinstance(value, str) and 0 < len(value) <= 36):
            raise PoisonMessage(f"the event's {name} is not an id")
    session = context.acting_session_id
    if session is not None and not (isinstance(session, str) and 0 < len(session) <= 36):
        raise PoisonMessage("the event's acting_session_id is not an id")
    return context


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
    service: str,
    durable: str,
    subject: str,
    handle: BatchHandler,
    batch: int = 256,
    ack_wait_seconds: float = 30.0,
    max_deliveries: int = DEFAULT_MAX_DELIVERIES,
    linger_seconds: float = 0.0,
) -> None:
    """Run forever: a batch is acknowledged after `handle` returns.

    Once a message arrives with fewer than a batch behind it, `linger_seconds` more are
    waited for before the rest is fetched: a handler that costs per batch (a transaction)
    trades that much latency for fewer, larger batches. 0: take only what is waiting.

    When `handle` raises, the batch is handled again message by message, so one bad message
    costs the others nothing. A message that is not a CloudEvent, or for which `handle` raises
    PoisonMessage, is copied to `deadletter.<service>.<durable>` and terminated at once; one for
    which it raises anything else is redelivered with a growing delay, and given up on the same
    way on its `max_deliveries`-th delivery.

    Nothing here ends the task but cancellation: NATS being away, the consumer missing, a
    failing handler or a failing ack all lead to a retry. A crash between the handler's
    commit and the ack means a redelivery after `ack_wait_seconds`, so handlers must be
    idempotent (by event id).
    """
    config = durable_config(
        durable=durable, subject=subject, batch=batch, ack_wait=ack_wait_seconds
    )
    consumer = _Consumer(
        js=js,
        service=service,
        durable=durable,
        handle=handle,
        batch=batch,
        ack_wait=ack_wait_seconds,
        max_deliveries=max(1, max_deliveries),
        linger=max(linger_seconds, 0.0),
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
            await _pump(subscription, consumer)
        finally:
            # Without this, a drain at shutdown waits on status messages that no fetch will
            # ever read from this subscription's queue (and the process hangs on SIGTERM).
            with contextlib.suppress(Exception):
                await subscription.unsubscribe()


async def _next_batch(
    subscription: JetStreamContext.PullSubscription, batch: int, linger: float
) -> list[Msg]:
    """Wait for one message, then take whatever else is already there, up to `batch`; when
    fewer than a batch are waiting, first give more `linger` seconds to arrive. Without a
    linger, the first message's delivery says how many wait behind it (JetStream's pending
    count): none, and no more is asked for; some, and exactly those are.

    A single `fetch(batch)` that receives fewer than `batch` messages waits out its whole
    timeout for the rest: at a trickle, every event would wait up to that long. (A fetch
    with a longer timeout does not linger either: the server answers it once one message
    is there.)"""
    messages = await subscription.fetch(1, timeout=1.0)
    if batch > 1:
        behind = _waiting_behind(messages[-1])
        wanted = batch - 1
        if linger > 0 and behind < batch - 1:
            await asyncio.sleep(linger)
        elif behind == 0:
            # Nothing waited behind it when it was delivered: asking for more would cost two
            # pull requests and their two status replies (no messages; the 5 ms expiry) for
            # nothing. What arrives meanwhile is the next batch's.
            return messages
        else:
            # Exactly what waits: the fetch returns once they are all here, without a status.
            wanted = min(behind, batch - 1)
        # A time-out here only means nothing else was waiting.
        # (nats-py raises either its own TimeoutError or asyncio's, depending on the path.)
        with contextlib.suppress(NatsTimeoutError, asyncio.TimeoutError):
            messages += await subscription.fetch(wanted, timeout=0.005)
    return messages


def _waiting_behind(message: Msg) -> int:
    """How many messages the consumer still has to deliver after `message` (0 if unknown)."""
    try:
        return message.metadata.num_pending or 0
    except Exception:  # not a JetStream delivery's reply subject: assume nothing waits
        return 0


async def _pump(subscription: JetStreamContext.PullSubscription, consumer: _Consumer) -> None:
    """Fetch and handle until the subscription looks broken; then return to rebuild it."""
    failures = 0
    while True:
        try:
            messages = await _next_batch(subscription, consumer.batch, consumer.linger)
        except (TimeoutError, NatsTimeoutError):
            failures = 0  # an empty stream answers like this: the consumer is fine
            continue
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # NATS away: the client reconnects; try again shortly
            failures += 1
            log.warning(
                "fetch_failed", durable=consumer.durable, error=repr(exc), failures=failures
            )
            if failures >= _RESUBSCRIBE_AFTER_FAILURES:
                return
            await asyncio.sleep(0.25)  # back-off before the next fetch
            continue
        failures = 0
        await consumer.take(messages)


def retry_delay(num_delivered: int) -> float:
    """How long a message that failed on its `num_delivered`-th delivery waits before the next:
    doubling from one second, so a short outage is ridden out in a few quiet retries."""
    return min(2.0 ** max(num_delivered - 1, 0), _MAX_RETRY_DELAY_SECONDS)


@dataclass(slots=True)
class _Consumer:
    """One durable's handling of what it fetched: handle, acknowledge, retry or give up."""

    js: JetStreamContext
    service: str
    durable: str
    handle: BatchHandler
    batch: int
    ack_wait: float
    max_deliveries: int
    linger: float

    async def take(self, messages: list[Msg]) -> None:
        deliveries = []
        for message in messages:
            try:
                deliveries.append(Delivery(decode(message.data), message))
            except Exception as exc:
                # Not a CloudEvent (or one with invalid attributes): it will never become one.
                await self._give_up(message, UNDECODABLE, exc)
        if not deliveries:
            return
        # Tracing on only: each message's span continues the trace its publisher's span began.
        spans = tracing.consumer_spans([d.message for d in deliveries], durable=self.durable)
        try:
            with tracing.current(spans):
                await self.handle(deliveries)
        except asyncio.CancelledError:
            tracing.end_spans(spans)
            raise
        except Exception as exc:
            tracing.end_spans(spans, exc)
            HANDLER_FAILURES.labels(self.durable).inc()
            if len(deliveries) == 1:
                await self._failed(deliveries[0], exc)
            else:
                # One bad message fails the whole batch's transaction: find it, so the good
                # ones are handled now and only the bad one is retried or given up on.
                log.warning(
                    "batch_failed_isolating",
                    durable=self.durable,
                    size=len(deliveries),
                    error=header_text(repr(exc), limit=300),
                )
                await self._one_by_one(deliveries)
            return
        tracing.end_spans(spans)
        await self._ack(deliveries)

    async def _one_by_one(self, deliveries: list[Delivery]) -> None:
        loop = asyncio.get_running_loop()
        since_progress = loop.time()
        for index, delivery in enumerate(deliveries):
            if loop.time() - since_progress > self.ack_wait / 2:
                # Slow going (e.g. every message waits on a database time-out): tell JetStream
                # we still hold the rest, so they are not redelivered meanwhile.
                for waiting in deliveries[index:]:
                    with contextlib.suppress(Exception):
                        await waiting.message.in_progress()
                since_progress = loop.time()
            try:
                await self.handle([delivery])
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                await self._failed(delivery, exc)
                continue
            await self._ack([delivery])

    async def _failed(self, delivery: Delivery, exc: Exception) -> None:
        message = delivery.message
        if isinstance(exc, PoisonMessage):
            await self._give_up(message, POISON, exc)
            return
        delivered = message.metadata.num_delivered
        if delivered >= self.max_deliveries:
            await self._give_up(message, EXHAUSTED, exc)
            return
        log.warning(
            "handler_failed_will_retry",
            durable=self.durable,
            event_id=delivery.event.get_id(),
            deliveries=delivered,
            error=header_text(repr(exc), limit=300),
            exc_info=exc,
        )
        with contextlib.suppress(Exception):
            await message.nak(delay=retry_delay(delivered))

    async def _give_up(self, message: Msg, reason: str, exc: Exception) -> None:
        """Copy `message` to the dead letters, then terminate it; if the copy cannot be
        stored, keep the message (it comes back later) rather than lose it."""
        error = f"{type(exc).__name__}: {exc}"
        metadata = message.metadata
        try:
            await dead_letter(
                self.js,
                message,
                service=self.service,
                durable=self.durable,
                reason=reason,
                error=error,
            )
        except asyncio.CancelledError:
            raise
        except Exception as publish_exc:
            log.error(
                "dead_letter_failed",
                durable=self.durable,
                sequence=metadata.sequence.stream,
                error=repr(publish_exc),
            )
            with contextlib.suppress(Exception):
                await message.nak(delay=retry_delay(metadata.num_delivered))
            return
        log.error(
            "dead_lettered",
            durable=self.durable,
            reason=reason,
            subject=header_text(message.subject, limit=256),
            sequence=metadata.sequence.stream,
            deliveries=metadata.num_delivered,
            error=header_text(error, limit=300),
        )
        with contextlib.suppress(Exception):
            # If this is lost, the message comes back and is copied again under the same
            # Nats-Msg-Id: the dead-letter stream keeps one copy.
            await message.term()

    async def _ack(self, deliveries: list[Delivery]) -> None:
        try:
            for delivery in deliveries:
                await delivery.message.ack()
        except Exception as exc:
            # Handled and committed, but the ack did not leave: the messages come back after
            # ack_wait and the handler recognises them by event id.
            log.warning("ack_failed", durable=self.durable, error=repr(exc))
