"""Core statements of the hot paths, run by SQLAlchemy's synchronous API where the driver allows.

SQLAlchemy's asyncio layer runs every statement in a greenlet of its own and hands back an
adapted result; a read opens its connection the same way and returns it in a shielded task.
On SQLite our driver runs statements on the event loop's own thread and never waits in them
(libs/common/sqlite_driver.py), so that machinery only carries a synchronous call across: a
one-row read by key cost ≈ 135 µs through it and ≈ 37 µs through the synchronous Connection
(docs/performance.md). `Statements` is the one connection type the hot paths write their Core
statements against: on SQLite it calls the synchronous Connection directly; on PostgreSQL
(asyncpg, which does wait for the server) it awaits the AsyncConnection as before.
"""

from __future__ import annotations

import collections
import sqlite3
import weakref
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy import Connection, Dialect, Engine, Executable, Result, Select
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlalchemy.pool import PoolProxiedConnection
from sqlalchemy.util import greenlet_spawn

from libs.common.sqlite_driver import OneHopDbapi

Parameters = Mapping[str, Any] | Sequence[Mapping[str, Any]] | None


def _in_loop(dialect: Dialect) -> OneHopDbapi | None:
    """The driver when its statements run on the loop's thread (never for `mode="thread"`)."""
    dbapi = getattr(dialect, "loaded_dbapi", None)
    if isinstance(dbapi, OneHopDbapi) and dbapi.mode != "thread":
        return dbapi
    return None


class Statements:
    """A connection in a transaction, for Core statements: `await statements.execute(...)`.

    Direct (synchronous) only inside a transaction already begun: a write connection's BEGIN
    takes the engine's write gate, which is awaited (sqlite_driver.GatedCursor)."""

    __slots__ = ("_async", "_sync")

    def __init__(self, *, sync: Connection | None = None, async_: AsyncConnection | None = None):
        assert (sync is None) != (async_ is None)
        self._sync = sync
        self._async = async_

    @classmethod
    def of(cls, connection: AsyncConnection) -> Statements:
        """The statements of an AsyncConnection (a unit of work's, say): direct on SQLite
        once its transaction has begun."""
        sync = connection.sync_connection
        if sync is not None and sync.in_transaction() and _in_loop(connection.dialect):
            return cls(sync=sync)
        return cls(async_=connection)

    @property
    def dialect(self) -> Dialect:
        if self._sync is not None:
            return self._sync.dialect
        assert self._async is not None
        return self._async.dialect

    async def execute(self, statement: Executable, parameters: Parameters = None) -> Result[Any]:
        if self._sync is not None:
            return self._sync.execute(statement, parameters)
        assert self._async is not None
        return await self._async.execute(statement, parameters)


@asynccontextmanager
async def reading(engine: AsyncEngine) -> AsyncIterator[Statements]:
    """A read transaction on a connection of `engine` (a read engine: plain BEGIN on SQLite).

    On SQLite the connection is checked out and returned by the synchronous pool, each in
    one greenlet (opening a new connection, or closing one beyond the pool's size, awaits
    aiosqlite's thread); the statements in between run directly."""
    if _in_loop(engine.dialect) is None:
        async with engine.connect() as connection:
            yield Statements(async_=connection)
        return
    sync = await greenlet_spawn(engine.sync_engine.connect)
    try:
        # The read's BEGIN (deferred, on the loop's thread) happens with the first statement.
        yield Statements(sync=sync)
    finally:
        await greenlet_spawn(sync.close)


class _Compiled:
    """A SELECT as the bare driver runs it: its SQL, its parameters in order with their bind
    processors and defaults, and each column's result processor and name."""

    __slots__ = ("binds", "defaults", "processors", "row", "sql")

    def __init__(self, statement: Select[Any], dialect: Dialect) -> None:
        compiled = statement.compile(dialect=dialect)
        if compiled.positiontup is None or any(b.expanding for b in compiled.binds.values()):
            raise ValueError("a snapshot read needs positional, non-expanding parameters")
        self.sql = compiled.string
        self.defaults = dict(compiled.params)
        self.binds: list[tuple[str, Callable[[Any], Any] | None]] = [
            (name, compiled.binds[name].type.dialect_impl(dialect).bind_processor(dialect))
            for name in compiled.positiontup
        ]
        columns = list(statement.selected_columns)
        self.processors: list[Callable[[Any], Any] | None] = [
            column.type.dialect_impl(dialect).result_processor(dialect, None) for column in columns
        ]
        names = [column.key for column in columns]
        if not all(names):
            raise ValueError("a snapshot read names each of its columns")
        self.row: Any = collections.namedtuple("SnapshotRow", names)  # type: ignore[misc, arg-type]

    def parameters(self, given: Mapping[str, Any]) -> tuple[Any, ...]:
        values = {**self.defaults, **given}
        return tuple(
            values[name] if process is None else process(values[name])
            for name, process in self.binds
        )

    def rows(self, raw: list[tuple[Any, ...]]) -> list[Any]:
        processors = self.processors
        make = self.row._make
        if not any(processors):
            return [make(row) for row in raw]
        return [
            make(
                value if process is None else process(value)
                for process, value in zip(processors, row, strict=True)
            )
            for row in raw
        ]


class SnapshotRead:
    """A SELECT read as one statement, its own snapshot, outside any transaction.

    On SQLite it runs on the bare driver, on a connection this process keeps for such reads
    (autocommit: one SELECT is one read transaction in WAL mode, and nothing in between
    awaits, so one connection serves every coroutine): no pool check-out, no SQLAlchemy
    execution context, the statement compiled once. The rows are those SQLAlchemy's
    execution would give (the columns' result processors run), as named tuples. On PostgreSQL,
    and on SQLite in `mode="thread"`, it is an ordinary read through the engine."""

    __slots__ = ("_compiled", "statement")

    def __init__(self, statement: Select[Any]) -> None:
        self.statement = statement
        self._compiled: dict[type[Dialect], _Compiled] = {}

    def _for(self, dialect: Dialect) -> _Compiled:
        compiled = self._compiled.get(type(dialect))
        if compiled is None:
            compiled = self._compiled[type(dialect)] = _Compiled(self.statement, dialect)
        return compiled

    async def rows(self, engine: AsyncEngine, parameters: Mapping[str, Any]) -> list[Any]:
        if _in_loop(engine.dialect) is None:
            async with engine.connect() as connection:
                return list((await connection.execute(self.statement, parameters)).all())
        compiled = self._for(engine.dialect)
        held = _HELD.get(engine.sync_engine)
        if held is None:
            held = await _hold(engine.sync_engine)
        arguments = compiled.parameters(parameters)
        try:
            cursor = held.raw.execute(compiled.sql, arguments)
            try:
                raw = cursor.fetchall()
            finally:
                cursor.close()
        except sqlite3.Error as error:
            await _drop(engine.sync_engine, held)
            raise DBAPIError.instance(compiled.sql, arguments, error, sqlite3.Error) from error
        return compiled.rows(raw)


class _Held:
    __slots__ = ("pooled", "raw")

    def __init__(self, pooled: PoolProxiedConnection, raw: sqlite3.Connection) -> None:
        self.pooled = pooled
        self.raw = raw


# The connection each SQLite read engine keeps for snapshot reads, taken from its pool (with
# the engine's pragmas) and given back by `release` before the engine is disposed.
_HELD: weakref.WeakKeyDictionary[Engine, _Held] = weakref.WeakKeyDictionary()


async def _hold(engine: Engine) -> _Held:
    pooled = await greenlet_spawn(engine.raw_connection)
    current = _HELD.get(engine)
    if current is not None:  # another coroutine took one meanwhile
        await greenlet_spawn(pooled.close)
        return current
    adapted = pooled.dbapi_connection
    raw = adapted._connection._conn  # type: ignore[union-attr]
    held = _HELD[engine] = _Held(pooled, raw)
    return held


async def _drop(engine: Engine, held: _Held) -> None:
    if _HELD.get(engine) is held:
        del _HELD[engine]
    await greenlet_spawn(held.pooled.invalidate)


async def release(engine: AsyncEngine) -> None:
    """Give back the connection kept for snapshot reads (before `engine.dispose()`)."""
    held = _HELD.pop(engine.sync_engine, None)
    if held is not None:
        await greenlet_spawn(held.pooled.close)
