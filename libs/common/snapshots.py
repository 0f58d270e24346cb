"""Snapshot reads: one SELECT read outside any transaction, as its own snapshot.

`SnapshotRead` runs a statement built once, on SQLite on the bare driver through a connection
each read engine keeps for such reads, on PostgreSQL on a few connections kept in autocommit;
`release` gives them back before the engine is disposed. Reads that need no transaction (a
cart in view, an order's history, the relay's pending rows) skip the pool check-out, BEGIN and
ROLLBACK each read through a session would cost (docs/performance.md)."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import weakref
from collections.abc import Mapping
from typing import Any

from sqlalchemy import Dialect, Engine, Select
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlalchemy.pool import PoolProxiedConnection
from sqlalchemy.util import greenlet_spawn

from libs.common.statements import CompiledStatement, in_loop, run_on_asyncpg


class SnapshotRead:
    """A SELECT read as one statement, its own snapshot, outside any transaction.

    On SQLite it runs on the bare driver, on a connection this process keeps for such reads
    (autocommit: one SELECT is one read transaction in WAL mode, and nothing in between
    awaits, so one connection serves every coroutine): no pool check-out, no SQLAlchemy
    execution context, the statement compiled once. The rows are those SQLAlchemy's
    execution would give (the columns' result processors run), as named tuples. On PostgreSQL
    it is a read through SQLAlchemy on one of a few connections the engine keeps in
    autocommit (no pool check-out, ping, BEGIN or ROLLBACK); on SQLite in `mode="thread"` an
    ordinary read through the engine."""

    __slots__ = ("_compiled", "statement")

    def __init__(self, statement: Select[Any]) -> None:
        self.statement = statement
        self._compiled: dict[type[Dialect], CompiledStatement] = {}

    def _for(self, dialect: Dialect) -> CompiledStatement:
        compiled = self._compiled.get(type(dialect))
        if compiled is None:
            compiled = self._compiled[type(dialect)] = CompiledStatement(self.statement, dialect)
            if not compiled.returns_rows:
                raise ValueError("a snapshot read is a SELECT")
        return compiled

    async def rows(self, engine: AsyncEngine, parameters: Mapping[str, Any]) -> list[Any]:
        compiled = self._for(engine.dialect) if in_loop(engine.dialect) else None
        prepared = compiled.expanded(parameters) if compiled and compiled.expanding else None
        if compiled is None or (compiled.expanding and prepared is None):
            if engine.dialect.name != "sqlite":
                return await _autocommit_rows(engine, self.statement, parameters)
            async with engine.connect() as connection:
                return list((await connection.execute(self.statement, parameters)).all())
        held = _HELD.get(engine.sync_engine)
        if held is None:
            held = await _hold(engine.sync_engine)
        sql, arguments = prepared or (compiled.sql, compiled.parameters(parameters))
        try:
            cursor = held.raw.execute(sql, arguments)
            try:
                raw = cursor.fetchall()
            finally:
                cursor.close()
        except sqlite3.Error as error:
            await _drop(engine.sync_engine, held)
            raise DBAPIError.instance(sql, arguments, error, sqlite3.Error) from error
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
    """Give back the connections kept for snapshot reads (before `engine.dispose()`)."""
    held = _HELD.pop(engine.sync_engine, None)
    if held is not None:
        await greenlet_spawn(held.pooled.close)
    kept = _KEPT.pop(engine.sync_engine, None)
    if kept is not None:
        for connection in kept.idle:
            await _close_quietly(connection)


class _Kept:
    """The connections a read engine of a server database keeps for snapshot reads: a few, in
    autocommit, each serving one read at a time."""

    __slots__ = ("idle", "loop", "slots")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.idle: list[AsyncConnection] = []
        self.slots = asyncio.Semaphore(_KEPT_PER_ENGINE)


# On PostgreSQL a snapshot read through a connection of the pool costs three round trips
# beside its SELECT (the pool's ping at check-out, BEGIN, and the ROLLBACK of its return);
# on one kept in autocommit the SELECT is all (and is its own snapshot). A few per engine,
# so that concurrent reads do not queue behind one another.
_KEPT: weakref.WeakKeyDictionary[Engine, _Kept] = weakref.WeakKeyDictionary()
_KEPT_PER_ENGINE = 4


async def _autocommit_rows(
    engine: AsyncEngine, statement: Select[Any], parameters: Mapping[str, Any]
) -> list[Any]:
    loop = asyncio.get_running_loop()
    kept = _KEPT.get(engine.sync_engine)
    if kept is None or kept.loop is not loop:  # connections of another loop cannot serve
        kept = _KEPT[engine.sync_engine] = _Kept(loop)
    async with kept.slots:
        for attempt in (1, 2):
            connection = kept.idle.pop() if kept.idle else await _autocommit_connection(engine)
            try:
                raw = connection.sync_connection
                assert raw is not None
                answer = await run_on_asyncpg(
                    raw.connection.dbapi_connection, engine.dialect, statement, parameters
                )
                if answer is None:
                    answer = await connection.execute(statement, parameters)
                rows = list(answer.all())
            except DBAPIError as error:
                await _close_quietly(connection)
                if attempt == 1 and error.connection_invalidated:
                    continue  # the server restarted since: once more, on a new connection
                raise
            except BaseException:
                await _close_quietly(connection)
                raise
            kept.idle.append(connection)
            return rows
    raise AssertionError("unreachable")  # pragma: no cover


async def _autocommit_connection(engine: AsyncEngine) -> AsyncConnection:
    connection = await engine.connect()
    try:
        return await connection.execution_options(isolation_level="AUTOCOMMIT")
    except BaseException:
        await _close_quietly(connection)
        raise


async def _close_quietly(connection: AsyncConnection) -> None:
    with contextlib.suppress(Exception):
        await connection.close()
