"""On SQLite, the one connection a process's units of work write through (runtime.UnitOfWork)."""

from __future__ import annotations

import asyncio
import sqlite3
from typing import cast

from sqlalchemy import Connection
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.util import greenlet_spawn

from libs.common.sqlite_driver import GATE_TIMEOUT_SECONDS, GatedConnection
from libs.common.statements import in_loop


class Writer:
    """The connection a process's units of work write through on SQLite, kept open.

    SQLite has one writer at a time, and this process's writers already queue on the engine's
    write gate (an asyncio lock, sqlite_driver), so one connection serves them all. A unit of
    work takes the gate, then begins on this connection, which it finds checked out: no pool
    check-out and return, no greenlet for BEGIN, COMMIT or ROLLBACK (all on the loop's thread,
    nothing awaited), which were most of a small write transaction's cost (docs/performance.md).
    A connection that broke is replaced at the next begin."""

    def __init__(self, engine: AsyncEngine) -> None:
        dbapi = in_loop(engine.dialect)
        if dbapi is None or dbapi.mode != "write":
            raise ValueError("a Writer needs a SQLite write engine with statements in the loop")
        self.engine = engine
        self._gate = dbapi.write_gate
        self._connection: Connection | None = None

    async def begin(self) -> Connection:
        """The connection in a new transaction (BEGIN IMMEDIATE), holding the write gate until
        its commit or rollback."""
        try:
            await asyncio.wait_for(self._gate.acquire(), timeout=GATE_TIMEOUT_SECONDS)
        except TimeoutError:
            error = sqlite3.OperationalError("database is locked")
            raise DBAPIError.instance("BEGIN IMMEDIATE", None, error, sqlite3.Error) from None
        adapted: GatedConnection | None = None
        try:
            connection = self._connection
            if connection is None or connection.invalidated or connection.closed:
                self._connection = None
                connection = await greenlet_spawn(self.engine.sync_engine.connect)
                self._connection = connection
            if connection.in_transaction():
                # Left begun by a BEGIN that failed half-way: end it before beginning anew.
                connection.rollback()
            adapted = cast(GatedConnection, connection.connection.dbapi_connection)
            adapted.hold_gate()  # from here on the connection leaves the gate
            connection.begin()
        except BaseException:
            if adapted is None:
                self._gate.release()
            elif adapted.holds_gate:
                adapted.leave_gate()
            raise
        return connection

    def end(self, connection: Connection, *, commit: bool) -> None:
        """Commit or roll back the transaction `begin` started; the gate is left either way
        (a failed COMMIT is rolled back first)."""
        try:
            if commit:
                connection.commit()
        except BaseException:
            self._roll_back(connection)
            raise
        if not commit:
            self._roll_back(connection)

    def _roll_back(self, connection: Connection) -> None:
        try:
            if connection.in_transaction():
                connection.rollback()
        finally:
            adapted = connection.connection.dbapi_connection if not connection.closed else None
            if isinstance(adapted, GatedConnection) and adapted.holds_gate:
                adapted.leave_gate()

    async def close(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None and not connection.closed:
            await greenlet_spawn(connection.close)
