"""PostgreSQL, replicas sharing one outbox table: each relay publishes its own process's commits
from memory, and the table's rows nobody handed over once they are older than the claim period,
each event exactly once."""

from __future__ import annotations

import asyncio
import collections
import time
from pathlib import Path

import nats
import pytest
from nats.aio.msg import Msg
from nats.js.api import StreamConfig
from sqlalchemy import func, select
from sqlalchemy.orm import DeclarativeBase

from devtools.postgres import PostgresServer
from libs.common import snapshots
from libs.common.db import create_engine, create_sessionmaker, create_tables
from libs.common.outbox import OutboxMixin, add_to_outbox
from libs.common.relay import OutboxRelay
from onbehalf.stack import start_nats
from tests.support.events import product_created

pytestmark = pytest.mark.postgres

_CLAIM_AFTER = 1.0


class _Base(DeclarativeBase):
    pass


class _Outbox(OutboxMixin, _Base):
    pass


def test_replicas_publish_their_commits_and_claim_only_settled_orphans(
    tmp_path: Path, postgres: PostgresServer
) -> None:
    server = start_nats(tmp_path / "nats")
    url = postgres.create_database(f"relays_{tmp_path.name[-12:].lower().replace('-', '_')}")

    async def scenario() -> None:
        nc = await nats.connect(server.url)
        # Two replicas of one service, and a command-line tool that writes events and has no
        # relay (each its own engine: the hand-over is per engine and table, per process).
        engines = [create_engine(url) for _ in range(3)]
        seen: collections.Counter[str] = collections.Counter()

        all_seen = asyncio.Event()

        async def count(message: Msg) -> None:
            # Core NATS sees every publish, also those JetStream then drops as duplicates.
            seen[(message.headers or {})["Nats-Msg-Id"]] += 1
            if len(seen) == 41:
                all_seen.set()

        try:
            js = nc.jetstream()
            await js.add_stream(StreamConfig(name="REPLICAS_TEST", subjects=["events.>"]))
            await nc.subscribe("events.>", cb=count)
            await create_tables(engines[0], _Base.metadata)
            sessions = [create_sessionmaker(engine) for engine in engines]
            relays = [
                OutboxRelay(
                    sessionmaker=sessions[index],
                    model=_Outbox,
                    js=js,
                    row_locks=True,
                    claim_after_seconds=_CLAIM_AFTER,
                )
                for index in range(2)
            ]

            # An orphan (the tool's): no relay takes it while it is younger than the claim
            # period; the old relay read it at once, racing its writer's own hand-over.
            async with sessions[2]() as session, session.begin():
                add_to_outbox(session, _Outbox, product_created("ORPHAN-1"))
            assert await relays[0].publish_pending() == 0
            assert await relays[1].publish_pending() == 0
            assert not seen

            tasks = [asyncio.create_task(relay.run()) for relay in relays]
            ids: list[str] = []
            for index in range(40):
                session_of = sessions[index % 2]
                async with session_of() as session, session.begin():
                    event = product_created(f"SKU-{index}")
                    add_to_outbox(session, _Outbox, event)
                    ids.append(event.get_id())
                relays[index % 2].notify()

            await asyncio.wait_for(all_seen.wait(), timeout=30)
            # Every event once: the replicas' own from memory, the orphan from the table.
            assert set(ids) <= set(seen) and len(seen) == 41
            assert max(seen.values()) == 1

            async def pending() -> int:
                async with sessions[0]() as session:
                    return int(
                        await session.scalar(
                            select(func.count())
                            .select_from(_Outbox)
                            .where(_Outbox.published_at.is_(None))
                        )
                        or 0
                    )

            deadline = time.monotonic() + 30
            for _ in range(600):  # the marks are batched every 0.2 s: poll, with a deadline
                if not await pending() or time.monotonic() > deadline:
                    break
                await asyncio.sleep(0.05)
            assert await pending() == 0
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        finally:
            for engine in engines:
                await snapshots.release(engine)  # the relays' snapshot reads keep connections
                await engine.dispose()
            await nc.drain()

    try:
        asyncio.run(scenario())
    finally:
        server.stop()
