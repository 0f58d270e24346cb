"""On PostgreSQL (asyncpg), the connections a process's units of work write through, kept out
of the pool between transactions (runtime.UnitOfWork)."""

from __future__ import annotations

import contextlib
import time
from typing import Any

from sqlalchemy import Connection
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine


class PostgresWriter:
    """Hands a unit of work a connection in a begun transaction and ends it, on asyncpg.

    Through the pool, each unit of work paid a check-out with its ping (a round trip), the
    pool's return, and a greenlet each for BEGIN, COMMIT and the close: ≈ 0.16 ms of Python per
    transaction against ≈ 0.05 for the transaction itself (docs/performance.md, "Kept write
    connections"). Here a connection a unit of work gave back waits, still checked out, for
    the next one (up to `keep` of them; more are taken from the pool and given back to it);
    SQLAlchemy's transaction is begun and ended on the loop, and COMMIT and ROLLBACK go to
    asyncpg directly, so SQLAlchemy's adapter has nothing left to await. BEGIN is sent by the
    first statement, as before (libs/common/statements.py).

    A kept connection is not pinged each time: one whose server closed it (a restart, an
    idle timeout) is known closed to asyncpg as soon as the loop read the end of its socket,
    and is replaced; one idle longer than `ping_after_seconds` is pinged first, as a pool
    check-out would. A connection a statement or a COMMIT found broken, or that SQLAlchemy
    invalidated, is never kept."""

    def __init__(
        self, engine: AsyncEngine, *, keep: int = 8, ping_after_seconds: float = 10.0
    ) -> None:
        if engine.dialect.driver != "asyncpg":
            raise ValueError("a PostgresWriter needs an asyncpg engine")
        self.engine = engine
        self._keep = keep
        self._ping_after = ping_after_seconds
        self._idle: list[tuple[AsyncConnection, float]] = []  # the most recently used last
        # Connections a ROLLBACK failed on: given back to the pool as broken, never kept.
        self._broken: set[AsyncConnection] = set()
        self._closed = False

    async def begin(self) -> AsyncConnection:
        """A connection in a new SQLAlchemy transaction (BEGIN follows with its first statement)."""
        while self._idle:
            connection, since = self._idle.pop()
            if await self._alive(connection, idle=time.monotonic() - since):
                break
            await _discard(connection)
        else:
            connection = await self.engine.connect()  # the pool's check-out pings it
        sync = _sync(connection)
        try:
            sync.begin()  # nothing awaited: asyncpg's BEGIN waits for the first statement
        except BaseException:
            await _discard(connection)
            raise
        return connection

    async def commit(self, connection: AsyncConnection) -> None:
        """COMMIT; if it fails, the transaction is over (PostgreSQL ends it) and the error is
        raised as SQLAlchemy's execution would raise it."""
        await self._end(connection, commit=True)

    async def roll_back(self, connection: AsyncConnection) -> None:
        """ROLLBACK, never raising: a connection it fails on is not kept (the error that
        made the unit of work roll back is the one worth raising)."""
        try:
            await self._end(connection, commit=False)
        except Exception:
            self._broken.add(connection)

    async def give_back(self, connection: AsyncConnection) -> None:
        """After `commit` or `roll_back` (or instead of them: what is left is rolled back)."""
        sync = _sync(connection)
        if sync.in_transaction() and connection not in self._broken:
            await self.roll_back(connection)
        broken = connection in self._broken
        self._broken.discard(connection)
        if broken or self._closed or sync.invalidated or _driver(sync).is_closed():
            await _discard(connection)
        elif len(self._idle) < self._keep:
            self._idle.append((connection, time.monotonic()))
        else:
            await connection.close()  # back to the pool

    async def close(self) -> None:
        """Give every kept connection back to the pool (before `engine.dispose()`)."""
        self._closed = True
        idle, self._idle = self._idle, []
        for connection, _since in idle:
            await connection.close()

    async def _end(self, connection: AsyncConnection, *, commit: bool) -> None:
        sync = _sync(connection)
        if sync.invalidated:
            # SQLAlchemy's own handling of a connection it found broken: as before this writer.
            await (connection.commit() if commit else connection.rollback())
            return
        adapted: Any = sync.connection.dbapi_connection
        transaction = adapted._transaction  # the adapter's asyncpg transaction, once begun
        if transaction is not None:
            dbapi = sync.dialect.loaded_dbapi
            try:
                try:
                    # The adapter's own way: it forgets the transaction whatever happens.
                    await adapted._call_and_discard(
                        transaction.commit if commit else transaction.rollback
                    )
                except Exception as error:
                    adapted._handle_exception(error)  # raises it as the DB-API error it is
            except dbapi.Error as error:
                sync.rollback()  # SQLAlchemy's side; the adapter has nothing left to end
                raise DBAPIError.instance(
                    "COMMIT" if commit else "ROLLBACK",
                    None,
                    error,
                    dbapi.Error,
                    connection_invalidated=sync.dialect.is_disconnect(error, adapted, None),
                ) from error
        # The adapter's transaction is gone: SQLAlchemy's commit or rollback awaits nothing.
        if commit:
            sync.commit()
        else:
            sync.rollback()

    async def _alive(self, connection: AsyncConnection, *, idle: float) -> bool:
        sync = _sync(connection)
        if sync.invalidated or sync.closed or _driver(sync).is_closed():
            return False
        if idle < self._ping_after:
            return True
        try:
            await _driver(sync).execute(";")
        except Exception:
            return False
        return True


def _sync(connection: AsyncConnection) -> Connection:
    sync = connection.sync_connection
    assert sync is not None, "an AsyncConnection of this writer is always started"
    return sync


def _driver(sync: Connection) -> Any:
    """The asyncpg connection itself."""
    return sync.connection.dbapi_connection.driver_connection  # type: ignore[union-attr]


async def _discard(connection: AsyncConnection) -> None:
    """Drop a connection that may be broken: the pool replaces it."""
    with contextlib.suppress(Exception):
        await connection.invalidate()
    with contextlib.suppress(Exception):
        await connection.close()
