"""Published outbox rows leave once older than the retention; pending ones never (SQLite and
PostgreSQL; docs/operations.md, "Outbox retention")."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import insert, select
from sqlalchemy.orm import DeclarativeBase

from libs.common.db import create_engine, create_sessionmaker, create_tables
from libs.common.outbox import OutboxMixin
from libs.common.outbox_retention import PRUNE_CHUNK, OutboxPruner
from libs.common.settings import ServiceSettings

NOW = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)


class _Base(DeclarativeBase):
    pass


class _Outbox(OutboxMixin, _Base):
    pass


def _row(event_id: str, *, created: datetime, published: datetime | None) -> dict[str, Any]:
    return {
        "id": event_id,
        "subject": "events.catalog.product.created",
        "event_type": "com.onbehalf.catalog.product.created",
        "payload": b"{}",
        "created_at": created,
        "published_at": published,
        "attempts": 0,
        "traceparent": None,
    }


def test_rows_published_before_the_retention_leave_and_pending_ones_stay(
    database_url: str,
) -> None:
    async def scenario() -> None:
        engine = create_engine(database_url)
        try:
            await create_tables(engine, _Base.metadata)
            sessions = create_sessionmaker(engine)
            month_ago = NOW - timedelta(days=30)
            rows = [
                _row("published-25h-ago", created=month_ago, published=NOW - timedelta(hours=25)),
                _row("published-23h-ago", created=month_ago, published=NOW - timedelta(hours=23)),
                # Never acknowledged (NATS was away for a month): it must still leave one day.
                _row("pending-for-a-month", created=month_ago, published=None),
            ]
            # More than a chunk of old ones: the prune goes on until none is left.
            rows += [
                _row(f"old-{n}", created=month_ago, published=month_ago)
                for n in range(PRUNE_CHUNK + 5)
            ]
            async with sessions() as session, session.begin():
                await session.execute(insert(_Outbox), rows)

            pruner = OutboxPruner.of(
                ServiceSettings(service_name="catalog", outbox_retention_hours=24),
                sessionmaker=sessions,
                model=_Outbox,
            )
            assert pruner is not None
            assert await pruner.prune(now=NOW) == PRUNE_CHUNK + 6
            async with sessions() as session:
                left = set((await session.scalars(select(_Outbox.id))).all())
            assert left == {"published-23h-ago", "pending-for-a-month"}
            # Nothing more to take until time moves on.
            assert await pruner.prune(now=NOW) == 0
        finally:
            await engine.dispose()

    asyncio.run(scenario())


def test_a_retention_of_zero_keeps_every_row(tmp_path: Path) -> None:
    settings = ServiceSettings(service_name="catalog", outbox_retention_hours=0)
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'service.db'}")
    assert (
        OutboxPruner.of(settings, sessionmaker=create_sessionmaker(engine), model=_Outbox) is None
    )
    with pytest.raises(ValueError):
        OutboxPruner(sessionmaker=create_sessionmaker(engine), model=_Outbox, retention_seconds=0)
