"""The connections a PostgreSQL process's units of work write through (libs/common/pg_writer.py):
kept out of the pool between transactions, ended on asyncpg, never handed out broken."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
from sqlalchemy import Column, Integer, MetaData, String, Table, event, func, insert, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.pool import NullPool

from libs.common.db import create_engine
from libs.common.pg_writer import PostgresWriter
from libs.common.statements import Statements

pytestmark = pytest.mark.postgres

_metadata = MetaData()
_notes = Table(
    "note",
    _metadata,
    Column("id", Integer, primary_key=True),
    Column("body", String(40), nullable=False),
)
_PID = select(func.pg_backend_pid().label("pid"))


@asynccontextmanager
async def _writer(postgres: Any, name: str, **options: Any) -> AsyncIterator[PostgresWriter]:
    url = postgres.create_database(name)
    engine = create_engine(url)
    async with engine.begin() as connection:
        await connection.run_sync(_metadata.create_all)
        # Checked at COMMIT, so that a COMMIT can fail on purpose.
        await connection.execute(
            text(
                "ALTER TABLE note ADD CONSTRAINT one_body UNIQUE (body) DEFERRABLE INITIALLY DEFERRED"
            )
        )
    writer = PostgresWriter(engine, **options)
    try:
        yield writer
    finally:
        await writer.close()
        await engine.dispose()


async def _pid(connection: AsyncConnection) -> int:
    pid = (await Statements(async_=connection).execute(_PID)).scalar()
    assert isinstance(pid, int)
    return pid


async def _write(writer: PostgresWriter, body: str) -> int:
    """One unit of work as runtime.UnitOfWork runs it; the backend it ran on."""
    connection = await writer.begin()
    try:
        pid = await _pid(connection)
        await Statements(async_=connection).execute(insert(_notes), {"body": body})
        await writer.commit(connection)
    finally:
        await writer.give_back(connection)
    return pid


async def _bodies(engine: AsyncEngine) -> list[str]:
    async with engine.connect() as connection:
        rows = await connection.execute(select(_notes.c.body).order_by(_notes.c.body))
        return [row.body for row in rows]


def _outside(writer: PostgresWriter) -> AsyncEngine:
    """An engine of the same database that is not the writer's (no pool of its own)."""
    return create_async_engine(writer.engine.url, poolclass=NullPool)


def test_units_of_work_reuse_one_kept_connection_without_the_pool(postgres: Any) -> None:
    async def scenario() -> None:
        async with _writer(postgres, "pg_writer_reuse") as writer:
            checkouts: list[Any] = []
            event.listen(writer.engine.sync_engine, "checkout", lambda *a: checkouts.append(a))
            pids = {await _write(writer, body) for body in ("a", "b", "c")}
            assert len(pids) == 1  # the same backend each time
            assert len(checkouts) == 1  # one check-out (and its ping), then none
            outside = _outside(writer)
            try:
                assert await _bodies(outside) == ["a", "b", "c"]  # each one committed
            finally:
                await outside.dispose()

    asyncio.run(scenario())


def test_a_failed_commit_raises_sqlalchemys_error_and_the_connection_stays_usable(
    postgres: Any,
) -> None:
    async def scenario() -> None:
        async with _writer(postgres, "pg_writer_commit") as writer:
            first = await _write(writer, "same")
            connection = await writer.begin()
            try:
                await Statements(async_=connection).execute(insert(_notes), {"body": "same"})
                with pytest.raises(IntegrityError, match="one_body"):
                    await writer.commit(connection)
                assert not connection.in_transaction()
            finally:
                await writer.give_back(connection)
            # Kept, and in no transaction left aborted: the next unit of work commits on it.
            assert await _write(writer, "other") == first
            assert await _bodies(writer.engine) == ["other", "same"]

    asyncio.run(scenario())


def test_a_rolled_back_unit_of_work_leaves_nothing_and_a_clean_connection(
    postgres: Any,
) -> None:
    async def scenario() -> None:
        async with _writer(postgres, "pg_writer_rollback") as writer:
            connection = await writer.begin()
            try:
                pid = await _pid(connection)
                await Statements(async_=connection).execute(insert(_notes), {"body": "lost"})
                await writer.roll_back(connection)
            finally:
                await writer.give_back(connection)
            # Given back without an end too: what it did is rolled back.
            connection = await writer.begin()
            try:
                await Statements(async_=connection).execute(insert(_notes), {"body": "dropped"})
            finally:
                await writer.give_back(connection)
            assert await _write(writer, "kept") == pid
            assert await _bodies(writer.engine) == ["kept"]

    asyncio.run(scenario())


async def _terminate(writer: PostgresWriter, pid: int) -> None:
    outside = _outside(writer)
    try:
        async with outside.connect() as other:
            await other.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
    finally:
        await outside.dispose()


def test_a_kept_connection_the_server_closed_is_replaced(postgres: Any) -> None:
    """Its backend terminated (as by a restart): once asyncpg has read the end of the socket
    the connection is known closed, and the next unit of work runs on a fresh one."""

    async def scenario() -> None:
        async with _writer(postgres, "pg_writer_closed") as writer:
            pid = await _write(writer, "before")
            kept, _since = writer._idle[-1]
            await _terminate(writer, pid)
            driver = kept.sync_connection.connection.dbapi_connection.driver_connection  # type: ignore[union-attr]
            deadline = time.monotonic() + 10
            while not driver.is_closed():
                assert time.monotonic() < deadline, "asyncpg never saw the socket close"
                await asyncio.sleep(0.01)  # the loop reads the socket meanwhile
            assert await _write(writer, "after") != pid
            assert await _bodies(writer.engine) == ["after", "before"]

    asyncio.run(scenario())


def test_a_connection_kept_idle_too_long_is_pinged_and_replaced_when_dead(
    postgres: Any,
) -> None:
    """Past `ping_after_seconds` idle, a kept connection is pinged before it is handed out,
    as a pool check-out would: a dead one is found before any statement meets it."""

    async def scenario() -> None:
        async with _writer(postgres, "pg_writer_ping", ping_after_seconds=0.0) as writer:
            pid = await _write(writer, "before")
            await _terminate(writer, pid)  # asyncpg may not have noticed yet: the ping does
            assert await _write(writer, "after") != pid
            assert await _bodies(writer.engine) == ["after", "before"]

    asyncio.run(scenario())


def test_at_most_keep_connections_are_kept_and_close_gives_them_back(postgres: Any) -> None:
    async def scenario() -> None:
        async with _writer(postgres, "pg_writer_keep", keep=2) as writer:
            pool = writer.engine.sync_engine.pool
            taken = [await writer.begin() for _ in range(3)]
            assert pool.checkedout() == 3  # type: ignore[attr-defined]
            for connection in taken:
                await writer.commit(connection)
                await writer.give_back(connection)
            assert pool.checkedout() == 2  # type: ignore[attr-defined]  # the third went back
            await writer.close()
            assert pool.checkedout() == 0  # type: ignore[attr-defined]

    asyncio.run(scenario())
