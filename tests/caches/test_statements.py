"""The hot paths' Core statements (libs/common/statements.py) answer as SQLAlchemy's async
connection does, commit and roll back with their transaction, and on SQLite run without its
async bridge; on SQLite and on PostgreSQL."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import (
    Column,
    MetaData,
    Numeric,
    String,
    Table,
    bindparam,
    delete,
    event,
    func,
    insert,
    select,
    text,
    update,
)
from sqlalchemy.exc import DBAPIError, IntegrityError, StatementError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.pool import NullPool
from sqlalchemy.util.concurrency import in_greenlet

from libs.common import snapshots
from libs.common.db import (
    UtcDateTime,
    create_engine,
    create_sessionmaker,
    create_tables,
    is_sqlite,
    transaction_lock,
)
from libs.common.statements import Statements

_metadata = MetaData()
_price = Table(
    "price",
    _metadata,
    Column("sku", String(20), primary_key=True),
    Column("amount", Numeric(12, 2), nullable=False),
    Column("changed_at", UtcDateTime, nullable=False),
)
_AT = datetime(2026, 12, 2, 19, 30, 15, 123456, tzinfo=UTC)
_ROWS = [
    {"sku": "A-1", "amount": Decimal("17.50"), "changed_at": _AT},
    {"sku": "B-2", "amount": Decimal("0.10"), "changed_at": _AT},
]
_ALL = select(_price.c.sku, _price.c.amount, _price.c.changed_at).order_by(_price.c.sku)


def _executed_through_sqlalchemy(engine: AsyncEngine) -> list[str]:
    """The SQL of each statement SQLAlchemy executes on `engine` from now on (its cursor
    event: the bare driver's statements do not appear)."""
    executed: list[str] = []

    @event.listens_for(engine.sync_engine, "before_cursor_execute")
    def _seen(*args: Any) -> None:
        executed.append(args[2])

    return executed


def _engines(url: str) -> tuple[AsyncEngine, AsyncEngine]:
    engine = create_engine(url)
    return engine, create_engine(url, for_writes=False) if is_sqlite(url) else engine


def test_rows_types_and_counts_as_the_async_connection_gives_them(database_url: str) -> None:
    async def scenario() -> None:
        engine, read_engine = _engines(database_url)
        sessions = create_sessionmaker(engine)
        try:
            await create_tables(engine, _metadata)
            async with sessions() as session, session.begin():
                written = Statements.of(await session.connection())
                await written.execute(insert(_price), _ROWS)  # executemany
                changed = await written.execute(
                    update(_price).where(_price.c.amount < 1).values(amount=Decimal("0.20"))
                )
                assert changed.rowcount == 1
            async with read_engine.begin() as begun:
                connection = Statements.of(begun)
                direct = (await connection.execute(_ALL)).all()
                one = (await connection.execute(_ALL.where(_price.c.sku == "A-1"))).first()
            async with read_engine.connect() as bridge:
                bridged = (await bridge.execute(_ALL)).all()
            assert direct == bridged
            assert [tuple(row) for row in direct] == [
                ("A-1", Decimal("17.50"), _AT),
                ("B-2", Decimal("0.20"), _AT),
            ]
            assert one is not None and one.amount == Decimal("17.50")
            assert one.changed_at.tzinfo is not None  # UtcDateTime's processing ran
        finally:
            await engine.dispose()
            await read_engine.dispose()

    asyncio.run(scenario())


def test_statements_commit_and_roll_back_with_their_transaction(database_url: str) -> None:
    async def scenario() -> None:
        engine, read_engine = _engines(database_url)
        sessions = create_sessionmaker(engine)
        try:
            await create_tables(engine, _metadata)
            with pytest.raises(RuntimeError):
                async with sessions() as session, session.begin():
                    written = Statements.of(await session.connection())
                    await written.execute(insert(_price), _ROWS[0])
                    raise RuntimeError("the change failed after its statement")
            async with read_engine.begin() as begun:
                connection = Statements.of(begun)
                assert (await connection.execute(_ALL)).all() == []
            async with sessions() as session, session.begin():
                written = Statements.of(await session.connection())
                await written.execute(insert(_price), _ROWS[1])
            async with read_engine.begin() as begun:
                connection = Statements.of(begun)
                assert [row.sku for row in (await connection.execute(_ALL)).all()] == ["B-2"]
        finally:
            await engine.dispose()
            await read_engine.dispose()

    asyncio.run(scenario())


def test_a_connection_not_yet_in_a_transaction_writes_through_the_async_path(
    database_url: str,
) -> None:
    """A write connection's BEGIN (SQLite: IMMEDIATE, behind the engine's write gate) has to
    be awaited: before it, `Statements.of` keeps to the async connection."""

    async def scenario() -> None:
        engine, read_engine = _engines(database_url)
        try:
            await create_tables(engine, _metadata)
            async with engine.connect() as connection:
                written = Statements.of(connection)
                await written.execute(insert(_price), _ROWS[0])
                await connection.commit()
            async with read_engine.begin() as begun:
                reader = Statements.of(begun)
                assert [row.sku for row in (await reader.execute(_ALL)).all()] == ["A-1"]
        finally:
            await engine.dispose()
            await read_engine.dispose()

    asyncio.run(scenario())


def test_on_sqlite_statements_skip_sqlalchemys_async_bridge(tmp_path: Path) -> None:
    """What the module is for: inside a transaction, a statement on SQLite is a plain call
    on the loop's thread, not a greenlet spawned per statement (SQLite itself says which)."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'bridge.db'}"

    async def scenario() -> None:
        engine, read_engine = _engines(url)
        for each in (engine, read_engine):

            @event.listens_for(each.sync_engine, "connect")
            def _bridged(dbapi_connection: Any, _record: Any) -> None:
                # The SQL function runs inside the statement, on the caller's stack.
                dbapi_connection.create_function("bridged", 0, lambda: int(in_greenlet()))

        sessions = create_sessionmaker(engine)
        asked = text("SELECT bridged()")
        try:
            async with read_engine.begin() as begun:
                connection = Statements.of(begun)
                assert (await connection.execute(asked)).scalar() == 0
            async with sessions() as session, session.begin():
                assert (
                    await Statements.of(await session.connection()).execute(asked)
                ).scalar() == 0
                # The session's own execute goes through the bridge: the check can tell.
                assert (await session.execute(asked)).scalar() == 1
        finally:
            await engine.dispose()
            await read_engine.dispose()

    asyncio.run(scenario())


_PRICE_OF = snapshots.SnapshotRead(
    select(
        _price.c.sku,
        _price.c.amount,
        _price.c.changed_at,
        func.coalesce(_price.c.amount, 0).label("or_zero"),
    )
    .where(_price.c.sku >= bindparam("from_sku", type_=String))
    .order_by(_price.c.sku)
)


@asynccontextmanager
async def _priced(
    url: str,
) -> AsyncIterator[tuple[async_sessionmaker[AsyncSession], AsyncEngine]]:
    """The price table with _ROWS committed: its writers' sessions and its read engine."""
    engine, read_engine = _engines(url)
    sessions = create_sessionmaker(engine)
    try:
        await create_tables(engine, _metadata)
        async with sessions() as session, session.begin():
            await Statements.of(await session.connection()).execute(insert(_price), _ROWS)
        yield sessions, read_engine
    finally:
        await snapshots.release(read_engine)
        await engine.dispose()
        await read_engine.dispose()


def test_a_snapshot_read_gives_sqlalchemys_rows_and_each_read_the_last_commit(
    database_url: str,
) -> None:
    async def scenario() -> None:
        async with _priced(database_url) as (sessions, read_engine):
            rows = await _PRICE_OF.rows(read_engine, {"from_sku": "A"})
            async with read_engine.connect() as connection:
                bridged = (await connection.execute(_PRICE_OF.statement, {"from_sku": "A"})).all()
            assert [tuple(row) for row in rows] == [tuple(row) for row in bridged]
            assert rows[0].amount == Decimal("17.50") and isinstance(rows[0].amount, Decimal)
            assert rows[0].changed_at == _AT and rows[0].changed_at.tzinfo is not None
            assert [row.sku for row in await _PRICE_OF.rows(read_engine, {"from_sku": "B"})] == [
                "B-2"
            ]
            # A kept connection must not keep its snapshot: the next read sees this commit.
            async with sessions() as session, session.begin():
                await Statements.of(await session.connection()).execute(
                    update(_price).where(_price.c.sku == "A-1").values(amount=Decimal("18.00"))
                )
            again = await _PRICE_OF.rows(read_engine, {"from_sku": "A"})
            assert again[0].amount == Decimal("18.00")

    asyncio.run(scenario())


# The polls' question (is any session or mail due by now?): a time compared on the bare driver.
_CHANGED_BY = snapshots.SnapshotRead(
    select(_price.c.sku)
    .where(_price.c.changed_at <= bindparam("now", type_=UtcDateTime))
    .order_by(_price.c.sku)
)


def test_a_snapshot_read_compares_an_aware_time_in_utc(database_url: str) -> None:
    """A time given in another zone is compared as the same instant: SQLite stores text, so
    without the column type's bind processing 20:30+01:00 would sort after 19:30:15Z."""
    one_hour_east = timezone(timedelta(hours=1))

    async def scenario() -> None:
        async with _priced(database_url) as (_sessions, read_engine):
            just_before = (_AT - timedelta(microseconds=1)).astimezone(one_hour_east)
            assert await _CHANGED_BY.rows(read_engine, {"now": just_before}) == []
            at = _AT.astimezone(one_hour_east)
            assert [row.sku for row in await _CHANGED_BY.rows(read_engine, {"now": at})] == [
                "A-1",
                "B-2",
            ]

    asyncio.run(scenario())


def test_on_sqlite_a_snapshot_read_keeps_one_connection_and_no_transaction(
    tmp_path: Path,
) -> None:
    """What SnapshotRead is for: no pool check-out and no SQLAlchemy execution per read, on
    one connection in autocommit that a failed read replaces."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'snapshot.db'}"

    async def scenario() -> None:
        engine, read_engine = _engines(url)
        pool = read_engine.sync_engine.pool
        executed = _executed_through_sqlalchemy(read_engine)

        sessions = create_sessionmaker(engine)
        try:
            await create_tables(engine, _metadata)
            async with sessions() as session, session.begin():
                await Statements.of(await session.connection()).execute(insert(_price), _ROWS)
            for _ in range(20):
                assert len(await _PRICE_OF.rows(read_engine, {"from_sku": ""})) == 2
                assert pool.checkedout() == 1  # type: ignore[attr-defined]
            assert executed == []  # SQLAlchemy executed none of the twenty reads
            async with sessions() as session, session.begin():
                await (await session.connection()).execute(text("DROP TABLE price"))
            with pytest.raises(DBAPIError, match="no such table"):
                await _PRICE_OF.rows(read_engine, {"from_sku": ""})
            assert pool.checkedout() == 0  # type: ignore[attr-defined]  # the failed one left
            await create_tables(engine, _metadata)
            assert await _PRICE_OF.rows(read_engine, {"from_sku": ""}) == []
            await snapshots.release(read_engine)
            assert pool.checkedout() == 0  # type: ignore[attr-defined]
        finally:
            await snapshots.release(read_engine)
            await engine.dispose()
            await read_engine.dispose()

    asyncio.run(scenario())


_BACKEND_PID = snapshots.SnapshotRead(select(func.pg_backend_pid().label("pid")))


@pytest.mark.postgres
def test_on_postgresql_snapshot_reads_keep_a_connection_in_autocommit(postgres: Any) -> None:
    """Twenty reads, one check-out from the pool, none executed through SQLAlchemy (asyncpg
    runs them), no transaction left open on the server; a kept connection the server dropped
    is replaced and the read answered all the same."""
    url = postgres.create_database("snapshot_kept")

    async def scenario() -> None:
        engine = create_engine(url)
        checkouts: list[object] = []
        event.listen(engine.sync_engine, "checkout", lambda *args: checkouts.append(args[0]))
        try:
            await create_tables(engine, _metadata)
            async with engine.begin() as connection:
                await connection.execute(insert(_price), _ROWS)
            checkouts.clear()
            executed = _executed_through_sqlalchemy(engine)
            for _ in range(20):
                assert len(await _PRICE_OF.rows(engine, {"from_sku": ""})) == 2
            assert len(checkouts) == 1
            assert executed == []
            (kept,) = await _BACKEND_PID.rows(engine, {})
            async with engine.connect() as other:
                state = (
                    await other.execute(
                        text("SELECT state FROM pg_stat_activity WHERE pid = :pid"),
                        {"pid": kept.pid},
                    )
                ).scalar()
                assert state == "idle"  # not "idle in transaction": autocommit
                await other.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": kept.pid})
            (replaced,) = await _BACKEND_PID.rows(engine, {})
            assert replaced.pid != kept.pid
            assert len(await _PRICE_OF.rows(engine, {"from_sku": "B"})) == 1
        finally:
            await snapshots.release(engine)
            await engine.dispose()

    asyncio.run(scenario())


_stamped = Table(
    "stamped",
    _metadata,
    Column("sku", String(20), primary_key=True),
    Column("noted_at", UtcDateTime, nullable=False, default=lambda: _AT),
)


async def _insert_change_read_delete(written: Statements) -> None:
    """The plain statements of a hot path, in one transaction, with what each answers: an
    executemany and a one-row INSERT, an UPDATE and a DELETE (their row counts), SELECTs
    (rows with their columns' processing: Decimal, an aware datetime)."""
    await written.execute(insert(_price), _ROWS)
    await written.execute(insert(_price), {**_ROWS[0], "sku": "C-3"})
    changed = await written.execute(
        update(_price).where(_price.c.sku == "C-3").values(amount=Decimal("3.30"))
    )
    assert changed.rowcount == 1
    assert (await written.execute(_ALL)).scalars().all() == ["A-1", "B-2", "C-3"]
    row = (await written.execute(_ALL.where(_price.c.sku == "C-3"))).first()
    assert row is not None and row.amount == Decimal("3.30")
    assert row.changed_at == _AT and row.changed_at.tzinfo is not None
    gone = await written.execute(delete(_price).where(_price.c.sku == "B-2"))
    assert gone.rowcount == 1


def test_in_a_transaction_plain_statements_run_on_the_bare_driver(tmp_path: Path) -> None:
    """SQLAlchemy executes nothing for a plain SELECT, INSERT (one row or many), UPDATE or
    DELETE in a begun transaction on SQLite; a statement with a Python-side default still
    goes through it (and gets its default); a constraint violation is SQLAlchemy's
    IntegrityError, as callers catch it."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'bare.db'}"

    async def scenario() -> None:
        engine, read_engine = _engines(url)
        executed = _executed_through_sqlalchemy(engine)

        sessions = create_sessionmaker(engine)
        try:
            await create_tables(engine, _metadata)
            async with sessions() as session, session.begin():
                await session.execute(text("SELECT 1"))  # the transaction begins here
                executed.clear()
                written = Statements.of(await session.connection())
                await _insert_change_read_delete(written)
                assert executed == []
                await written.execute(insert(_stamped), {"sku": "A-1"})  # needs its default
                assert len(executed) == 1
                with pytest.raises(IntegrityError):
                    await written.execute(insert(_price), _ROWS[0])
                # Rows of different columns are SQLAlchemy's to refuse, with its message.
                ragged = [{**_ROWS[0], "sku": "D-4"}, {"sku": "E-5", "amount": Decimal(1)}]
                with pytest.raises(StatementError, match="changed_at"):
                    await written.execute(insert(_price), ragged)
            async with read_engine.begin() as begun:
                reader = Statements.of(begun)
                assert (await reader.execute(select(_stamped.c.noted_at))).scalar() == _AT
        finally:
            await engine.dispose()
            await read_engine.dispose()

    asyncio.run(scenario())


_AMOUNTS_OF = select(_price.c.sku, _price.c.amount).where(
    _price.c.sku.in_(bindparam("skus", expanding=True))
)
_MARK = (
    update(_price)
    .where(_price.c.sku.in_(bindparam("skus", expanding=True)))
    .values(amount=bindparam("amount"))
)


# An IN list between two parameters: asyncpg numbers its placeholders after both.
_AMOUNTS_BETWEEN = (
    select(_price.c.sku, _price.c.amount)
    .where(
        _price.c.amount >= bindparam("low"),
        _price.c.sku.in_(bindparam("skus", expanding=True)),
        _price.c.amount < bindparam("high"),
    )
    .order_by(_price.c.sku)
)


def test_in_lists_run_on_the_bare_driver_and_an_empty_one_finds_nothing(database_url: str) -> None:
    """A SELECT or UPDATE with an IN list (an expanding bind parameter) runs on the bare driver
    (sqlite3 or asyncpg) in a transaction and in a snapshot read, with its bind processors
    applied to every element, for lists of any length, beside parameters before and after
    it; an empty list goes through SQLAlchemy, which renders it as matching nothing."""
    url = database_url
    amounts_now = snapshots.SnapshotRead(_AMOUNTS_OF)

    async def scenario() -> None:
        engine, read_engine = _engines(url)
        executed = _executed_through_sqlalchemy(engine)
        read_executed = _executed_through_sqlalchemy(read_engine)
        sessions = create_sessionmaker(engine)
        try:
            await create_tables(engine, _metadata)
            async with sessions() as session, session.begin():
                await session.execute(text("SELECT 1"))  # the transaction begins here
                executed.clear()
                written = Statements.of(await session.connection())
                await written.execute(insert(_price), _ROWS)
                one = await written.execute(_AMOUNTS_OF, {"skus": ["B-2"]})
                assert [tuple(row) for row in one.all()] == [("B-2", Decimal("0.10"))]
                both = await written.execute(_AMOUNTS_OF, {"skus": ("A-1", "B-2", "X-9")})
                assert sorted(row.sku for row in both.all()) == ["A-1", "B-2"]
                marked = await written.execute(
                    _MARK, {"skus": ["A-1", "B-2"], "amount": Decimal("2.5")}
                )
                assert marked.rowcount == 2
                between = {"low": Decimal("2.5"), "skus": ["X-9", "A-1"], "high": Decimal("3")}
                found = await written.execute(_AMOUNTS_BETWEEN, between)
                assert [tuple(row) for row in found.all()] == [("A-1", Decimal("2.50"))]
                below = await written.execute(_AMOUNTS_BETWEEN, {**between, "high": Decimal("2")})
                assert below.all() == []
                assert executed == []
                none = await written.execute(_AMOUNTS_OF, {"skus": []})
                assert none.all() == []
                assert len(executed) == 1  # the empty list, through SQLAlchemy
            read_executed.clear()  # on PostgreSQL the same engine wrote above
            read = await amounts_now.rows(read_engine, {"skus": ["A-1", "B-2"]})
            assert sorted(tuple(row) for row in read) == [
                ("A-1", Decimal("2.50")),
                ("B-2", Decimal("2.50")),
            ]
            assert await amounts_now.rows(read_engine, {"skus": ["A-1"]}) == [
                ("A-1", Decimal("2.50"))
            ]
            assert read_executed == []
            assert await amounts_now.rows(read_engine, {"skus": []}) == []
        finally:
            await snapshots.release(read_engine)
            await engine.dispose()
            await read_engine.dispose()

    asyncio.run(scenario())


@pytest.mark.postgres
def test_on_postgresql_plain_statements_run_on_asyncpg_in_a_transaction(postgres: Any) -> None:
    """SQLAlchemy executes nothing for a plain SELECT, INSERT (one row or many), UPDATE or
    DELETE in a begun transaction: asyncpg runs them, with SQLAlchemy's processing of the
    values both ways; a constraint violation is SQLAlchemy's IntegrityError, and the rolled
    back transaction leaves nothing behind."""
    url = postgres.create_database("bare_asyncpg")

    async def scenario() -> None:
        engine = create_engine(url)
        executed = _executed_through_sqlalchemy(engine)
        sessions = create_sessionmaker(engine)
        try:
            await create_tables(engine, _metadata)
            async with sessions() as session, session.begin():
                await session.execute(text("SELECT 1"))  # the transaction begins here
                executed.clear()
                written = Statements.of(await session.connection())
                await _insert_change_read_delete(written)
                assert executed == []
            with pytest.raises(IntegrityError):
                async with sessions() as session, session.begin():
                    written = Statements.of(await session.connection())
                    await written.execute(insert(_price), {**_ROWS[1], "sku": "D-4"})
                    await written.execute(insert(_price), _ROWS[0])  # A-1 is there
            async with engine.connect() as connection:
                skus = (await connection.execute(select(_price.c.sku))).scalars().all()
            assert sorted(skus) == ["A-1", "C-3"]
        finally:
            await engine.dispose()

    asyncio.run(scenario())


@pytest.mark.postgres
def test_on_postgresql_a_transaction_lock_runs_on_asyncpg_and_holds_to_the_end(
    postgres: Any,
) -> None:
    """The advisory lock a writer takes (the audit chain's, per appended batch) is run by
    asyncpg, not SQLAlchemy, and a second transaction asking for it waits until the first
    one ends."""
    url = postgres.create_database("transaction_lock")
    # Only this database's lock 42: the server is shared with other tests' stacks, whose
    # audit services queue on their own advisory locks meanwhile.
    waiting = text(
        "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
        " AND objid = 42 AND database ="
        " (SELECT oid FROM pg_database WHERE datname = current_database())"
    )

    async def scenario() -> None:
        engine = create_engine(url)
        executed = _executed_through_sqlalchemy(engine)
        sessions = create_sessionmaker(engine)
        held, release = asyncio.Event(), asyncio.Event()
        happened: list[str] = []

        async def first() -> None:
            async with sessions() as session, session.begin():
                await session.execute(text("SELECT 1"))
                executed.clear()
                await transaction_lock(Statements.of(await session.connection()), 42)
                assert executed == []
                held.set()
                await release.wait()
                happened.append("first ended")

        async def second() -> None:
            await held.wait()
            async with sessions() as session, session.begin():
                await session.execute(text("SELECT 1"))
                await transaction_lock(Statements.of(await session.connection()), 42)
                happened.append("second locked")

        try:
            tasks = [asyncio.create_task(first()), asyncio.create_task(second())]
            deadline = asyncio.get_running_loop().time() + 10.0
            async with engine.connect() as watcher:
                while (await watcher.execute(waiting)).scalar() != 1:
                    assert asyncio.get_running_loop().time() < deadline, "second never queued"
                    await asyncio.sleep(0.01)
            assert happened == []
            release.set()
            await asyncio.gather(*tasks)
            assert happened == ["first ended", "second locked"]
        finally:
            await engine.dispose()

    asyncio.run(scenario())


@pytest.mark.postgres
def test_on_postgresql_a_pooled_connection_the_server_dropped_is_never_handed_out(
    postgres: Any,
) -> None:
    """Every pooled connection's backend is terminated (as by a server restart): the next
    check-outs ping, find each dead and take fresh ones, so the work that follows succeeds
    and no statement meets a dead connection."""
    url = postgres.create_database("pool_ping")

    async def scenario() -> None:
        engine = create_engine(url)
        outside = create_async_engine(url, poolclass=NullPool)  # not one of the pool's
        try:
            await create_tables(engine, _metadata)
            held = [await engine.connect() for _ in range(3)]
            pids = []
            for connection in held:
                pids.append((await connection.execute(select(func.pg_backend_pid()))).scalar())
                await connection.close()  # back to the pool, alive
            async with outside.connect() as other:
                await other.execute(
                    text(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE pid = ANY(:p)"
                    ),
                    {"p": pids},
                )
            for n in range(3):
                async with engine.connect() as connection:
                    await connection.execute(insert(_price), {**_ROWS[0], "sku": f"P-{n}"})
                    await connection.commit()
            async with engine.connect() as connection:
                count = (
                    await connection.execute(select(func.count()).select_from(_price))
                ).scalar()
            assert count == 3
        finally:
            await engine.dispose()
            await outside.dispose()

    asyncio.run(scenario())
