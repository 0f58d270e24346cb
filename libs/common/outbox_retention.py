"""Published outbox rows are deleted once older than the retention period (pending ones never)."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from typing import Any, cast

import structlog
from sqlalchemy import Table, bindparam, delete, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from libs.common.clock import utcnow
from libs.common.settings import ServiceSettings

log = structlog.get_logger("outbox")

# Rows deleted per transaction: a chunk holds the (SQLite) writers up for milliseconds, not
# for the whole backlog of a first run on a table that grew for months.
PRUNE_CHUNK = 1000


class OutboxPruner:
    """Deletes outbox rows published more than `retention_seconds` ago, every
    `every_seconds`. Once JetStream acknowledged an event, the row only serves an operator
    looking at what a service sent lately: the stream and the consumers (audit's log above
    all) hold the event. Without this the table grows by every event the service ever wrote.
    Rows still pending are never deleted, however old. Replicas sharing a PostgreSQL table
    may prune at the same time: a row is deleted once, the other delete finds nothing."""

    def __init__(
        self,
        *,
        sessionmaker: async_sessionmaker[AsyncSession],
        model: type[Any],
        retention_seconds: float,
        every_seconds: float = 600.0,
    ) -> None:
        if retention_seconds <= 0:
            raise ValueError("a retention of 0 keeps every row: do not run a pruner")
        self._sessionmaker = sessionmaker
        self._retention = timedelta(seconds=retention_seconds)
        self._every = every_seconds
        table = cast(Table, model.__table__)
        oldest = (
            select(table.c.id)
            .where(table.c.published_at < bindparam("cutoff"))
            .limit(PRUNE_CHUNK)
            .scalar_subquery()
        )
        self._delete_chunk = delete(table).where(table.c.id.in_(oldest))

    @classmethod
    def of(
        cls,
        settings: ServiceSettings,
        *,
        sessionmaker: async_sessionmaker[AsyncSession],
        model: type[Any],
    ) -> OutboxPruner | None:
        """The pruner the settings ask for; None with a retention of 0 (keep every row)."""
        if settings.outbox_retention_hours <= 0:
            return None
        return cls(
            sessionmaker=sessionmaker,
            model=model,
            retention_seconds=settings.outbox_retention_hours * 3600,
            every_seconds=settings.outbox_prune_every_seconds,
        )

    async def prune(self, *, now: datetime | None = None) -> int:
        """Delete what was published before `now` minus the retention; returns how many."""
        cutoff = (now or utcnow()) - self._retention
        total = 0
        while True:
            async with self._sessionmaker() as session, session.begin():
                result = await session.execute(self._delete_chunk, {"cutoff": cutoff})
            deleted = int(getattr(result, "rowcount", 0) or 0)
            total += deleted
            if deleted < PRUNE_CHUNK:
                break
            await asyncio.sleep(0)  # let requests in between chunks
        if total:
            log.info("outbox_pruned", rows=total, published_before=cutoff.isoformat())
        return total

    async def run(self) -> None:
        """Forever: prune, then wait the period (a failed round is logged and tried again)."""
        while True:
            try:
                await self.prune()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("outbox_prune_failed", error=repr(exc))
            await asyncio.sleep(self._every)
