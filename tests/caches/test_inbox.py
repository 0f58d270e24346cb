"""A consumer's inbox: an event id is handled once, on SQLite and on PostgreSQL, racing or not."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import DeclarativeBase

from libs.common.db import create_engine, create_sessionmaker, create_tables
from libs.common.inbox import InboxMixin, first_delivery
from libs.common.statements import Statements


class _Base(DeclarativeBase):
    pass


class _Inbox(InboxMixin, _Base):
    pass


async def _statements(session: AsyncSession) -> Statements:
    return Statements.of(await session.connection())


def test_an_event_is_first_delivered_once(database_url: str) -> None:
    async def scenario() -> None:
        engine = create_engine(database_url)
        sessions = create_sessionmaker(engine)
        try:
            await create_tables(engine, _Base.metadata)
            async with sessions() as session, session.begin():
                assert await first_delivery(await _statements(session), _Inbox, "event-1")
                # Again in the same transaction: already recorded.
                assert not await first_delivery(await _statements(session), _Inbox, "event-1")
                assert await first_delivery(await _statements(session), _Inbox, "event-2")

            async def deliver(event_id: str) -> bool:
                async with sessions() as session, session.begin():
                    return await first_delivery(await _statements(session), _Inbox, event_id)

            assert not await deliver("event-1")
            # Two deliveries of a new event at once: exactly one handles it.
            assert sorted(await asyncio.gather(deliver("event-3"), deliver("event-3"))) == [
                False,
                True,
            ]
            async with sessions() as session:
                assert await session.scalar(select(func.count()).select_from(_Inbox)) == 3
        finally:
            await engine.dispose()

    asyncio.run(scenario())


def test_a_rolled_back_delivery_leaves_the_event_unhandled(database_url: str) -> None:
    async def scenario() -> None:
        engine = create_engine(database_url)
        sessions = create_sessionmaker(engine)
        try:
            await create_tables(engine, _Base.metadata)
            with pytest.raises(RuntimeError):
                async with sessions() as session, session.begin():
                    assert await first_delivery(await _statements(session), _Inbox, "event-1")
                    raise RuntimeError("the handler failed")
            async with sessions() as session, session.begin():
                assert await first_delivery(await _statements(session), _Inbox, "event-1")
        finally:
            await engine.dispose()

    asyncio.run(scenario())
