"""Core statements of the hot paths, run with as little of SQLAlchemy as the driver allows.

SQLAlchemy's asyncio layer runs every statement in a greenlet of its own and hands back an
adapted result; a read opens its connection the same way and returns it in a shielded task.
On SQLite our driver runs statements on the event loop's own thread and never waits in them
(libs/common/sqlite_driver.py), so that machinery only carries a synchronous call across, and
SQLAlchemy's execution context around a small statement costs more than SQLite's work in it
(a one-row read by key: ≈ 135 µs through the bridge, ≈ 37 µs through the synchronous
Connection, ≈ 6 µs on the bare driver; docs/performance.md).

- `Statements`: the connection type the hot paths write their Core statements against. On
  SQLite, in a begun transaction, a plain statement runs on the bare sqlite3 connection
  (`bare`: compiled once, SQLAlchemy's bind and result processors), anything else through the
  synchronous Connection; on PostgreSQL (asyncpg, which does wait for the server) through the
  AsyncConnection.
(libs/common/snapshots.py reads outside any transaction with the same compiled statements;
libs/common/sqlite_writer.py holds the connection a process's units of work write through.)
"""

from __future__ import annotations

import collections
import re
import sqlite3
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from sqlalchemy import (
    Connection,
    CursorResult,
    Delete,
    Dialect,
    Executable,
    Insert,
    Select,
    Update,
)
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection

from libs.common.sqlite_driver import OneHopDbapi

Parameters = Mapping[str, Any] | Sequence[Mapping[str, Any]] | None


def in_loop(dialect: Dialect) -> OneHopDbapi | None:
    """The driver when its statements run on the loop's thread (never for `mode="thread"`)."""
    dbapi = getattr(dialect, "loaded_dbapi", None)
    if isinstance(dbapi, OneHopDbapi) and dbapi.mode != "thread":
        return dbapi
    return None


class HeldWrites(list[tuple[Executable, "Parameters"]]):
    """A unit of work's writes held back for its commit (PostgreSQL); `open` until an ORM
    session joins the transaction, whose own statements would overtake them."""

    __slots__ = ("open",)

    def __init__(self) -> None:
        super().__init__()
        self.open = True


class Statements:
    """A connection in a transaction, for Core statements: `await statements.execute(...)`.

    Direct (synchronous) only inside a transaction already begun: a write connection's BEGIN
    takes the engine's write gate, which is awaited (sqlite_driver.GatedCursor). There, a
    plain SELECT, INSERT, UPDATE or DELETE (nothing for SQLAlchemy to compute: no Python-side
    defaults, no RETURNING; an IN list rendered per length) runs on the bare sqlite3
    connection, compiled once (`CompiledStatement`); anything else through the synchronous Connection.
    On PostgreSQL the same statements, in a begun transaction, run on the asyncpg connection
    (`bare_asyncpg`)."""

    __slots__ = ("_async", "_pending", "_raw", "_sync")

    def __init__(
        self,
        *,
        sync: Connection | None = None,
        async_: AsyncConnection | None = None,
        pending: HeldWrites | None = None,
    ):
        assert (sync is None) != (async_ is None)
        self._sync = sync
        self._async = async_
        self._raw: sqlite3.Connection | None = None
        # PostgreSQL, a unit of work's: the writes held back until the next statement or
        # the commit (`execute_at_commit`), shared by every Statements of that unit of work.
        self._pending = pending

    @classmethod
    def of(cls, connection: AsyncConnection) -> Statements:
        """The statements of an AsyncConnection (a unit of work's, say): direct on SQLite
        once its transaction has begun."""
        sync = connection.sync_connection
        if sync is not None and sync.in_transaction() and in_loop(connection.dialect):
            return cls(sync=sync)
        return cls(async_=connection)

    @property
    def dialect(self) -> Dialect:
        if self._sync is not None:
            return self._sync.dialect
        assert self._async is not None
        return self._async.dialect

    async def execute_at_commit(self, statement: Executable, parameters: Parameters) -> None:
        """A write whose answer (not even its row count) nobody reads: on PostgreSQL, in a
        unit of work, it is held back and sent with the next statement's round trip or the
        commit's, together with the other held-back writes and the outbox rows, as one
        statement (libs/common/pg_combined.py); a failure surfaces there, and rolls the
        whole transaction back as ever. Elsewhere (SQLite has no round trips) it runs now."""
        if self._pending is None or not self._pending.open:
            await self.execute(statement, parameters)
        else:
            self._pending.append((statement, parameters))

    async def flush(self, *writes: tuple[Executable, Parameters], last: bool = False) -> None:
        """Send the held-back writes, then `writes`, as one statement where they combine
        (PostgreSQL), else one by one in their order. `last`: the transaction's last
        statement before COMMIT; if it is also its first, PostgreSQL runs it alone, atomic
        by itself, with no BEGIN and no COMMIT to wait for."""
        todo = [*(self._pending or ()), *writes]
        if self._pending:
            self._pending.clear()
        if not todo:
            return
        if self._async is not None and (len(todo) > 1 or last):
            from libs.common.pg_combined import together  # it builds on this module

            combined = together(todo, self._async.dialect)
            if combined is not None:
                await run_sql_on_asyncpg(self._async, *combined, alone=last)
                return
        for statement, parameters in todo:
            await self._execute(statement, parameters)

    async def execute(self, statement: Executable, parameters: Parameters = None) -> Answer:
        if self._pending:
            # What was held back goes first, in one round trip: this statement may read it.
            await self.flush()
        return await self._execute(statement, parameters)

    async def _execute(self, statement: Executable, parameters: Parameters = None) -> Answer:
        sync = self._sync
        if sync is None:
            assert self._async is not None
            answer = await bare_asyncpg(self._async, statement, parameters)
            if answer is not None:
                return answer
            return await self._async.execute(statement, parameters)
        if sync.in_transaction():
            answer = bare(sync, statement, parameters)
            if answer is not None:
                return answer
        return sync.execute(statement, parameters)


class BareAnswer:
    """A statement's answer on the bare driver: the part of SQLAlchemy's CursorResult the hot
    paths use (rows as named tuples, after the columns' result processors)."""

    __slots__ = ("_rows", "rowcount")

    def __init__(self, rows: list[Any], rowcount: int) -> None:
        self._rows = rows
        self.rowcount = rowcount

    def all(self) -> list[Any]:
        return self._rows

    def first(self) -> Any:
        return self._rows[0] if self._rows else None

    def scalar(self) -> Any:
        return self._rows[0][0] if self._rows else None

    def scalars(self) -> BareScalars:
        return BareScalars([row[0] for row in self._rows])


class BareScalars:
    __slots__ = ("_values",)

    def __init__(self, values: list[Any]) -> None:
        self._values = values

    def all(self) -> list[Any]:
        return self._values

    def first(self) -> Any:
        return self._values[0] if self._values else None


Answer = CursorResult[Any] | BareAnswer

# Per statement object (module-level constants on the hot paths) and the keys of its
# parameters (an INSERT's columns follow them): its compiled form, or None where SQLAlchemy
# has work to do at execution. The statement is kept beside it, so its id stays its own.
_BARE: dict[
    tuple[int, type[Dialect], tuple[str, ...]], tuple[Executable, CompiledStatement | None]
] = {}
_BARE_LIMIT = 512


def compiled_for(
    statement: Executable, dialect: Dialect, keys: tuple[str, ...]
) -> CompiledStatement | None:
    key = (id(statement), type(dialect), keys)
    found = _BARE.get(key)
    if found is not None:
        return found[1]
    if len(_BARE) >= _BARE_LIMIT:
        # Statements built per call filled it: SQLAlchemy's own compiled cache serves those.
        return None
    compiled: CompiledStatement | None = None
    if isinstance(statement, Select | Insert | Update | Delete):
        try:
            compiled = CompiledStatement(statement, dialect, keys)
        except _NotBare:
            compiled = None
    _BARE[key] = (statement, compiled)
    return compiled


def parameter_shape(
    parameters: Parameters,
) -> tuple[Mapping[str, Any], Sequence[Mapping[str, Any]] | None] | None:
    """(the parameters of one execution, the batch of an executemany or None), or None where
    SQLAlchemy is to handle them: an empty batch, or rows of different columns (it tells
    what is missing)."""
    if parameters is None:
        return {}, None
    if isinstance(parameters, Mapping):
        return parameters, None
    if not parameters:
        return None
    keys = parameters[0].keys()
    if any(each.keys() != keys for each in parameters):
        return None
    return parameters[0], parameters


def _prepared(
    statement: Executable, dialect: Dialect, parameters: Parameters
) -> tuple[CompiledStatement, str, Any, bool] | None:
    """The statement's driver SQL and arguments (a list of them for a batch, then True), or
    None when SQLAlchemy must render it: a parameter shape it does not know, a statement it
    does not compile, an IN list per row of a batch or an empty one."""
    shape = parameter_shape(parameters)
    if shape is None:
        return None
    one, batch = shape
    compiled = compiled_for(statement, dialect, tuple(one))
    if compiled is None:
        return None
    if batch is not None:
        if compiled.expanding:
            return None
        return compiled, compiled.sql, [compiled.parameters(each) for each in batch], True
    if compiled.expanding:
        expanded = compiled.expanded(one)
        if expanded is None:
            return None
        return compiled, expanded[0], expanded[1], False
    return compiled, compiled.sql, compiled.parameters(one), False


def bare(connection: Connection, statement: Executable, parameters: Parameters) -> Answer | None:
    """`statement` run on the sqlite3 connection under `connection` (in a transaction, on the
    loop's thread), or None when it needs SQLAlchemy's execution."""
    prepared = _prepared(statement, connection.dialect, parameters)
    if prepared is None:
        return None
    compiled, sql, arguments, batch = prepared
    raw = _raw_of(connection)
    try:
        cursor = raw.executemany(sql, arguments) if batch else raw.execute(sql, arguments)
        try:
            rows = compiled.rows(cursor.fetchall()) if compiled.returns_rows else []
            return BareAnswer(rows, cursor.rowcount)
        finally:
            cursor.close()
    except sqlite3.Error as error:
        raise DBAPIError.instance(sql, arguments, error, sqlite3.Error) from error


async def bare_asyncpg(
    connection: AsyncConnection, statement: Executable, parameters: Parameters
) -> Answer | None:
    """`statement` run on the asyncpg connection under `connection` (PostgreSQL, in a begun
    transaction), as SQLAlchemy's asyncpg adapter would run it (its lock, its transaction
    start, its prepared-statement cache, its error translation), without the greenlet and
    the execution context around it; None when it needs SQLAlchemy's execution."""
    dialect = connection.dialect
    sync = connection.sync_connection
    if dialect.driver != "asyncpg" or sync is None or not sync.in_transaction():
        return None
    return await run_on_asyncpg(sync.connection.dbapi_connection, dialect, statement, parameters)


async def run_on_asyncpg(
    adapted: Any, dialect: Dialect, statement: Executable, parameters: Parameters
) -> Answer | None:
    """`statement` on SQLAlchemy's adapted asyncpg connection (in its transaction, begun
    here if need be; in autocommit, none), or None when it needs SQLAlchemy's execution."""
    if dialect.driver != "asyncpg":
        return None
    prepared = _prepared(statement, dialect, parameters)
    if prepared is None:
        return None
    compiled, sql, arguments, batch = prepared
    if batch:
        await _on_asyncpg(adapted, dialect, sql, arguments, many=True)
        return BareAnswer([], -1)
    raw, status, attributes = await _on_asyncpg(adapted, dialect, sql, arguments)
    counted = _ROWCOUNT.match(status)
    rowcount = int(counted.group(1)) if counted else -1
    if not compiled.returns_rows:
        return BareAnswer([], rowcount)
    types = tuple(attribute.type.oid for attribute in attributes)
    return BareAnswer(compiled.rows(raw, types), rowcount)


async def run_sql_on_asyncpg(
    connection: AsyncConnection, sql: str, arguments: Sequence[Any], *, alone: bool = False
) -> None:
    """`sql` (asyncpg's `$n` placeholders) for its effect, in `connection`'s transaction, the
    way run_on_asyncpg runs a compiled statement (libs/common/pg_combined.py builds it).
    `alone`: where nothing of the transaction has reached the server yet, the statement is
    sent without a BEGIN (and the commit then has nothing to end)."""
    sync = connection.sync_connection
    assert sync is not None and sync.in_transaction()
    await _on_asyncpg(
        sync.connection.dbapi_connection, connection.dialect, sql, arguments, begin=not alone
    )


async def _on_asyncpg(
    adapted: Any,
    dialect: Dialect,
    sql: str,
    arguments: Sequence[Any],
    *,
    many: bool = False,
    begin: bool = True,
) -> tuple[Sequence[Any], str, Any]:
    """Run `sql` on SQLAlchemy's adapted asyncpg connection as its adapter would: under its
    lock, in its transaction (begun here if need be; in autocommit, none), through its
    prepared-statement cache (`many`: an executemany of `arguments`' rows), its errors
    raised as SQLAlchemy's. Returns the rows, the status message and the columns."""
    # When SQLAlchemy last saw the schema change (its prepared statements are older then).
    schema_asof = dialect._invalidate_schema_cache_asof  # type: ignore[attr-defined]
    try:
        async with adapted._execute_mutex:
            if many:
                await adapted._check_type_cache_invalidation(schema_asof)
            if adapted._transaction is None and begin:
                await adapted._start_transaction()
            try:
                if many:
                    await adapted._connection.executemany(sql, arguments)
                    return [], "", None
                prepared, attributes = await adapted._prepare(sql, schema_asof)
                raw = await prepared.fetch(*arguments)
                return raw, prepared.get_statusmsg() or "", attributes
            except Exception as error:
                adapted._handle_exception(error)  # raises it as the DB-API error it is
                raise
    except dialect.loaded_dbapi.Error as error:
        raise DBAPIError.instance(
            sql,
            arguments,
            error,
            dialect.loaded_dbapi.Error,
            connection_invalidated=dialect.is_disconnect(error, adapted, None),
        ) from error


# What asyncpg's status message says was done, as SQLAlchemy's adapter reads its rowcount.
_ROWCOUNT = re.compile(r"(?:SELECT|UPDATE|DELETE|INSERT \d+) (\d+)")


def _raw_of(connection: Connection) -> sqlite3.Connection:
    adapted = connection.connection.dbapi_connection
    return adapted._connection._conn  # type: ignore[union-attr]


def _expanding(compiled: Any) -> int:
    """How many of the positional parameters are IN lists (no `?` of their own)."""
    return sum(1 for name in compiled.positiontup if compiled.binds[name].expanding)


def _placeholders_match(compiled: Any, dialect: Dialect) -> bool:
    """Whether the SQL holds one placeholder per positional parameter, in the forms the bare
    paths fill: sqlite3's `?`, asyncpg's `$n` (an IN list has none of its own in either, and
    no parameter is rendered into the SQL as a literal)."""
    if any(bind.literal_execute for bind in compiled.binds.values()):
        return False
    plain = len(compiled.positiontup) - _expanding(compiled)
    if dialect.paramstyle == "qmark":
        return bool(compiled.string.count("?") == plain)
    if dialect.paramstyle == "numeric_dollar":
        numbers = {int(n) for n in re.findall(r"\$(\d+)", compiled.string)}
        return numbers == set(range(1, plain + 1))
    return False


class _NotBare(Exception):
    """The statement needs SQLAlchemy at execution (Python-side defaults, RETURNING...)."""


class CompiledStatement:
    """A statement as the bare driver runs it: its SQL, its parameters in order with their
    bind processors and defaults, and for a SELECT each column's result processor and name."""

    __slots__ = (
        "_by_lengths",
        "_by_types",
        "_postcompile",
        "_process_of",
        "binds",
        "defaults",
        "dialect",
        "expanding",
        "processors",
        "returns_rows",
        "row",
        "sql",
        "types",
    )

    def __init__(
        self,
        statement: Select[Any] | Insert | Update | Delete,
        dialect: Dialect,
        keys: Sequence[str] = (),
    ) -> None:
        compiled = statement.compile(dialect=dialect, column_keys=list(keys) or None)
        if (
            compiled.positiontup is None
            or not _placeholders_match(compiled, dialect)
            or getattr(compiled, "insert_prefetch", None)
            or getattr(compiled, "update_prefetch", None)
            # An UPDATE's postfetch columns (set to SQL expressions) only tell the ORM what to
            # expire; an INSERT's may be keys or server defaults SQLAlchemy reads back.
            or (getattr(compiled, "postfetch", None) and not isinstance(statement, Update))
            or getattr(compiled, "effective_returning", None)
        ):
            raise _NotBare(str(statement))
        self.sql = compiled.string
        # IN lists (`column.in_(bindparam(..., expanding=True))`): rendered per length.
        self.expanding = frozenset(n for n, b in compiled.binds.items() if b.expanding)
        # Per the lengths of its IN lists: the SQL and where each argument comes from.
        self._by_lengths: dict[tuple[int, ...], tuple[str, list[tuple[str, int | None]]]] = {}
        # asyncpg numbers an IN list's placeholders after all the others, with a cast each:
        # SQLAlchemy renders those (its own step before every such execution).
        self._postcompile = compiled if self.expanding and dialect.paramstyle != "qmark" else None
        self.defaults = dict(compiled.params)
        self.binds: list[tuple[str, Callable[[Any], Any] | None]] = [
            (name, compiled.binds[name].type.dialect_impl(dialect).bind_processor(dialect))
            for name in compiled.positiontup
        ]
        self._process_of = dict(self.binds)
        self.returns_rows = isinstance(statement, Select)
        self.processors: list[Callable[[Any], Any] | None] = []
        self.row: Any = None
        self.dialect = dialect
        self.types: list[Any] = []
        self._by_types: dict[tuple[Any, ...], list[Callable[[Any], Any] | None]] = {}
        if isinstance(statement, Select):
            columns = list(statement.selected_columns)
            names = [column.key for column in columns]
            if not all(names) or len(set(names)) != len(names):
                raise _NotBare("a bare read names each of its columns once")
            self.types = [column.type.dialect_impl(dialect) for column in columns]
            # sqlite3 names no column types; asyncpg does, and PostgreSQL's processors depend
            # on them (`rows(raw, types)`).
            if dialect.paramstyle == "qmark":
                self.processors = [kind.result_processor(dialect, None) for kind in self.types]
            self.row = collections.namedtuple("BareRow", names)  # type: ignore[misc, arg-type]

    def parameters(self, given: Mapping[str, Any]) -> tuple[Any, ...]:
        # Run for every hot statement: no merged copy where the statement has no defaults,
        # and a list built in place rather than a generator (a frame resumed per value).
        values = {**self.defaults, **given} if self.defaults else given
        return tuple(
            [
                values[name] if process is None else process(values[name])
                for name, process in self.binds
            ]
        )

    def expanded(self, given: Mapping[str, Any]) -> tuple[str, list[Any]] | None:
        """The SQL with each IN list's placeholders and the arguments in order, or None for
        an empty list (SQLAlchemy renders an always-false expression in its place)."""
        values = {**self.defaults, **given}
        lengths: dict[str, int] = {}
        for name in self.expanding:
            value = values[name]
            if isinstance(value, str | bytes) or not isinstance(value, Sequence) or not value:
                return None
            lengths[name] = len(value)
        key = tuple(lengths[name] for name in sorted(lengths))
        form = self._by_lengths.get(key)
        if form is None:
            form = self._form(values, lengths)
            if len(self._by_lengths) < 64:  # the batch sizes seen; beyond, rendered per call
                self._by_lengths[key] = form
        sql, order = form
        processes = self._process_of
        arguments = []
        for name, index in order:
            value = values[name] if index is None else values[name][index]
            process = processes[name]
            arguments.append(value if process is None else process(value))
        return sql, arguments

    def _form(
        self, values: Mapping[str, Any], lengths: Mapping[str, int]
    ) -> tuple[str, list[tuple[str, int | None]]]:
        """The SQL for IN lists of `lengths`, and each argument's (parameter, index in its
        list or None)."""
        if self._postcompile is None:  # sqlite3: `?` in place, arguments in the SQL's order
            sql = self.sql
            for name, length in lengths.items():
                sql = sql.replace(f"__[POSTCOMPILE_{name}]", ", ".join("?" * length))
            order: list[tuple[str, int | None]] = []
            for name, _process in self.binds:
                if name in self.expanding:
                    order += [(name, index) for index in range(lengths[name])]
                else:
                    order.append((name, None))
            return sql, order
        state = self._postcompile._process_parameters_for_postcompile(
            {name: values[name] for name, _process in self.binds}
        )
        origin: dict[str, tuple[str, int | None]] = {
            expanded: (name, index)
            for name, names in state.parameter_expansion.items()
            for index, expanded in enumerate(names)
        }
        assert state.positiontup is not None
        return state.statement, [origin.get(name, (name, None)) for name in state.positiontup]

    def _processors_for(self, types: tuple[Any, ...]) -> list[Callable[[Any], Any] | None]:
        found = self._by_types.get(types)
        if found is None:
            found = self._by_types[types] = [
                kind.result_processor(self.dialect, code)
                for kind, code in zip(self.types, types, strict=True)
            ]
        return found

    def rows(self, raw: Sequence[Any], types: tuple[Any, ...] | None = None) -> list[Any]:
        """The rows as SQLAlchemy would give them; `types`: the driver's type code of each
        column (its cursor description's), where the result processors depend on them."""
        processors = self.processors if types is None else self._processors_for(types)
        make = self.row._make
        if not any(processors):
            return [make(row) for row in raw]
        return [
            make(
                [
                    value if process is None else process(value)
                    for process, value in zip(processors, row, strict=True)
                ]
            )
            for row in raw
        ]
