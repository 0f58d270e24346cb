"""The catalog revision: every catalog write raises it in its own transaction; cached answers
hold only while it is unchanged (services/catalog/views.py)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import cast

from sqlalchemy import Connection, Table, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession

from libs.common import snapshots, statements
from libs.common.runtime import ServiceRuntime, UnitOfWork
from services.catalog.models import CatalogRevision

ROW = 1
_table = cast(Table, CatalogRevision.__table__)
_READ = select(_table.c.revision).where(_table.c.id == ROW)
_RAISE = update(_table).where(_table.c.id == ROW).values(revision=_table.c.revision + 1)
_FIRST = insert(_table).values(id=ROW, revision=1)
_READ_NOW = snapshots.SnapshotRead(_READ)


async def current(session: AsyncSession) -> int:
    """The revision as this read transaction sees it (0 before the first write)."""
    return (await session.execute(_READ)).scalar() or 0


@asynccontextmanager
async def changing(runtime: ServiceRuntime) -> AsyncIterator[UnitOfWork]:
    """`runtime.unit_of_work()` for catalog writes. Every catalog state change publishes an
    event, so work that staged one raises the revision, in the same transaction: no replica
    can see the change and still take an answer cached before it for current."""
    async with runtime.unit_of_work() as uow:
        yield uow
        if uow.staged:
            raised = await uow.session.execute(_RAISE)
            if not raised.rowcount:  # type: ignore[attr-defined]
                # The migration inserts the row; this only guards a database made otherwise.
                await uow.session.execute(_FIRST)


class SharedReads:
    """The revision for requests that only need to know it (is my cached answer current?),
    one database read for all the requests waiting at once: a request joins the read that
    has not started yet, never one already running, so the revision it gets was read after
    it arrived and every write answered before then is counted."""

    def __init__(self, read: Callable[[], Awaitable[int]]) -> None:
        self._read = read
        # One read at a time (by a request itself, or by the task serving the ones waiting).
        self._reading = False
        # The read the requests arriving now wait for; it starts once the running one ends.
        self._next: asyncio.Future[int] | None = None
        self._reader: asyncio.Task[None] | None = None

    async def current(self) -> int:
        if not self._reading:
            # Nobody reading: this request reads itself, without a task or a future.
            self._reading = True
            try:
                return await self._read()
            finally:
                self._reading = False
                if self._next is not None:
                    self._reading = True
                    self._reader = asyncio.create_task(self._read_while_asked())
        waiting = self._next
        if waiting is None:
            waiting = self._next = asyncio.get_running_loop().create_future()
        # Shielded: one request going away must not cancel the read the others wait for.
        return await asyncio.shield(waiting)

    async def _read_while_asked(self) -> None:
        waiting = None
        try:
            while (waiting := self._next) is not None:
                self._next = None
                try:
                    waiting.set_result(await self._read())
                except Exception as exc:
                    waiting.set_exception(exc)
                    waiting.exception()  # retrieved: every waiter may have gone already
        finally:
            self._reading = False
            # Cancelled (the service stops): nobody may wait for a read that never comes.
            for left in (waiting, self._next):
                if left is not None and not left.done():
                    left.cancel()
            self._next = None


def _read_and_end(connection: Connection) -> int:
    try:
        return connection.execute(_READ).scalar() or 0
    finally:
        # Ended at once: on SQLite an open read transaction would keep seeing its snapshot.
        connection.rollback()


class HeldConnection:
    """Reads the revision on a connection kept for it: no session, no pool round trip. That
    is a snapshot read's (snapshots.SnapshotRead): on SQLite one SELECT on the bare driver,
    nothing awaited; on PostgreSQL one SELECT in autocommit. (On SQLite in `mode="thread"`,
    a connection of its own, one greenlet switch per read.)"""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._snapshot = (
            statements.in_loop(engine.dialect) is not None or engine.dialect.name != "sqlite"
        )
        self._connection: AsyncConnection | None = None

    async def read(self) -> int:
        try:
            return await self._read()
        except Exception:
            # Broken (the database restarted, say): once more on a fresh, pre-pinged one.
            await self.close()
            return await self._read()

    async def _read(self) -> int:
        if self._snapshot:
            # One SELECT outside any transaction is its own snapshot: as current as the
            # read-and-roll-back below, for a fraction of its cost (a quote's largest part).
            rows = await _READ_NOW.rows(self._engine, {})
            return (rows[0].revision if rows else 0) or 0
        if self._connection is None:
            self._connection = await self._engine.connect()
        return await self._connection.run_sync(_read_and_end)

    async def close(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            with contextlib.suppress(Exception):
                await connection.close()
