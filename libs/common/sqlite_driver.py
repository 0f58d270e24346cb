"""SQLite for SQLAlchemy's async engine with its statements on the event loop's own thread.

SQLAlchemy's aiosqlite adapter opens a cursor, executes, fetches and closes it as four separate
trips to aiosqlite's connection thread; each trip is a queue hand-off, a thread wake-up and a
wake-up of the event loop, and costs more CPU than a small statement. Reads and writes run on
the loop's thread here (writes behind the engine's write gate, see GatedConnection); the
one-hop cursor (all four on the thread in one trip) remains for `mode="thread"`.
Server-side (streaming) cursors keep SQLAlchemy's own class: nothing here streams.
"""

from __future__ import annotations

import asyncio
import collections
import sqlite3
from collections.abc import Sequence
from typing import Any

import aiosqlite
from sqlalchemy.dialects import registry
from sqlalchemy.dialects.sqlite.aiosqlite import (
    AsyncAdapt_aiosqlite_connection,
    AsyncAdapt_aiosqlite_cursor,
    AsyncAdapt_aiosqlite_dbapi,
    SQLiteDialect_aiosqlite,
)
from sqlalchemy.util import await_
from sqlalchemy.util.concurrency import in_greenlet

_Outcome = tuple[Any, int, int | None, list[Any]]

# How long a writer waits for this process's other writer before "database is locked".
GATE_TIMEOUT_SECONDS = 30.0


def _run(connection: sqlite3.Connection, operation: str, parameters: Any) -> _Outcome:
    """On aiosqlite's thread: the statement, all its rows, and what the cursor knew."""
    cursor = connection.cursor()
    try:
        cursor.execute(operation, () if parameters is None else parameters)
        rows = cursor.fetchall() if cursor.description else []
        return cursor.description, cursor.rowcount, cursor.lastrowid, rows
    finally:
        cursor.close()


def _run_many(connection: sqlite3.Connection, operation: str, parameters: Any) -> _Outcome:
    cursor = connection.cursor()
    try:
        cursor.executemany(operation, parameters)
        return cursor.description, cursor.rowcount, cursor.lastrowid, []
    finally:
        cursor.close()


class OneHopCursor(AsyncAdapt_aiosqlite_cursor):
    """A cursor whose results arrived with the statement: nothing is left open on the thread."""

    __slots__ = ("_outcome_description", "_outcome_lastrowid", "_outcome_rowcount")

    def __init__(self, adapt_connection: Any) -> None:
        # No aiosqlite cursor is opened up front (that was a trip of its own).
        self._adapt_connection = adapt_connection
        self._connection = adapt_connection._connection
        self._cursor = None  # type: ignore[assignment]
        self._soft_closed_memoized = {}  # type: ignore[assignment]
        self._rows = collections.deque()
        self._outcome_description: Any = None
        self._outcome_rowcount = -1
        self._outcome_lastrowid: int | None = None

    @property
    def description(self) -> Any:
        return self._outcome_description

    @property
    def rowcount(self) -> int:
        return self._outcome_rowcount

    @property
    def lastrowid(self) -> int:
        return self._outcome_lastrowid  # type: ignore[return-value]

    @property
    def arraysize(self) -> int:
        return 1

    @arraysize.setter
    def arraysize(self, value: int) -> None:
        pass

    def _keep(self, outcome: _Outcome) -> None:
        description, rowcount, lastrowid, rows = outcome
        self._outcome_description = description
        self._outcome_rowcount = rowcount
        self._outcome_lastrowid = lastrowid
        self._rows = collections.deque(rows)

    async def _execute_async(self, operation: Any, parameters: Any) -> Any:
        async with self._adapt_connection._execute_mutex:
            connection: aiosqlite.Connection = self._connection  # type: ignore[assignment]
            self._keep(await connection._execute(_run, connection._conn, operation, parameters))

    async def _executemany_async(self, operation: Any, seq_of_parameters: Sequence[Any]) -> Any:
        async with self._adapt_connection._execute_mutex:
            connection: aiosqlite.Connection = self._connection  # type: ignore[assignment]
            self._keep(
                await connection._execute(_run_many, connection._conn, operation, seq_of_parameters)
            )

    async def _async_soft_close(self) -> None:
        return None

    def close(self) -> None:
        self._rows.clear()


async def _ready() -> None:
    return None


def _pass_through_the_loop() -> None:
    """A no-op await: SQLAlchemy's AsyncConnection.execute insists that a statement awaited
    something (it guards against sync drivers); this costs two greenlet switches, no hop.
    Called through the synchronous Connection (libs/common/statements.py) there is no
    greenlet, and nothing to satisfy."""
    if in_greenlet():
        await_(_ready())


class InLoopCursor(OneHopCursor):
    """A read connection's cursor: the statement runs right here, on the event loop's thread.

    A read in WAL mode never waits for the writer, and the small reads of a request take tens
    of microseconds in SQLite; the hop to aiosqlite's thread and back (queue hand-off, two
    wake-ups, a future) cost more than the read itself."""

    __slots__ = ()

    def execute(self, operation: Any, parameters: Any = None) -> Any:
        _pass_through_the_loop()
        try:
            self._keep(_run(self._connection._conn, operation, parameters))
        except Exception as error:
            self._adapt_connection._handle_exception(error)

    def executemany(self, operation: Any, seq_of_parameters: Sequence[Any]) -> Any:
        _pass_through_the_loop()
        try:
            self._keep(_run_many(self._connection._conn, operation, seq_of_parameters))
        except Exception as error:
            self._adapt_connection._handle_exception(error)


class GatedCursor(InLoopCursor):
    """A write connection's cursor: on the loop's thread too, but BEGIN first takes the
    engine's write gate, so this process's writers queue on an asyncio lock (the loop keeps
    serving) instead of in SQLite's busy wait (which would block the loop)."""

    __slots__ = ()

    def execute(self, operation: Any, parameters: Any = None) -> Any:
        if isinstance(operation, str) and operation.startswith("BEGIN"):
            connection: GatedConnection = self._adapt_connection  # type: ignore[assignment]
            connection.take_gate()
            try:
                return super().execute(operation, parameters)
            except BaseException:
                connection.leave_gate()
                raise
        return super().execute(operation, parameters)


class OneHopConnection(AsyncAdapt_aiosqlite_connection):
    __slots__ = ()
    _cursor_cls = OneHopCursor


class InLoopConnection(AsyncAdapt_aiosqlite_connection):
    """A read connection: statements, COMMIT and ROLLBACK on the calling thread (the loop's);
    aiosqlite's thread only opens and closes it."""

    __slots__ = ()
    _cursor_cls = InLoopCursor

    def rollback(self) -> None:
        if self._connection._connection:
            try:
                self._connection._conn.rollback()
            except Exception as error:
                self._handle_exception(error)

    def commit(self) -> None:
        if self._connection._connection:
            try:
                self._connection._conn.commit()
            except Exception as error:
                self._handle_exception(error)


class GatedConnection(InLoopConnection):
    """A write connection on the loop's thread that holds its engine's write gate from BEGIN
    until COMMIT, ROLLBACK or close: one writer at a time per process, as SQLite allows."""

    __slots__ = ("_holds_gate",)
    _cursor_cls = GatedCursor

    def __init__(self, dbapi: OneHopDbapi, connection: Any) -> None:
        super().__init__(dbapi, connection)
        self._holds_gate = False

    @property
    def holds_gate(self) -> bool:
        return self._holds_gate

    def hold_gate(self) -> None:
        """The gate was taken for this connection (sqlite_writer.Writer): BEGIN does not take it."""
        self._holds_gate = True

    def take_gate(self) -> None:
        if self._holds_gate:
            return
        gate = self.dbapi.write_gate
        try:
            # Without a bound the writer that never ends would hang every other: the same
            # limit, and the same error, as SQLite's own busy timeout.
            await_(asyncio.wait_for(gate.acquire(), timeout=GATE_TIMEOUT_SECONDS))
        except TimeoutError:
            raise sqlite3.OperationalError("database is locked") from None
        self._holds_gate = True

    def leave_gate(self) -> None:
        if self._holds_gate:
            self._holds_gate = False
            self.dbapi.write_gate.release()

    def rollback(self) -> None:
        try:
            super().rollback()
        finally:
            self.leave_gate()

    def commit(self) -> None:
        try:
            super().commit()
        except BaseException:
            # A failed COMMIT leaves the transaction open; its ROLLBACK ends it and the gate.
            raise
        else:
            self.leave_gate()

    def close(self) -> None:
        try:
            super().close()
        finally:
            self.leave_gate()

    def _terminate_force_close(self) -> None:
        try:
            super()._terminate_force_close()
        finally:
            self.leave_gate()


class OneHopDbapi(AsyncAdapt_aiosqlite_dbapi):
    """aiosqlite as SQLAlchemy's adapter sees it, but connections hand out one-hop cursors,
    or, for reads (`in_loop`), cursors that run on the event loop's own thread."""

    def __init__(self, aiosqlite: Any, sqlite: Any, *, mode: str = "thread") -> None:
        super().__init__(aiosqlite, sqlite)
        self.mode = mode
        # One engine, one gate: its write connections take it from BEGIN to the end.
        self.write_gate = asyncio.Lock()

    def connect(self, *arg: Any, **kw: Any) -> AsyncAdapt_aiosqlite_connection:
        if self.mode == "thread":
            adapted = super().connect(*arg, **kw)
            return OneHopConnection(self, adapted._connection)
        # The connection is made on aiosqlite's thread and then used on the loop's.
        kw["check_same_thread"] = False
        adapted = super().connect(*arg, **kw)
        if self.mode == "write":
            return GatedConnection(self, adapted._connection)
        return InLoopConnection(self, adapted._connection)


def one_hop_dbapi(*, mode: str = "thread") -> OneHopDbapi:
    """`thread`: every statement on aiosqlite's thread, one hop each; `read`: on the loop's
    thread; `write`: on the loop's thread behind the engine's write gate."""
    return OneHopDbapi(aiosqlite, sqlite3, mode=mode)


class InLoopSQLiteDialect(SQLiteDialect_aiosqlite):
    """SQLAlchemy's aiosqlite dialect, issuing the transaction's BEGIN itself: IMMEDIATE on a
    write connection (it takes the write gate, see GatedCursor), deferred on a read one.

    It was a "begin" listener on the engine. Any connection-event listener makes SQLAlchemy
    dispatch every statement's events (before/after execute, cursor execute...) to the empty
    lists of the others, and the listener ran its BEGIN as a full SQLAlchemy statement: about
    a tenth of the CPU of every statement and a statement's worth per transaction."""

    supports_statement_cache = True

    def do_begin(self, dbapi_connection: Any) -> None:
        # SQLAlchemy hands over the pool's proxy; the adapted connection is behind it.
        connection = getattr(dbapi_connection, "dbapi_connection", dbapi_connection)
        cursor = connection.cursor()
        try:
            cursor.execute(
                "BEGIN IMMEDIATE" if isinstance(connection, GatedConnection) else "BEGIN"
            )
        finally:
            cursor.close()


# `sqlite+onbehalf://` (db.create_engine rewrites `sqlite+aiosqlite://` to it).
DRIVER = "onbehalf"
registry.register(f"sqlite.{DRIVER}", __name__, "InLoopSQLiteDialect")
