"""The relays read their tables beside another process's write (SQLite): no write lock taken."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import nats
from nats.js.api import StreamConfig
from sqlalchemy.orm import DeclarativeBase

from libs.common.db import create_engine, create_sessionmaker, create_tables
from libs.common.mail import MailOutboxMixin, MailRelay
from libs.common.outbox import OutboxMixin, add_to_outbox
from libs.common.relay import OutboxRelay
from onbehalf.stack import start_nats
from tests.support.events import product_created


class _Base(DeclarativeBase):
    pass


class _Outbox(OutboxMixin, _Base):
    pass


class _MailOutbox(MailOutboxMixin, _Base):
    pass


def test_the_relay_publishes_pending_rows_while_another_process_holds_the_write_lock(
    tmp_path: Path,
) -> None:
    """Rows the relay finds by reading its table (written before it started, as after a
    restart) are published while an operator's command holds the database's write lock. The
    relay's read took that lock until now (every transaction of the writers' engine begins
    IMMEDIATE), and waited out SQLite's 30 s busy timeout with the event loop blocked."""
    server = start_nats(tmp_path / "nats")
    path = tmp_path / "service.db"

    async def scenario() -> None:
        nc = await nats.connect(server.url)
        writes = create_engine(f"sqlite+aiosqlite:///{path}")
        reads = create_engine(f"sqlite+aiosqlite:///{path}", for_writes=False)
        try:
            js = nc.jetstream()
            await js.add_stream(StreamConfig(name="RELAY_TEST", subjects=["events.>"]))
            await create_tables(writes, _Base.metadata)
            sessions = create_sessionmaker(writes)
            event = product_created("SKU-1")
            async with sessions() as session, session.begin():
                add_to_outbox(session, _Outbox, event)
            relay = OutboxRelay(
                sessionmaker=sessions,
                read_sessionmaker=create_sessionmaker(reads),
                model=_Outbox,
                js=js,
                row_locks=False,
            )
            holder = sqlite3.connect(path, isolation_level=None)
            holder.execute("BEGIN IMMEDIATE")
            try:
                published = await asyncio.wait_for(relay.publish_pending(), timeout=10)
            finally:
                holder.rollback()
                holder.close()
            assert published == 1
            stored = await js.get_last_msg("RELAY_TEST", "events.catalog.product.created")
            assert stored.headers is not None
            assert stored.headers["Nats-Msg-Id"] == event.get_id()
        finally:
            await writes.dispose()
            await reads.dispose()
            await nc.drain()

    try:
        asyncio.run(scenario())
    finally:
        server.stop()


def test_the_mail_relay_polls_while_another_process_holds_the_write_lock(tmp_path: Path) -> None:
    """The mail relay looks for mail every second; with none due it reads and is done, even
    while another process holds the write lock (it began a write transaction, and waited out
    SQLite's 30 s busy timeout with the event loop blocked)."""
    path = tmp_path / "identity.db"

    async def scenario() -> None:
        writes = create_engine(f"sqlite+aiosqlite:///{path}")
        reads = create_engine(f"sqlite+aiosqlite:///{path}", for_writes=False)
        try:
            await create_tables(writes, _Base.metadata)
            relay = MailRelay(
                sessionmaker=create_sessionmaker(writes),
                read_sessionmaker=create_sessionmaker(reads),
                model=_MailOutbox,
                # Never contacted: there is no mail to send.
                smtp_url="smtp://127.0.0.1:9",
                row_locks=False,
            )
            holder = sqlite3.connect(path, isolation_level=None)
            holder.execute("BEGIN IMMEDIATE")
            try:
                assert await asyncio.wait_for(relay.send_pending(), timeout=10) == 0
            finally:
                holder.rollback()
                holder.close()
        finally:
            await writes.dispose()
            await reads.dispose()

    asyncio.run(scenario())
