"""The order history's statements on SQLite and PostgreSQL: a page of one organisation's
orders, newest first, or one of its orders, with their cancellations and their lines in order."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import insert

from libs.common import snapshots
from libs.common.db import create_engine, create_tables
from services.orders.history import read_one, read_page
from services.orders.models import Base, Order, OrderCancellation, OrderLine

NOW = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)


def _order(order_id: str, *, org: str, minutes_ago: int, status: str = "placed") -> dict[str, Any]:
    return {
        "id": order_id,
        "customer_org_id": org,
        "placed_by_id": "staff-1",
        "placed_by_name": "Rita Rep",
        "acting_session_id": "session-1" if order_id.endswith("acting") else None,
        "status": status,
        "currency": "EUR",
        "total": Decimal("12.50"),
        "purchase_order_number": None,
        "cart_id": f"cart-{order_id}",
        "cart_version": 1,
        "idempotency_key": order_id,
        "request_hash": "0" * 64,
        "created_at": NOW - timedelta(minutes=minutes_ago),
    }


def _line(order_id: str, sku: str, position: int) -> dict[str, Any]:
    return {
        "order_id": order_id,
        "sku": sku,
        "name": f"Product {sku}",
        "quantity": 2,
        "unit_price": Decimal("3.25"),
        "line_total": Decimal("6.50"),
        "position": position,
    }


def test_a_page_of_history_newest_first_with_lines_and_cancellations(database_url: str) -> None:
    async def scenario() -> None:
        engine = create_engine(database_url)
        await create_tables(engine, Base.metadata)
        try:
            async with engine.begin() as connection:
                await connection.execute(
                    insert(Order),
                    [
                        _order("o-oldest", org="org-1", minutes_ago=30),
                        # Two at the same moment: the id breaks the tie, ascending.
                        _order("o-b-acting", org="org-1", minutes_ago=20),
                        _order("o-a", org="org-1", minutes_ago=20, status="cancelled"),
                        _order("o-newest", org="org-1", minutes_ago=10),
                        _order("o-elsewhere", org="org-2", minutes_ago=5),
                    ],
                )
                # Lines written out of order: they come back by position.
                await connection.execute(
                    insert(OrderLine),
                    [
                        _line("o-newest", "B", 1),
                        _line("o-newest", "A", 0),
                        _line("o-a", "C", 0),
                        _line("o-elsewhere", "Z", 0),
                    ],
                )
                await connection.execute(
                    insert(OrderCancellation),
                    [
                        {
                            "order_id": "o-a",
                            "cancelled_by_id": "staff-1",
                            "cancelled_by_name": "Rita Rep",
                            "acting_session_id": "session-2",
                            "reason": "ordered twice",
                            "cancelled_at": NOW - timedelta(minutes=15),
                        }
                    ],
                )

            first = await read_page(engine, org_id="org-1", limit=2)
            assert [o.id for o in first.items] == ["o-newest", "o-a"]
            newest, cancelled = first.items
            assert [(i.sku, i.line_total) for i in newest.items] == [
                ("A", Decimal("6.50")),
                ("B", Decimal("6.50")),
            ]
            assert newest.total == Decimal("12.50") and newest.cancellation is None
            assert newest.created_at == NOW - timedelta(minutes=10)
            assert cancelled.cancellation is not None
            assert cancelled.cancellation.reason == "ordered twice"
            assert cancelled.cancellation.cancelled_on_behalf
            assert first.next_cursor is not None

            # The rest, after the last of the first page (its time, its id).
            rest = await read_page(
                engine, org_id="org-1", limit=2, after=(NOW - timedelta(minutes=20), "o-a")
            )
            assert [o.id for o in rest.items] == ["o-b-acting", "o-oldest"]
            assert rest.items[0].placed_on_behalf and rest.items[0].items == []
            assert rest.next_cursor is None

            only = await read_page(engine, org_id="org-1", limit=10, status="cancelled")
            assert [o.id for o in only.items] == ["o-a"]
            assert (await read_page(engine, org_id="org-3", limit=10)).items == []

            # One order: as the page gives it, lines and cancellation included; another
            # organisation's, or none, is not found.
            one = await read_one(engine, org_id="org-1", order_id="o-a")
            assert one == cancelled
            newest_alone = await read_one(engine, org_id="org-1", order_id="o-newest")
            assert newest_alone == newest
            assert await read_one(engine, org_id="org-1", order_id="o-elsewhere") is None
            assert await read_one(engine, org_id="org-2", order_id="o-missing") is None
        finally:
            await snapshots.release(engine)
            await engine.dispose()

    asyncio.run(scenario())
