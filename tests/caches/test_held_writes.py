"""Writes held back for the commit (Statements.execute_at_commit): on PostgreSQL they go with the
outbox rows in one statement (libs/common/pg_combined.py), on SQLite they run at once; either
way they commit exactly as written, with their events, or not at all, and a later statement of
the same unit of work sees them."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, cast

import pytest
from sqlalchemy import (
    DateTime,
    ForeignKey,
    Integer,
    Numeric,
    String,
    Table,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.dialects.postgresql.asyncpg import dialect as asyncpg_dialect
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from devtools.postgres import PostgresServer
from libs.common.db import is_sqlite
from libs.common.pg_combined import together
from libs.common.runtime import ServiceRuntime
from libs.contracts.catalog import ProductCreated
from tests.caches.test_unit_of_work import service_runtime
from tests.support import unique
from tests.support.events import STAFF_CONTEXT


class _Base(DeclarativeBase):
    pass


class _Basket(_Base):
    __tablename__ = "baskets"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    note: Mapped[str | None] = mapped_column(String(50), nullable=True)
    total: Mapped[Decimal] = mapped_column(Numeric(12, 2))
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class _BasketLine(_Base):
    __tablename__ = "basket_lines"

    basket_id: Mapped[str] = mapped_column(ForeignKey("baskets.id"), primary_key=True)
    sku: Mapped[str] = mapped_column(String(20), primary_key=True)
    quantity: Mapped[int] = mapped_column(Integer)
    price: Mapped[Decimal | None] = mapped_column(Numeric(12, 2), nullable=True)


BASKETS = cast(Table, _Basket.__table__)
LINES = cast(Table, _BasketLine.__table__)
INSERT_BASKET = insert(BASKETS)
INSERT_LINES = insert(LINES)
SET_NOTE = update(BASKETS).where(BASKETS.c.id == "b-1").values(note="changed")
AT = datetime(2026, 12, 5, 1, 2, 3, 456789, tzinfo=UTC)


def _basket(basket_id: str) -> dict[str, Any]:
    return {"id": basket_id, "note": None, "total": Decimal("12.34"), "at": AT}


def _lines(basket_id: str) -> list[dict[str, Any]]:
    return [
        {"basket_id": basket_id, "sku": "A", "quantity": 1, "price": Decimal("0.10")},
        {"basket_id": basket_id, "sku": "B", "quantity": 22, "price": None},
        {"basket_id": basket_id, "sku": "C", "quantity": 333, "price": Decimal("9999999999.99")},
    ]


def _event() -> ProductCreated:
    return ProductCreated(sku="X", name="X", price=Decimal("1.00"), currency="EUR")


async def _stored(runtime: ServiceRuntime) -> tuple[list[Any], list[Any], int]:
    """(baskets, lines, outbox rows), read apart from any unit of work."""
    async with runtime.reading() as session:
        baskets = list((await session.execute(select(BASKETS).order_by(BASKETS.c.id))).all())
        lines = list((await session.execute(select(LINES).order_by(LINES.c.sku))).all())
        outbox = await session.scalar(select(func.count()).select_from(runtime.outbox_model))
    return baskets, lines, int(outbox or 0)


async def test_held_writes_commit_exactly_as_written_with_their_event(
    database_url: str, tmp_path: Path
) -> None:
    async with service_runtime(database_url, tmp_path, _Base.metadata) as runtime:
        async with runtime.unit_of_work() as uow:
            written = await uow.statements()
            # The line rows need their basket: in one statement, checked at its end.
            await written.execute_at_commit(INSERT_BASKET, _basket("b-1"))
            await written.execute_at_commit(INSERT_LINES, _lines("b-1"))
            uow.publish(_event(), STAFF_CONTEXT)
            if not is_sqlite(database_url):
                assert await _stored(runtime) == ([], [], 0)  # nothing sent before the commit
        baskets, lines, outbox = await _stored(runtime)
    # SQLite keeps no zone: what was written in UTC comes back naive.
    assert [(*row[:3], row.at.replace(tzinfo=UTC)) for row in baskets] == [
        ("b-1", None, Decimal("12.34"), AT)
    ]
    assert [tuple(row) for row in lines] == [
        ("b-1", "A", 1, Decimal("0.10")),
        ("b-1", "B", 22, None),
        ("b-1", "C", 333, Decimal("9999999999.99")),
    ]
    assert outbox == 1


async def test_a_statement_after_held_writes_sees_them(database_url: str, tmp_path: Path) -> None:
    async with (
        service_runtime(database_url, tmp_path, _Base.metadata) as runtime,
        runtime.unit_of_work() as uow,
    ):
        written = await uow.statements()
        await written.execute_at_commit(INSERT_BASKET, _basket("b-1"))
        await written.execute_at_commit(INSERT_LINES, _lines("b-1"))
        counted = await written.execute(select(func.count()).select_from(LINES))
        assert counted.scalar() == 3


async def test_a_held_write_that_fails_rolls_everything_back(
    database_url: str, tmp_path: Path
) -> None:
    async with service_runtime(database_url, tmp_path, _Base.metadata) as runtime:
        async with runtime.unit_of_work() as uow:
            await (await uow.statements()).execute(INSERT_BASKET, _basket("b-1"))
        with pytest.raises(IntegrityError):
            async with runtime.unit_of_work() as uow:
                written = await uow.statements()
                await written.execute_at_commit(INSERT_BASKET, _basket("b-2"))
                await written.execute_at_commit(INSERT_LINES, _lines("b-2"))
                await written.execute_at_commit(INSERT_BASKET, _basket("b-1"))  # taken
                uow.publish(_event(), STAFF_CONTEXT)
        baskets, lines, outbox = await _stored(runtime)
    assert [row.id for row in baskets] == ["b-1"]
    assert lines == [] and outbox == 0


async def test_an_update_of_a_row_written_in_the_same_unit_of_work_is_not_lost(
    database_url: str, tmp_path: Path
) -> None:
    """One statement's parts share its snapshot: an UPDATE there would not find the row its
    neighbour inserts, so such writes go one by one."""
    async with service_runtime(database_url, tmp_path, _Base.metadata) as runtime:
        async with runtime.unit_of_work() as uow:
            written = await uow.statements()
            await written.execute_at_commit(INSERT_BASKET, _basket("b-1"))
            await written.execute_at_commit(SET_NOTE, None)
            uow.publish(_event(), STAFF_CONTEXT)
        baskets, _lines_stored, outbox = await _stored(runtime)
    assert [(row.id, row.note) for row in baskets] == [("b-1", "changed")]
    assert outbox == 1


@pytest.mark.postgres
async def test_an_orm_session_comes_before_held_writes_or_turns_holding_off(
    postgres: PostgresServer, tmp_path: Path
) -> None:
    url = postgres.create_database(unique("held").replace("-", "_"))
    async with service_runtime(url, tmp_path, _Base.metadata) as runtime:
        with pytest.raises(RuntimeError, match="held back"):
            async with runtime.unit_of_work() as uow:
                written = await uow.statements()
                await written.execute_at_commit(INSERT_BASKET, _basket("b-1"))
                uow.session  # noqa: B018  # its queries would not see the basket
        async with runtime.unit_of_work() as uow:
            written = await uow.statements()
            session = uow.session
            await written.execute_at_commit(INSERT_BASKET, _basket("b-2"))
            assert await session.scalar(select(func.count()).select_from(BASKETS)) == 1
        baskets, _lines_stored, _outbox = await _stored(runtime)
    assert [row.id for row in baskets] == ["b-2"]


def test_writes_combine_into_one_statement_whose_text_does_not_depend_on_the_rows() -> None:
    dialect = asyncpg_dialect()
    one = together([(INSERT_BASKET, _basket("b-1")), (INSERT_LINES, _lines("b-1"))], dialect)
    two = together(
        [(INSERT_BASKET, _basket("b-1")), (INSERT_LINES, _lines("b-1") + _lines("b-2"))], dialect
    )
    assert one is not None and two is not None
    assert one[0].startswith("WITH w0 AS (INSERT INTO baskets") and "unnest(" in one[0]
    assert one[0] == two[0]  # prepared once on each connection, whatever the batch's size
    assert one[1][:4] == ["b-1", None, Decimal("12.34"), AT]
    assert one[1][4:] == [
        ["b-1"] * 3,
        ["A", "B", "C"],
        [1, 22, 333],
        [Decimal("0.10"), None, Decimal("9999999999.99")],
    ]
    # An UPDATE of a table another part writes does not combine (the shared snapshot).
    assert together([(INSERT_BASKET, _basket("b-1")), (SET_NOTE, None)], dialect) is None
