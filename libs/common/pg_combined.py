"""Several writes of a PostgreSQL transaction sent as one statement (data-modifying WITH).

On PostgreSQL every statement is a round trip: the client's protocol work, a wake-up of the
server's backend and of the client. A unit of work's last writes (a cart's row and its new
line, an order and its lines) and its outbox rows are not read back before COMMIT, so they
can travel together: `WITH w0 AS (INSERT ...), w1 AS (UPDATE ...) INSERT INTO outbox ...` is
one statement, atomic like the rest of the transaction, and PostgreSQL checks its foreign keys
at the statement's end, so a line may go with the row it belongs to. A batch of rows for one
INSERT becomes `INSERT ... SELECT * FROM unnest($1::T[], ...)`, one array per column, so the
statement's text (and its prepared form on the connection) does not change with the number of
rows. Each part is the statement SQLAlchemy compiles for the bare asyncpg path
(statements.CompiledStatement: the same SQL, casts and bind processing); only its placeholders
are renumbered. Writes that cannot be combined (a batch of UPDATEs, an IN list, anything that
needs SQLAlchemy at execution, an UPDATE or DELETE of a table another part writes: the parts
share one snapshot) return None, and the caller runs them one by one.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import Dialect, Executable, Insert, Table

from libs.common import statements as _statements

# A write held back: a Core statement and its parameters (one row, or a batch).
Write = tuple[Executable, _statements.Parameters]

_PLACEHOLDER = re.compile(r"\$(\d+)")

# The combined SQL per shape (each part's statement, its keys, and whether it is a batch):
# the shapes of a service's units of work are few, so their text is built once.
_SQL: dict[tuple[Any, ...], tuple[str, tuple[Any, ...]] | None] = {}
_SQL_LIMIT = 256


def together(writes: Sequence[Write], dialect: Dialect) -> tuple[str, list[Any]] | None:
    """One statement doing `writes` in their order, and its arguments; None if one of them
    cannot be part of it."""
    shapes: list[tuple[Executable, tuple[str, ...], bool]] = []
    batches: list[tuple[Mapping[str, Any], Sequence[Mapping[str, Any]] | None]] = []
    for statement, parameters in writes:
        shape = _statements.parameter_shape(parameters)
        if shape is None:
            return None
        one, batch = shape
        if batch is not None and len(batch) == 1:
            one, batch = batch[0], None
        shapes.append((statement, tuple(one), batch is not None))
        batches.append((one, batch))
    key = tuple((id(statement), keys, many) for statement, keys, many in shapes)
    built = _SQL.get(key)
    if built is None:
        built = _build(shapes, dialect)
        if len(_SQL) < _SQL_LIMIT:
            # Keyed by the statements' ids: statements.compiled_for keeps every statement it
            # compiled (and answers None once full, which is never combined), so an id here
            # cannot come to name another statement.
            _SQL[key] = built
    if built is None:
        return None
    sql, compiled_parts = built
    arguments: list[Any] = []
    for compiled, (one, batch) in zip(compiled_parts, batches, strict=True):
        if batch is None:
            arguments += compiled.parameters(one)
        else:
            rows = [compiled.parameters(each) for each in batch]
            arguments += [list(column) for column in zip(*rows, strict=True)]
    return sql, arguments


def _build(
    shapes: Sequence[tuple[Executable, tuple[str, ...], bool]], dialect: Dialect
) -> tuple[str, tuple[Any, ...]] | None:
    # The parts of one statement share its snapshot: an UPDATE or DELETE would not see what
    # another part wrote to its table, so a table changed by one may not be touched by
    # another (INSERTs into the same table may go together).
    tables = [getattr(statement, "table", None) for statement, _keys, _many in shapes]
    for (statement, _keys, _many), table in zip(shapes, tables, strict=True):
        if not isinstance(statement, Insert) and tables.count(table) > 1:
            return None
    parts: list[str] = []
    compiled_parts: list[Any] = []
    offset = 0
    for statement, keys, many in shapes:
        compiled = _statements.compiled_for(statement, dialect, keys)
        if compiled is None or compiled.expanding or compiled.returns_rows:
            return None
        if many:
            if not isinstance(statement, Insert) or not isinstance(statement.table, Table):
                return None
            sql = _unnest_insert(statement.table, [name for name, _ in compiled.binds], dialect)
            if sql is None:
                return None
        else:
            sql = compiled.sql
        parts.append(_renumbered(sql, offset))
        compiled_parts.append(compiled)
        offset += len(compiled.binds)
    if len(parts) == 1:
        return parts[0], tuple(compiled_parts)
    head = ", ".join(f"w{index} AS ({part})" for index, part in enumerate(parts[:-1]))
    return f"WITH {head} {parts[-1]}", tuple(compiled_parts)


def _renumbered(sql: str, offset: int) -> str:
    """`sql` with each `$n` placeholder moved on by `offset` (the parts before it)."""
    if not offset:
        return sql
    return _PLACEHOLDER.sub(lambda found: f"${int(found.group(1)) + offset}", sql)


def _unnest_insert(table: Table, names: Sequence[str], dialect: Dialect) -> str | None:
    """`INSERT INTO table (columns) SELECT * FROM unnest($1::T1[], ...)` for the columns the
    batch gives (the INSERT's binds are named after their columns' keys)."""
    if not names or any(name not in table.c for name in names):
        return None
    quote = dialect.identifier_preparer
    columns = [table.c[name] for name in names]
    arrays = ", ".join(
        f"${index}::{column.type.compile(dialect=dialect)}[]"
        for index, column in enumerate(columns, start=1)
    )
    listed = ", ".join(quote.quote(column.name) for column in columns)
    return f"INSERT INTO {quote.format_table(table)} ({listed}) SELECT * FROM unnest({arrays})"
