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

from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy import Connection, Dialect, Executable, Result
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
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
