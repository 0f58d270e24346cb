"""Transactional outbox: events are rows written with the change; a relay publishes them."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import UTC, datetime
from typing import Any, ClassVar

import structlog
from cloudevents.core.v1.event import CloudEvent
from nats.js import JetStreamContext
from prometheus_client import Counter
from sqlalchemy import Integer, LargeBinary, String, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import Mapped, mapped_column
from tenacity import AsyncRetrying, retry_if_exception_type, wait_exponential_jitter

from libs.common.db import UtcDateTime
from libs.common.events import encode, nats_subject

log = structlog.get_logger("outbox")

PUBLISHED = Counter("onbehalf_outbox_published_total", "Outbox events published to JetStream")
PUBLISH_FAILURES = Counter("onbehalf_outbox_publish_failures_total", "Failed relay rounds")


def utcnow() -> datetime:
    return datetime.now(UTC)


class OutboxMixin:
    """Columns of a service's `outbox` table; each service maps it on its own Base."""

    __tablename__: ClassVar[str] = "outbox"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    subject: Mapped[str] = mapped_column(String(200))
    event_type: Mapped[str] = mapped_column(String(200))
    payload: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    published_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True, index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)


def add_to_outbox(session: AsyncSession, model: type[Any], event: CloudEvent) -> None:
    """Stage `event` in the caller's transaction; it is published only if that commits."""
    session.add(
        model(
            id=event.get_id(),
            subject=nats_subject(event.get_type()),
            event_type=event.get_type(),
            payload=encode(event),
            created_at=utcnow(),
            attempts=0,
        )
    )


class RelayRoundFailed(Exception):
    """A round published only part of its batch; the rest is retried with back-off."""


class OutboxRelay:
    """Publishes pending outbox rows to JetStream (Nats-Msg-Id = event id), oldest first."""

    def __init__(
        self,
        *,
        sessionmaker: async_sessionmaker[AsyncSession],
        model: type[Any],
        js: JetStreamContext,
        row_locks: bool,
        batch_size: int = 200,
        poll_seconds: float = 0.5,
        publish_timeout: float = 2.0,
    ) -> None:
        self._sessionmaker = sessionmaker
        self._model = model
        self._js = js
        self._row_locks = row_locks
        self._batch_size = batch_size
        self._poll_seconds = poll_seconds
        self._publish_timeout = publish_timeout
        self._wakeup = asyncio.Event()

    def notify(self) -> None:
        """Called after a commit that wrote events, so they leave without waiting for a poll."""
        self._wakeup.set()

    async def run(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wakeup.wait(), timeout=self._poll_seconds)
            self._wakeup.clear()
            async for attempt in AsyncRetrying(
                retry=retry_if_exception_type(Exception),
                wait=wait_exponential_jitter(initial=0.05, max=3.0),
                reraise=True,
            ):
                with attempt:
                    while await self.publish_pending() == self._batch_size:
                        pass

    async def publish_pending(self) -> int:
        """One round: publish up to a batch; returns how many rows it published."""
        if self._row_locks:
            return await self._publish_locked()
        return await self._publish_unlocked()

    async def _publish_locked(self) -> int:
        # PostgreSQL: several relays share the table; SKIP LOCKED hands each a disjoint batch.
        model = self._model
        async with self._sessionmaker() as session, session.begin():
            rows = (
                await session.scalars(
                    select(model)
                    .where(model.published_at.is_(None))
                    .order_by(model.created_at, model.id)
                    .limit(self._batch_size)
                    .with_for_update(skip_locked=True)
                )
            ).all()
            done, error = await self._publish_rows([(r.id, r.subject, r.payload) for r in rows])
            now = utcnow()
            for row in rows:
                if row.id in done:
                    row.published_at = now
                else:
                    row.attempts += 1
        return self._finish(len(done), error)

    async def _publish_unlocked(self) -> int:
        # SQLite: one writer at a time, so never hold the write lock while talking to NATS.
        model = self._model
        async with self._sessionmaker() as session:
            result = await session.execute(
                select(model.id, model.subject, model.payload)
                .where(model.published_at.is_(None))
                .order_by(model.created_at, model.id)
                .limit(self._batch_size)
            )
            rows = [(r.id, r.subject, r.payload) for r in result]
            await session.commit()
        if not rows:
            return 0
        done, error = await self._publish_rows(rows)
        if done:
            async with self._sessionmaker() as session, session.begin():
                await session.execute(
                    update(model).where(model.id.in_(done)).values(published_at=utcnow())
                )
        return self._finish(len(done), error)

    async def _publish_rows(
        self, rows: list[tuple[str, str, bytes]]
    ) -> tuple[set[str], Exception | None]:
        done: set[str] = set()
        for event_id, subject, payload in rows:
            try:
                await self._js.publish(
                    subject,
                    payload,
                    timeout=self._publish_timeout,
                    headers={"Nats-Msg-Id": event_id},
                )
            except Exception as exc:
                return done, exc
            done.add(event_id)
        return done, None

    def _finish(self, published: int, error: Exception | None) -> int:
        PUBLISHED.inc(published)
        if error is not None:
            PUBLISH_FAILURES.inc()
            log.warning("outbox_publish_failed", published=published, error=repr(error))
            raise RelayRoundFailed(str(error)) from error
        return published
