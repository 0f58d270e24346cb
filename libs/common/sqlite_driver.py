"""SQLite for SQLAlchemy's async engine in one thread hop per statement instead of four.

SQLAlchemy's aiosqlite adapter opens a cursor, executes, fetches and closes it as four separate
trips to aiosqlite's connection thread; each trip is a queue hand-off, a thread wake-up and a
wake-up of the event loop. Profiles of the order path put those trips at about a third of each
service's event-loop time. Here one function runs on that thread and does all four, and the
adapter keeps the rows, the description, the row count and the last row id it brought back.
Server-side (streaming) cursors keep SQLAlchemy's own class: nothing here streams.
"""

from __future__ import annotations

import collections
import sqlite3
from collections.abc import Sequence
from typing import Any

import aiosqlite
from sqlalchemy.dialects.sqlite.aiosqlite import (
    AsyncAdapt_aiosqlite_connection,
    AsyncAdapt_aiosqlite_cursor,
    AsyncAdapt_aiosqlite_dbapi,
)

_Outcome = tuple[Any, int, int | None, list[Any]]


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


class InLoopCursor(OneHopCursor):
    """A read connection's cursor: the statement runs right here, on the event loop's thread.

    A read in WAL mode never waits for the writer, and the small reads of a request take tens
    of microseconds in SQLite; the hop to aiosqlite's thread and back (queue hand-off, two
    wake-ups, a future) cost more than the read itself."""

    __slots__ = ()

    def execute(self, operation: Any, parameters: Any = None) -> Any:
        try:
            self._keep(_run(self._connection._conn, operation, parameters))
        except Exception as error:
            self._adapt_connection._handle_exception(error)

    def executemany(self, operation: Any, seq_of_parameters: Sequence[Any]) -> Any:
        try:
            self._keep(_run_many(self._connection._conn, operation, seq_of_parameters))
        except Exception as error:
            self._adapt_connection._handle_exception(error)


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


class OneHopDbapi(AsyncAdapt_aiosqlite_dbapi):
    """aiosqlite as SQLAlchemy's adapter sees it, but connections hand out one-hop cursors,
    or, for reads (`in_loop`), cursors that run on the event loop's own thread."""

    def __init__(self, aiosqlite: Any, sqlite: Any, *, in_loop: bool = False) -> None:
        super().__init__(aiosqlite, sqlite)
        self.in_loop = in_loop

    def connect(self, *arg: Any, **kw: Any) -> OneHopConnection | InLoopConnection:
        if self.in_loop:
            # The connection is made on aiosqlite's thread and then used on the loop's.
            kw["check_same_thread"] = False
            adapted = super().connect(*arg, **kw)
            return InLoopConnection(self, adapted._connection)
        adapted = super().connect(*arg, **kw)
        return OneHopConnection(self, adapted._connection)


def one_hop_dbapi(*, in_loop: bool = False) -> OneHopDbapi:
    return OneHopDbapi(aiosqlite, sqlite3, in_loop=in_loop)
