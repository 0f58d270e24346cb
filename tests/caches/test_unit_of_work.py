"""A unit of work: its statements, its ORM session's changes and its events commit together or
not at all, on SQLite (through the process's Writer connection) and on PostgreSQL (a
connection its PostgresWriter keeps, or a session of the pool when the session comes first);
on SQLite its writers queue on one connection."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any, cast

import nats
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import Integer, MetaData, String, Table, event, func, insert, select, update
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from libs.common.activity import ActivityReporter
from libs.common.authz import Authorizer
from libs.common.db import create_engine, create_sessionmaker, create_tables, is_sqlite
from libs.common.outbox import OutboxMixin
from libs.common.pg_writer import PostgresWriter
from libs.common.relay import OutboxRelay
from libs.common.revocation import RevocationSet
from libs.common.runtime import ServiceRuntime
from libs.common.settings import ServiceSettings
from libs.common.signing import EventSigningKey
from libs.common.sqlite_writer import Writer
from libs.common.tokens import TokenVerifier
from libs.contracts.catalog import ProductCreated
from onbehalf.stack import start_nats
from tests.support.events import STAFF_CONTEXT

POLICIES = Path(__file__).resolve().parents[2] / "policies"


class _Base(DeclarativeBase):
    pass


class _Counter(_Base):
    __tablename__ = "counter"

    name: Mapped[str] = mapped_column(String(20), primary_key=True)
    value: Mapped[int] = mapped_column(Integer)


class _Outbox(OutboxMixin, _Base):
    pass


_COUNTERS = cast(Table, _Counter.__table__)


@asynccontextmanager
async def service_runtime(
    url: str, tmp_path: Path, metadata: MetaData | None = None
) -> AsyncIterator[ServiceRuntime]:
    """What a service's unit of work stands on, as start_runtime builds it (its relay not run),
    with this module's tables and `metadata`'s."""
    server = start_nats(tmp_path / "nats")
    nc = await nats.connect(server.url)
    engine = create_engine(url)
    read_engine = create_engine(url, for_writes=False) if is_sqlite(url) else engine
    sessionmaker = create_sessionmaker(engine)
    revoked = RevocationSet()
    runtime = ServiceRuntime(
        settings=ServiceSettings(service_name="catalog", database_url=url),
        engine=engine,
        sessionmaker=sessionmaker,
        read_sessionmaker=create_sessionmaker(read_engine),
        read_engine=read_engine,
        nc=nc,
        js=nc.jetstream(),
        authorizer=Authorizer(POLICIES),
        revoked=revoked,
        verifier=TokenVerifier(issuer="test", audience="test", revoked=revoked),
        relay=OutboxRelay(
            sessionmaker=sessionmaker, model=_Outbox, js=nc.jetstream(), row_locks=False
        ),
        outbox_model=_Outbox,
        reconnect_hooks=[],
        activity=ActivityReporter(nc, interval=60.0),
        signing_key=EventSigningKey("catalog", "k-1", Ed25519PrivateKey.generate()),
        writer=Writer(engine) if is_sqlite(url) else None,
        pg_writer=PostgresWriter(engine) if engine.dialect.driver == "asyncpg" else None,
    )
    try:
        await create_tables(engine, _Base.metadata)
        if metadata is not None:
            await create_tables(engine, metadata)
        yield runtime
    finally:
        if runtime.writer is not None:
            await runtime.writer.close()
        if runtime.pg_writer is not None:
            await runtime.pg_writer.close()
        await nc.close()
        await engine.dispose()
        await read_engine.dispose()
        server.stop()


async def _state(runtime: ServiceRuntime) -> tuple[dict[str, int], int]:
    """(counters by name, outbox rows), read apart from any unit of work."""
    async with runtime.reading() as session:
        counters = {row.name: row.value for row in (await session.execute(select(_COUNTERS)))}
        events = await session.scalar(select(func.count()).select_from(_Outbox))
    return counters, int(events or 0)


def _created(sku: str) -> ProductCreated:
    return ProductCreated(sku=sku, name=f"Product {sku}", price=Decimal("1.00"), currency="EUR")


def test_statements_session_changes_and_events_commit_together_or_not_at_all(
    database_url: str, tmp_path: Path
) -> None:
    async def scenario() -> None:
        async with service_runtime(database_url, tmp_path) as runtime:
            async with runtime.unit_of_work() as uow:
                written = await uow.statements()
                await written.execute(insert(_COUNTERS), {"name": "core", "value": 1})
                uow.session.add(_Counter(name="orm", value=1))  # joins the same transaction
                uow.publish(_created("A-1"), STAFF_CONTEXT)
            assert await _state(runtime) == ({"core": 1, "orm": 1}, 1)

            with pytest.raises(RuntimeError):
                async with runtime.unit_of_work() as uow:
                    written = await uow.statements()
                    await written.execute(update(_COUNTERS).values(value=_COUNTERS.c.value + 1))
                    uow.session.add(_Counter(name="lost", value=1))
                    uow.publish(_created("B-2"), STAFF_CONTEXT)
                    await uow.session.flush()
                    raise RuntimeError("the change failed after its statements")
            assert await _state(runtime) == ({"core": 1, "orm": 1}, 1)

            # The session first (a pool session), statements after: one transaction as well.
            async with runtime.unit_of_work() as uow:
                uow.session.add(_Counter(name="session-first", value=1))
                await uow.session.flush()
                written = await uow.statements()
                await written.execute(update(_COUNTERS).values(value=_COUNTERS.c.value + 1))
            assert await _state(runtime) == ({"core": 2, "orm": 2, "session-first": 2}, 1)

            # An event alone is written too; a unit of work that does nothing writes nothing.
            async with runtime.unit_of_work() as uow:
                uow.publish(_created("C-3"), STAFF_CONTEXT)
            async with runtime.unit_of_work():
                pass
            assert (await _state(runtime))[1] == 2

    asyncio.run(scenario())


def test_a_unit_of_work_of_statements_and_events_runs_nothing_through_sqlalchemy(
    database_url: str, tmp_path: Path
) -> None:
    """Statements first, then events: every statement, the outbox's insert included, runs on
    the driver (sqlite3 or asyncpg), on one connection, and the committed events are handed
    to the process's relay."""

    async def scenario() -> None:
        async with service_runtime(database_url, tmp_path) as runtime:
            executed: list[str] = []
            checkouts: list[Any] = []
            sync_engine = runtime.engine.sync_engine
            event.listen(sync_engine, "before_cursor_execute", lambda *a: executed.append(a[2]))
            event.listen(sync_engine, "checkout", lambda *a: checkouts.append(a[0]))
            async with runtime.unit_of_work() as uow:
                written = await uow.statements()
                await written.execute(insert(_COUNTERS), {"name": "core", "value": 1})
                await written.execute(update(_COUNTERS).values(value=_COUNTERS.c.value + 1))
                uow.publish(_created("A-1"), STAFF_CONTEXT)
                uow.publish(_created("B-2"), STAFF_CONTEXT)
            assert executed == []
            assert len(checkouts) <= 1  # SQLite's Writer keeps its one; PostgreSQL takes one
            assert await _state(runtime) == ({"core": 2}, 2)
            handed = runtime.relay._handed  # what the relay publishes without reading the table
            assert [row[2] for row in handed] == [row.payload for row in await _payloads(runtime)]

    asyncio.run(scenario())


async def _payloads(runtime: ServiceRuntime) -> list[Any]:
    async with runtime.reading() as session:
        query = select(_Outbox.payload).order_by(_Outbox.created_at, _Outbox.id)
        return list((await session.execute(query)).all())


def test_on_sqlite_units_of_work_queue_on_one_connection(tmp_path: Path) -> None:
    """Twenty units of work at once, each reading a counter, yielding to the loop and writing
    it back: none is lost (they ran one after another), and the engine's pool lent one
    connection for all of them, the Writer's."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'writer.db'}"

    async def scenario() -> None:
        async with service_runtime(url, tmp_path) as runtime:
            async with runtime.unit_of_work() as uow:
                written = await uow.statements()
                await written.execute(insert(_COUNTERS), {"name": "n", "value": 0})

            async def increment() -> None:
                async with runtime.unit_of_work() as uow:
                    written = await uow.statements()
                    now = (
                        await written.execute(
                            select(_COUNTERS.c.value).where(_COUNTERS.c.name == "n")
                        )
                    ).scalar()
                    await asyncio.sleep(0)
                    assert now is not None
                    await written.execute(update(_COUNTERS).values(value=now + 1))

            await asyncio.gather(*(increment() for _ in range(20)))
            assert (await _state(runtime))[0] == {"n": 20}
            assert runtime.engine.sync_engine.pool.checkedout() == 1  # type: ignore[attr-defined]

            # A unit of work that failed left the gate: the next one begins.
            with pytest.raises(ZeroDivisionError):
                async with runtime.unit_of_work() as uow:
                    await uow.statements()
                    _ = 1 / 0
            async with asyncio.timeout(5):
                await increment()
            assert (await _state(runtime))[0] == {"n": 21}

    asyncio.run(scenario())
