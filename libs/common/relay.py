"""The outbox relay: publishes committed outbox rows to JetStream and marks them published."""

from __future__ import annotations

import asyncio
import contextlib
from collections import OrderedDict
from datetime import timedelta
from typing import Any, cast

import structlog
from nats.js import JetStreamContext
from nats.js.errors import NoStreamResponseError
from opentelemetry.trace import Span
from prometheus_client import Counter
from sqlalchemy import Engine, Table, bindparam, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception_type,
    wait_exponential_jitter,
)

from libs.common import tracing
from libs.common.clock import utcnow
from libs.common.db import UtcDateTime, bound_engine
from libs.common.outbox import Row, register_relay, unregister_relay
from libs.common.snapshots import SnapshotRead

log = structlog.get_logger("outbox")
# The first pause after a failed relay round; doubling (with jitter) up to max_backoff.
_FIRST_BACKOFF_SECONDS = 0.05

PUBLISHED = Counter("onbehalf_outbox_published_total", "Outbox events published to JetStream")
PUBLISH_FAILURES = Counter("onbehalf_outbox_publish_failures_total", "Failed relay rounds")


class RelayRoundFailed(Exception):
    """A round published only part of its batch; the rest is retried with back-off."""


class OutboxRelay:
    """Publishes pending outbox rows to JetStream (Nats-Msg-Id = event id), oldest first.

    A row is marked published only once JetStream acknowledged it; anything else (NATS away,
    a publish timeout, a crash between the ack and our commit) leaves it pending, and the
    retry is de-duplicated by JetStream on the message id and by every consumer on the event id.

    The rows a commit of this process wrote are handed over in memory (`hand_over`), so a round
    publishes them without reading the table, and the acknowledged ids are marked published
    together, one UPDATE every `mark_delay_seconds` (or per `batch_size` ids): a crash in
    between only means they are published again, which is the retry above. The table is still
    read every `poll_seconds`, after a failure and whenever the hand-over fell behind, so rows
    written by anyone else leave as before.

    On PostgreSQL (`row_locks`: replicas share the table) that read locks its rows
    (`FOR UPDATE SKIP LOCKED`, held until they are marked), so two relays never publish the
    same row from the table, and takes only rows older than `claim_after_seconds`: younger
    ones are their writer's to hand over (another replica's, or this one's), and a row nobody
    handed over (its process died, its round failed, it came from a command-line tool) leaves
    with the first read after that. A writer slower than that to publish its own rows may
    publish one a second time; JetStream and the consumers drop the copy.
    """

    def __init__(
        self,
        *,
        sessionmaker: async_sessionmaker[AsyncSession],
        model: type[Any],
        js: JetStreamContext,
        row_locks: bool,
        read_sessionmaker: async_sessionmaker[AsyncSession] | None = None,
        batch_size: int = 200,
        poll_seconds: float = 0.5,
        publish_timeout: float = 2.0,
        max_backoff_seconds: float = 2.0,
        mark_delay_seconds: float = 0.2,
        claim_after_seconds: float = 2.0,
    ) -> None:
        self._sessionmaker = sessionmaker
        # SQLite: the pending rows are read in a deferred (read) transaction. On the writers'
        # engine every transaction begins IMMEDIATE: a periodic read took the write lock, made
        # the process's writers queue behind it, and waited out another process's long write
        # with the event loop blocked (SQLite's busy wait).
        self._read_sessionmaker = read_sessionmaker or sessionmaker
        self._read_engine = bound_engine(self._read_sessionmaker)
        self._model = model
        self._js = js
        self._row_locks = row_locks
        self._batch_size = batch_size
        self._poll_seconds = poll_seconds
        self._publish_timeout = publish_timeout
        self._max_backoff = max_backoff_seconds
        self._mark_delay = mark_delay_seconds
        self._claim_after = timedelta(seconds=claim_after_seconds)
        self._wakeup = asyncio.Event()
        self._reconnected = asyncio.Event()
        # Set while rounds fail (and before the first): the next round probes with one message
        # before pipelining the batch, so an outage does not pile a whole batch per retry into
        # the client's reconnect buffer, to be flushed as duplicates when NATS returns.
        self._failing = True
        table = cast(Table, model.__table__)
        self._pending_query = (
            select(table.c.id, table.c.subject, table.c.payload, table.c.traceparent)
            .where(table.c.published_at.is_(None))
            .order_by(table.c.created_at, table.c.id)
            .limit(batch_size)
        )
        # Read the way cart reads a cart: one statement on the bare driver, its own snapshot.
        # An idle relay reads twice a second, and through a session that read cost every
        # service ≈ 1.5 ms of CPU each time.
        self._pending_read = SnapshotRead(self._pending_query)
        # PostgreSQL: whether the locking read below would find a row, asked without a
        # transaction first (an idle relay's round was a transaction of its own: ≈ 2 ms of CPU).
        self._any_claimable = SnapshotRead(
            select(table.c.id)
            .where(
                table.c.published_at.is_(None),
                table.c.created_at < bindparam("claimed_before", type_=UtcDateTime),
            )
            .limit(1)
        )
        self._mark_statement = (
            update(table)
            .where(table.c.id.in_(bindparam("ids", expanding=True)))
            .values(published_at=bindparam("now"))
        )
        self._count_attempt = (
            update(table)
            .where(table.c.id.in_(bindparam("ids", expanding=True)))
            .values(attempts=table.c.attempts + 1)
        )
        # Committed rows handed over in memory, not published yet.
        self._handed: list[Row] = []
        # The table may hold pending rows the hand-over did not bring: read it next round.
        self._read_table = True
        self._last_read = 0.0
        # Acknowledged, not marked yet, and since when the oldest of them waits.
        self._unmarked: list[str] = []
        self._unmarked_since = 0.0
        # Ids published lately: a row the table read already published may still be handed
        # over by its commit a moment later (the read can see a commit before its hook runs).
        self._recent: OrderedDict[str, None] = OrderedDict()
        self._registered: tuple[Engine, Table] | None = None
        bind = bound_engine(sessionmaker)
        if bind is not None:
            self._registered = (bind.sync_engine, table)
            register_relay(*self._registered, self)

    def notify(self) -> None:
        """Called after a commit that wrote events, so they leave without waiting for a poll."""
        self._wakeup.set()

    def hand_over(self, row: Row) -> None:
        """A row a commit of this process just wrote (called by the session's after-commit)."""
        if len(self._handed) >= 4 * self._batch_size:
            # Falling behind (NATS away): the table has them; stop holding them in memory.
            self._handed.clear()
            self._read_table = True
            return
        self._handed.append(row)
        self._wakeup.set()

    def on_reconnect(self) -> None:
        """A NATS reconnect hook: cut the current back-off short, the way is clear again."""
        self._reconnected.set()
        self._wakeup.set()

    async def run(self) -> None:
        """Forever: wait for a commit (or the poll period), publish everything pending."""
        try:
            while True:
                if not self._wakeup.is_set():
                    # Set already when commits came during the last round, the usual case
                    # under load: then straight on, without a timed wait's task and timer.
                    timeout = self._mark_delay if self._unmarked else self._poll_seconds
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._wakeup.wait(), timeout=timeout)
                self._wakeup.clear()
                try:
                    await self._drain_with_backoff()
                except asyncio.CancelledError:
                    raise
                except Exception as exc:  # never let the relay task die: the next poll tries
                    log.exception("outbox_relay_error", error=repr(exc))
        finally:
            if self._registered is not None:
                unregister_relay(*self._registered, self)
            if self._unmarked:
                # Stopping: mark what JetStream acknowledged, so a restart does not resend it.
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(self._mark_published(), timeout=2.0)

    async def _drain_with_backoff(self) -> None:
        if not self._failing:
            # The usual round (every commit wakes the relay): no retry machinery built for it.
            try:
                while await self.publish_pending() >= self._batch_size:
                    pass
                return
            except Exception as exc:
                self._failing = True
                self._log_failure(exc, attempt=1)
                await self._backoff_sleep(_FIRST_BACKOFF_SECONDS)
        async for attempt in AsyncRetrying(
            retry=retry_if_exception_type(Exception),
            wait=wait_exponential_jitter(multiplier=_FIRST_BACKOFF_SECONDS, max=self._max_backoff),
            sleep=self._backoff_sleep,
            before_sleep=self._before_retry,
            reraise=True,
        ):
            with attempt:
                while await self.publish_pending() >= self._batch_size:
                    pass

    def _before_retry(self, state: RetryCallState) -> None:
        self._failing = True
        outcome = state.outcome
        error = outcome.exception() if outcome is not None else None
        if isinstance(error, Exception):
            self._log_failure(error, attempt=state.attempt_number + 1)

    @staticmethod
    def _log_failure(error: Exception, *, attempt: int) -> None:
        if not isinstance(error, RelayRoundFailed):
            # A publish failure is logged where it happens; this is the database side.
            log.warning("outbox_round_failed", attempt=attempt, error=repr(error))

    async def _backoff_sleep(self, seconds: float) -> None:
        # A reconnect (during the back-off or since the last one) ends it: NATS is back.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._reconnected.wait(), timeout=seconds)
        self._reconnected.clear()

    async def publish_pending(self) -> int:
        """One round: publish up to a batch; returns how many rows it published."""
        loop = asyncio.get_running_loop()
        handed, self._handed = self._handed, []
        rows: list[Row] = []
        full = False
        if self._failing or self._read_table or loop.time() - self._last_read >= self._poll_seconds:
            # Marked first, so that the read returns only rows nobody published.
            await self._mark_published()
            self._last_read = loop.time()
            if self._row_locks:
                full = await self._publish_locked() >= self._batch_size
            else:
                rows = await self._read_pending()
                full = len(rows) >= self._batch_size
            self._read_table = full
        published = await self._publish_handed(rows, handed)
        # A full read means more may wait in the table: the caller comes straight back.
        return max(published, self._batch_size) if full else published

    async def _read_pending(self) -> list[Row]:
        # SQLite: one writer at a time, so never hold the write lock while talking to NATS.
        # One relay per database file (one process), so nobody else publishes these rows.
        if self._read_engine is not None:
            found = await self._pending_read.rows(self._read_engine, {})
        else:
            async with self._read_sessionmaker() as session:
                found = list(await session.execute(self._pending_query))
        return [(r.id, r.subject, r.payload, r.traceparent) for r in found]

    async def _publish_locked(self) -> int:
        # PostgreSQL: several relays share the table; SKIP LOCKED hands each a disjoint batch,
        # and the locks are held until the published rows are marked, so no row goes out twice
        # from two relays (a relay that dies mid-round releases its locks with its connection).
        # Rows younger than the claim period are their writer's to hand over.
        model = self._model
        claimed_before = utcnow() - self._claim_after
        if self._read_engine is not None and not await self._any_claimable.rows(
            self._read_engine, {"claimed_before": claimed_before}
        ):
            return 0
        async with self._sessionmaker() as session, session.begin():
            rows = (
                await session.scalars(
                    select(model)
                    .where(
                        model.published_at.is_(None),
                        model.created_at < claimed_before,
                    )
                    .order_by(model.created_at, model.id)
                    .limit(self._batch_size)
                    .with_for_update(skip_locked=True)
                )
            ).all()
            if not rows:
                return 0
            done, error = await self._publish_rows(
                [(r.id, r.subject, r.payload, r.traceparent) for r in rows]
            )
            now = utcnow()
            for row in rows:
                if row.id in done:
                    row.published_at = now
                else:
                    row.attempts += 1
        for row in rows:
            if row.id in done:
                self._recent[row.id] = None
        return self._finish(len(done), error)

    async def _publish_handed(self, rows: list[Row], handed: list[Row]) -> int:
        """Publish the rows read (SQLite) and those handed over; their marks wait for a batch."""
        loop = asyncio.get_running_loop()
        known = {row[0] for row in rows}
        rows += [row for row in handed if row[0] not in known and row[0] not in self._recent]
        if not rows:
            if self._mark_due(loop.time()):
                await self._mark_published()
            return 0
        done, error = await self._publish_rows(rows)
        for event_id in done:
            self._recent[event_id] = None
        while len(self._recent) > 4 * self._batch_size:
            self._recent.popitem(last=False)
        if done and not self._unmarked:
            self._unmarked_since = loop.time()
        self._unmarked += [row[0] for row in rows if row[0] in done]
        failed = [row[0] for row in rows if row[0] not in done]
        if failed:
            self._read_table = True
            await self._mark_published(failed=failed)
        elif self._mark_due(loop.time()):
            await self._mark_published()
        return self._finish(len(done), error)

    def _mark_due(self, now: float) -> bool:
        return bool(self._unmarked) and (
            len(self._unmarked) >= self._batch_size
            or now - self._unmarked_since >= self._mark_delay
        )

    async def _mark_published(self, failed: list[str] | None = None) -> None:
        """One transaction: the acknowledged ids marked published, a failed round counted."""
        done = self._unmarked
        if not done and not failed:
            return
        async with self._sessionmaker() as session, session.begin():
            if done:
                await session.execute(self._mark_statement, {"ids": done, "now": utcnow()})
            if failed:
                await session.execute(self._count_attempt, {"ids": failed})
        # Only now: if the transaction failed, they stay to be marked by the next round.
        if self._unmarked is done:
            self._unmarked = []

    async def _publish_rows(self, rows: list[Row]) -> tuple[set[str], Exception | None]:
        """Publish in order; returns the ids JetStream acknowledged and the first error.

        Publishes are pipelined (one round trip for the batch, not one per row); the
        server stores them in the order they were sent. After a failure the first row
        goes alone, as a probe, until NATS answers again.
        """
        done: set[str] = set()
        if self._failing:
            event_id, subject, payload, traceparent = rows[0]
            span, headers = tracing.publish_span(subject, traceparent)
            try:
                await self._js.publish(
                    subject,
                    payload,
                    timeout=self._publish_timeout,
                    headers={"Nats-Msg-Id": event_id, **headers},
                )
            except Exception as exc:
                tracing.end_span(span, exc)
                return done, exc
            tracing.end_span(span)
            done.add(event_id)
            self._failing = False
            rows = rows[1:]
        pending: dict[asyncio.Future[Any], str] = {}
        # Producer spans (tracing on only), ended when their publish is answered.
        spans: dict[str, Span] = {}
        error: Exception | None = None
        for event_id, subject, payload, traceparent in rows:
            span, headers = tracing.publish_span(subject, traceparent)
            try:
                future = await self._js.publish_async(
                    subject,
                    payload,
                    wait_stall=self._publish_timeout,
                    headers={"Nats-Msg-Id": event_id, **headers},
                )
            except Exception as exc:
                tracing.end_span(span, exc)
                error = exc
                break
            pending[future] = event_id
            if span is not None:
                spans[event_id] = span
        if pending:
            finished, unfinished = await asyncio.wait(pending, timeout=self._publish_timeout)
            for future in unfinished:
                # No ack in time: maybe stored, maybe not; the retry is de-duplicated.
                future.cancel()
            if unfinished and error is None:
                error = TimeoutError(f"{len(unfinished)} publishes not acknowledged in time")
            for future in finished:
                failure = future.exception()
                if failure is None:
                    done.add(pending[future])
                elif error is None:
                    error = (
                        failure if isinstance(failure, Exception) else RuntimeError(repr(failure))
                    )
        for event_id, span in spans.items():
            tracing.end_span(span, None if event_id in done else error)
        if error is not None:
            self._failing = True
            if isinstance(error, NoStreamResponseError):
                # NATS came back without its store (a new server): only the provisioner may
                # recreate the stream; the rows stay pending until it has.
                log.error("events_stream_missing", hint="run `onbehalf nats provision`")
        return done, error

    def _finish(self, published: int, error: Exception | None) -> int:
        PUBLISHED.inc(published)
        if error is not None:
            PUBLISH_FAILURES.inc()
            log.warning("outbox_publish_failed", published=published, error=repr(error))
            raise RelayRoundFailed(str(error)) from error
        return published
