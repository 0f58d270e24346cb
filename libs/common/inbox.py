"""Idempotent consumption: remember which events a service has already handled."""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar

from sqlalchemy import Insert, String, Table, bindparam
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Mapped, mapped_column

from libs.common.clock import utcnow
from libs.common.db import UtcDateTime
from libs.common.statements import Statements


class InboxMixin:
    """Columns of a service's `inbox` table: one row per event id it has handled."""

    __tablename__: ClassVar[str] = "inbox"

    event_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    handled_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)


# One statement per inbox table and dialect, built once (consumers run it for every event).
_RECORDS: dict[tuple[Table, str], Insert] = {}


def _record(table: Table, dialect_name: str) -> Insert:
    statement = _RECORDS.get((table, dialect_name))
    if statement is None:
        dialect = postgresql if dialect_name == "postgresql" else sqlite
        statement = (
            dialect.insert(table)
            .values(event_id=bindparam("event_id"), handled_at=bindparam("handled_at"))
            .on_conflict_do_nothing(index_elements=["event_id"])
        )
        _RECORDS[(table, dialect_name)] = statement
    return statement


async def first_delivery(connection: Statements, model: type[Any], event_id: str) -> bool:
    """True the first time `event_id` is seen; records it in the caller's transaction
    (`connection`: its unit of work's, `await uow.statements()`).

    One INSERT .. ON CONFLICT DO NOTHING: a second delivery inserts nothing, and on
    PostgreSQL one racing with the first waits for it and then inserts nothing either."""
    result = await connection.execute(
        _record(model.__table__, connection.dialect.name),
        {"event_id": event_id, "handled_at": utcnow()},
    )
    return result.rowcount == 1
