"""The one-hop SQLite driver answers like SQLAlchemy's own aiosqlite adapter; reads run on the loop."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from pathlib import Path

import pytest
from sqlalchemy import event, text
from sqlalchemy.exc import IntegrityError, OperationalError

from libs.common.db import create_engine, create_sessionmaker
from libs.common.sqlite_driver import GatedConnection, InLoopConnection


def test_rows_counts_ids_returning_and_errors(tmp_path: Path) -> None:
    async def scenario() -> None:
        engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'one-hop.db'}")
        try:
            async with engine.begin() as connection:
                raw = await connection.get_raw_connection()
                assert isinstance(raw.dbapi_connection, GatedConnection)
                await connection.execute(
                    text("CREATE TABLE item (id INTEGER PRIMARY KEY, name TEXT UNIQUE, n INT)")
                )
                inserted = await connection.execute(
                    text("INSERT INTO item (name, n) VALUES ('a', 1)")
                )
                assert inserted.lastrowid == 1
                many = await connection.execute(
                    text("INSERT INTO item (name, n) VALUES (:name, :n)"),
                    [{"name": "b", "n": 2}, {"name": "c", "n": 3}],
                )
                assert many.rowcount == 2
                updated = await connection.execute(text("UPDATE item SET n = n + 10 WHERE n > 1"))
                assert updated.rowcount == 2
                returned = await connection.execute(
                    text("UPDATE item SET n = 0 WHERE name = 'a' RETURNING id, n")
                )
                assert returned.all() == [(1, 0)]
                rows = await connection.execute(text("SELECT name, n FROM item ORDER BY id"))
                assert list(rows.keys()) == ["name", "n"]
                assert rows.all() == [("a", 0), ("b", 12), ("c", 13)]
            with pytest.raises(IntegrityError):
                async with engine.begin() as connection:
                    await connection.execute(text("INSERT INTO item (name, n) VALUES ('a', 9)"))
            async with engine.connect() as connection:
                count = await connection.scalar(text("SELECT count(*) FROM item"))
                assert count == 3
        finally:
            await engine.dispose()

    asyncio.run(scenario())


def test_reads_run_on_the_loops_thread_and_see_committed_writes(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'in-loop.db'}"

    async def scenario() -> None:
        writer, reader = create_engine(url), create_engine(url, for_writes=False)
        reading = create_sessionmaker(reader)
        try:
            async with writer.begin() as connection:
                await connection.execute(text("CREATE TABLE item (id INTEGER PRIMARY KEY, n INT)"))
                await connection.execute(text("INSERT INTO item (n) VALUES (1), (2)"))
            async with reading() as session, session.begin():
                raw = await (await session.connection()).get_raw_connection()
                assert isinstance(raw.dbapi_connection, InLoopConnection)
                sqlite = raw.dbapi_connection._connection._conn
                sqlite.create_function("thread_id", 0, threading.get_ident)
                ran_on = await session.scalar(text("SELECT thread_id()"))
                total = await session.scalar(text("SELECT sum(n) FROM item"))
            assert ran_on == threading.get_ident()
            assert total == 3
            # A read transaction keeps its snapshot beside a write committed meanwhile, and
            # the next one sees it (WAL: readers never wait for the writer).
            async with reading() as session:
                async with session.begin():
                    before = await session.scalar(text("SELECT count(*) FROM item"))
                    async with writer.begin() as writing:
                        await writing.execute(text("INSERT INTO item (n) VALUES (3)"))
                    assert await session.scalar(text("SELECT count(*) FROM item")) == before
                async with session.begin():
                    assert await session.scalar(text("SELECT count(*) FROM item")) == 3
            with pytest.raises(OperationalError):
                async with reading() as session, session.begin():
                    await session.execute(text("SELECT * FROM no_such_table"))
            # The failed read's connection went back to the pool rolled back and still reads.
            async with reading() as session, session.begin():
                assert await session.scalar(text("SELECT count(*) FROM item")) == 3
        finally:
            await writer.dispose()
            await reader.dispose()

    asyncio.run(scenario())


def test_writers_of_one_process_take_turns_without_blocking_the_loop(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'gate.db'}"

    async def scenario() -> None:
        engine = create_engine(url)
        sessions = create_sessionmaker(engine)
        try:
            async with engine.begin() as connection:
                await connection.execute(text("CREATE TABLE item (id INTEGER PRIMARY KEY, n INT)"))
            first_wrote, release_first = asyncio.Event(), asyncio.Event()
            order: list[str] = []

            async def first() -> None:
                async with sessions() as session, session.begin():
                    await session.execute(text("INSERT INTO item (n) VALUES (1)"))
                    first_wrote.set()
                    await release_first.wait()
                    order.append("first committed")

            async def second() -> None:
                await first_wrote.wait()
                async with sessions() as session, session.begin():
                    # The session begins its transaction at its first statement.
                    await session.execute(text("INSERT INTO item (n) VALUES (2)"))
                    order.append("second wrote")

            writers = [asyncio.create_task(first()), asyncio.create_task(second())]
            await first_wrote.wait()
            # The second writer waits at the gate while the loop goes on serving this task.
            for _ in range(20):
                await asyncio.sleep(0)
            assert order == []
            release_first.set()
            await asyncio.gather(*writers)
            assert order == ["first committed", "second wrote"]

            # A rolled-back writer leaves the gate too: the next one is not held up.
            with pytest.raises(IntegrityError):
                async with sessions() as session, session.begin():
                    await session.execute(text("INSERT INTO item (id, n) VALUES (1, 9)"))
            async with sessions() as session, session.begin():
                await session.execute(text("INSERT INTO item (n) VALUES (3)"))
            async with sessions() as session:
                assert await session.scalar(text("SELECT count(*) FROM item")) == 3
        finally:
            await engine.dispose()

    asyncio.run(scenario())


def test_requests_in_flight_reuse_pooled_connections(tmp_path: Path) -> None:
    """Each request in flight holds a connection until a loop turn after its work (SQLAlchemy
    closes it in a shielded task); the pool keeps that many, so none is opened per request."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'pool.db'}"

    async def scenario() -> None:
        engine = create_engine(url, for_writes=False)
        opened = 0

        def count(*_: object) -> None:
            nonlocal opened
            opened += 1

        event.listen(engine.sync_engine, "connect", count)

        async def request() -> None:
            # As the hot reads do it (cart, catalog, orders): Core on a connection.
            async with engine.connect() as connection:
                await connection.execute(text("SELECT 1"))

        try:
            await asyncio.gather(*(request() for _ in range(16)))
            warmed = opened
            for _ in range(10):
                await asyncio.gather(*(request() for _ in range(16)))
            assert opened == warmed, f"{opened - warmed} connections opened after warm-up"
        finally:
            await engine.dispose()

    asyncio.run(scenario())


def test_a_write_transaction_holds_the_write_lock_from_its_begin(tmp_path: Path) -> None:
    """Writers BEGIN IMMEDIATE (so that they queue instead of failing "database is locked"
    when a deferred transaction starts to write); readers BEGIN deferred and block nobody."""
    path = tmp_path / "begin.db"

    def other_writer_may_begin() -> bool:
        other = sqlite3.connect(path, timeout=0, isolation_level=None)
        try:
            other.execute("BEGIN IMMEDIATE")
            other.execute("ROLLBACK")
            return True
        except sqlite3.OperationalError:
            return False
        finally:
            other.close()

    async def scenario() -> None:
        writes = create_engine(f"sqlite+aiosqlite:///{path}")
        reads = create_engine(f"sqlite+aiosqlite:///{path}", for_writes=False)
        try:
            async with writes.begin() as connection:
                await connection.execute(text("CREATE TABLE item (id INTEGER PRIMARY KEY)"))
            async with writes.begin() as connection:
                # Only a read so far: a deferred BEGIN would hold no write lock yet.
                await connection.execute(text("SELECT count(*) FROM item"))
                assert not other_writer_may_begin()
            assert other_writer_may_begin()
            async with reads.connect() as connection:
                await connection.execute(text("SELECT count(*) FROM item"))
                assert other_writer_may_begin()
        finally:
            await writes.dispose()
            await reads.dispose()

    asyncio.run(scenario())


def test_engines_dispatch_no_statement_events(tmp_path: Path) -> None:
    """BEGIN is the dialect's own (InLoopSQLiteDialect.do_begin), not a "begin" listener:
    any connection-event listener makes SQLAlchemy dispatch every statement's events, about
    a tenth of the CPU of each statement on the hot paths."""
    for for_writes in (True, False):
        engine = create_engine(
            f"sqlite+aiosqlite:///{tmp_path / 'events.db'}", for_writes=for_writes
        )
        assert not engine.sync_engine._has_events
        asyncio.run(engine.dispose())
