"""Transactional outbox: events are rows written with the change, handed to the relay on commit."""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar, Protocol, cast

from cloudevents.core.v1.event import CloudEvent
from sqlalchemy import (
    Connection,
    Engine,
    Insert,
    Integer,
    LargeBinary,
    String,
    Table,
    event,
    insert,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, Session, SessionTransaction, mapped_column

from libs.common.clock import utcnow
from libs.common.db import UtcDateTime
from libs.common.events import SignedEvent, nats_subject
from libs.common.statements import Statements, bare, in_loop

# A pending outbox row as the relay reads it: event id, subject, payload, traceparent.
Row = tuple[str, str, bytes, str | None]


class HandsOver(Protocol):
    """What a commit needs of the relay of its outbox table (libs/common/relay.py)."""

    def hand_over(self, row: Row) -> None: ...


class OutboxMixin:
    """Columns of a service's `outbox` table; each service maps it on its own Base."""

    __tablename__: ClassVar[str] = "outbox"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    subject: Mapped[str] = mapped_column(String(200))
    event_type: Mapped[str] = mapped_column(String(200))
    payload: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    published_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True, index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    # The W3C traceparent of the transaction that wrote the event (null when tracing is off):
    # the relay publishes later, from another task, and continues that trace from here.
    traceparent: Mapped[str | None] = mapped_column(String(55), nullable=True)


# Where a session keeps the rows staged in its transaction, then those its commit is writing.
_STAGED = "onbehalf.outbox.staged"
_COMMITTING = "onbehalf.outbox.committing"
# The relay of each (engine, outbox table) in this process that takes committed rows from
# memory (SQLite's one relay per database file; see relay.OutboxRelay.hand_over).
_RELAYS: dict[tuple[Engine, Table], HandsOver] = {}
_INSERTS: dict[Table, Insert] = {}


Staged = list[tuple[Table, dict[str, Any]]]


def outbox_row(model: type[Any], event: SignedEvent) -> tuple[Table, dict[str, Any]]:
    """The outbox table of `model` and the row that holds `event` until it is published."""
    return cast(Table, model.__table__), {
        "id": event.id,
        "subject": nats_subject(event.type),
        "event_type": event.type,
        "payload": event.payload,
        "created_at": utcnow(),
        "published_at": None,
        "attempts": 0,
        "traceparent": event.traceparent,
    }


def add_to_outbox(session: AsyncSession, model: type[Any], event: CloudEvent) -> None:
    """Stage `event` in the caller's transaction; it is published only if that commits.

    The row is written just before the commit, with the transaction's other events, by one
    executemany on the table (no ORM unit of work per event)."""
    session.info.setdefault(_STAGED, []).append(outbox_row(model, SignedEvent.of(event)))


def take_staged(session: AsyncSession) -> Staged:
    """The rows staged on `session` (by `add_to_outbox`), now the caller's to write."""
    staged: Staged = session.info.pop(_STAGED, None) or []
    return staged


def stage_in(session: AsyncSession, staged: Staged) -> None:
    """Stage rows on `session`: its commit writes them and hands them over."""
    if staged:
        session.info.setdefault(_STAGED, []).extend(staged)


def _by_table(staged: Staged) -> dict[Insert, list[dict[str, Any]]]:
    """The staged rows by the INSERT of their table (one executemany each)."""
    by_table: dict[Insert, list[dict[str, Any]]] = {}
    for table, values in staged:
        statement = _INSERTS.get(table)
        if statement is None:
            statement = _INSERTS[table] = insert(table)
        by_table.setdefault(statement, []).append(values)
    return by_table


def write_staged(connection: Connection, staged: Staged) -> None:
    """Insert the staged rows in `connection`'s transaction: one executemany per table (on
    SQLite in a begun transaction on the bare driver, statements.bare)."""
    for statement, rows in _by_table(staged).items():
        if not (connection.in_transaction() and in_loop(connection.dialect)) or (
            bare(connection, statement, rows) is None
        ):
            connection.execute(statement, rows)


async def write_staged_through(statements: Statements, staged: Staged) -> None:
    """Insert the staged rows through `statements` (a connection in its transaction), after
    the writes it holds back, just before the commit: on PostgreSQL all in one statement where
    they combine (libs/common/pg_combined.py), else one executemany per table."""
    await statements.flush(*_by_table(staged).items(), last=True)


def hand_over_committed(engine: Engine, committed: Staged) -> None:
    """Give the relay of this process the rows just committed (it publishes them from memory)."""
    if not _RELAYS:
        return
    for table, values in committed:
        relay = _RELAYS.get((engine, table))
        if relay is not None:
            relay.hand_over(
                (values["id"], values["subject"], values["payload"], values["traceparent"])
            )


@event.listens_for(Session, "before_commit")
def _write_staged(session: Session) -> None:
    staged: Staged | None = session.info.pop(_STAGED, None)
    if not staged:
        return
    write_staged(session.connection(), staged)
    session.info[_COMMITTING] = staged


@event.listens_for(Session, "after_commit")
def _hand_over_committed(session: Session) -> None:
    committing: Staged | None = session.info.pop(_COMMITTING, None)
    if not committing or not _RELAYS:
        return
    bind = session.get_bind()
    hand_over_committed(bind if isinstance(bind, Engine) else bind.engine, committing)


@event.listens_for(Session, "after_soft_rollback")
def _forget_staged(session: Session, previous_transaction: SessionTransaction) -> None:
    # Rolled back (or the commit failed): the rows were never written, or are undone.
    session.info.pop(_STAGED, None)
    session.info.pop(_COMMITTING, None)


def register_relay(engine: Engine, table: Table, relay: HandsOver) -> None:
    """Commits on `engine` that write rows of `table` hand them to `relay` from now on."""
    _RELAYS[(engine, table)] = relay


def unregister_relay(engine: Engine, table: Table, relay: HandsOver) -> None:
    """Undo `register_relay`, unless another relay has taken the place meanwhile."""
    if _RELAYS.get((engine, table)) is relay:
        del _RELAYS[(engine, table)]
