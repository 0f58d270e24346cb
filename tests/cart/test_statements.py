"""Cart's prebuilt statements on SQLite and PostgreSQL: one read, and writes of the difference only."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from sqlalchemy import text

from libs.common import snapshots
from libs.common.db import create_engine, create_tables
from libs.common.statements import Statements
from services.cart import queries
from services.cart.models import Base
from services.cart.queries import Line

NOW = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)


def _line(sku: str, quantity: int, position: int, price: str = "2.50") -> Line:
    return Line(
        sku=sku,
        name=f"Product {sku}",
        quantity=quantity,
        unit_price=Decimal(price),
        currency="EUR",
        position=position,
    )


def test_a_cart_read_written_and_read_again(database_url: str) -> None:
    async def scenario() -> None:
        engine = create_engine(database_url)
        await create_tables(engine, Base.metadata)
        try:
            async with engine.begin() as begun:
                connection = Statements.of(begun)
                # No cart yet: nothing in it, version 0, no lock.
                empty = await queries.cart_in_view(connection, "org-1")
                assert (empty.id, empty.items, empty.version, empty.lock) == (None, [], 0, None)

                empty.id = "cart-1"
                empty.items += [_line("A", 1, 0), _line("B", 2, 1), _line("C", 3, 2)]
                empty.version += 1
                await queries.write(connection, empty, now=NOW)

                cart = await queries.cart_in_view(connection, "org-1")
                assert cart.id == "cart-1" and cart.version == 1
                assert [(i.sku, i.quantity) for i in cart.items] == [("A", 1), ("B", 2), ("C", 3)]
                assert cart.items[0].unit_price == Decimal("2.50")

                # Change one line, drop one, add one: the others stay as they were.
                cart.items[0].quantity = 5
                cart.items[0].unit_price = Decimal("2.00")
                cart.items.remove(cart.items[1])
                cart.items.append(_line("D", 4, 3))
                cart.version += 1
                await queries.write(connection, cart, now=NOW)
                again = await queries.cart_in_view(connection, "org-1")
                assert [(i.sku, i.quantity, i.unit_price) for i in again.items] == [
                    ("A", 5, Decimal("2.00")),
                    ("C", 3, Decimal("2.50")),
                    ("D", 4, Decimal("2.50")),
                ]
                assert again.version == 2

                # Checked out: no active cart, and the next one continues from its version.
                by_id = await queries.cart_by_id(connection, "cart-1")
                assert by_id is not None and by_id.org_id == "org-1"
                assert [i.sku for i in by_id.items] == ["A", "C", "D"]
                by_id.status = "checked_out"
                by_id.version += 1
                await queries.write(connection, by_id, now=NOW)
                after = await queries.cart_in_view(connection, "org-1")
                assert (after.id, after.items, after.version) == (None, [], 3)
                # Another organisation's carts do not count.
                assert (await queries.cart_in_view(connection, "org-2")).version == 0
                assert await queries.cart_by_id(connection, "nope") is None

                # The lock row comes with the cart; touching it marks activity and moves it on.
                await connection.execute(
                    text(
                        "INSERT INTO cart_locks (org_id, holder_id, holder_name, session_id, "
                        "since, version) VALUES ('org-1', 'h-1', 'Hanna', 's-1', :since, 4)"
                    ),
                    {"since": NOW - timedelta(minutes=5)},
                )
                await queries.touch_lock(connection, "org-1", NOW)
                lock = (await queries.cart_in_view(connection, "org-1")).lock
                assert lock is not None
                assert (lock.holder_name, lock.session_id, lock.version) == ("Hanna", "s-1", 5)
                assert lock.last_activity_at == NOW
                assert await queries.lock_for_update(connection, "org-1") == lock
                assert await queries.lock_for_update(connection, "org-2") is None

                await connection.execute(
                    text("INSERT INTO inbox (event_id, handled_at) VALUES ('e-1', :at)"),
                    {"at": NOW},
                )
            # Committed: the consumer's snapshot reads of the inbox see it.
            assert await queries.handled_now(engine, ["e-1", "e-2"]) == {"e-1"}
            assert await queries.handled_now(engine, ["e-2", "e-1", "e-3"]) == {"e-1"}
            assert await queries.handled_now(engine, []) == set()
        finally:
            await snapshots.release(engine)
            await engine.dispose()

    asyncio.run(scenario())
