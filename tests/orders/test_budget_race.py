"""The budget race on real databases: of concurrent orders that each fit the budget alone but
not together, exactly one spends (services/orders/budgets.py `spend`, one conditional UPDATE
in the order's own transaction), on SQLite and on PostgreSQL."""

from __future__ import annotations

import asyncio
import uuid
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from devtools.postgres import PostgresServer
from libs.common.clock import utcnow
from libs.common.db import create_engine, create_sessionmaker
from libs.common.migrations import upgrade
from services.orders.budgets import period_key, spend
from services.orders.models import Budget

RACERS = 6
# Row and insert waits are on the holder's transaction id (no database in pg_locks).
WAITING_ON_LOCKS = text("SELECT count(*) FROM pg_locks WHERE NOT granted")


async def _race(url: str, *, postgres: bool) -> None:
    await upgrade(url, "orders")
    engine = create_engine(url)
    sessions = create_sessionmaker(engine)
    try:
        budget = Budget(
            id=str(uuid.uuid4()),
            org_id=str(uuid.uuid4()),
            kind="cost_center",
            user_id=None,
            name="Purchasing",
            amount=Decimal("10.00"),
            currency="EUR",
            period="month",
            on_exceed="refuse",
            for_assisted_orders=False,
            created_at=utcnow(),
        )
        async with sessions() as session, session.begin():
            session.add(budget)
        key = period_key("month", utcnow())
        release = asyncio.Event()
        outcomes: list[bool] = []

        async def order() -> None:
            # Each order spends 7.50 of the 10.00 in its own transaction, which stays open
            # (as an order's does while its rows are written) until the race is set up.
            async with sessions() as session, session.begin():
                outcomes.append(await spend(session, budget, key, Decimal("7.50"), capped=True))
                await release.wait()

        racers = [asyncio.create_task(order()) for _ in range(RACERS)]
        deadline = asyncio.get_running_loop().time() + 60
        # The first spender holds its transaction open; on PostgreSQL every other one is then
        # seen queueing on its row (or insert) lock.
        while not outcomes or (postgres and await _waiting(engine) < RACERS - 1):
            assert asyncio.get_running_loop().time() < deadline, "the race never formed"
            await asyncio.sleep(0.01)  # poll interval of the condition above
        assert outcomes == [True]
        release.set()
        await asyncio.wait_for(asyncio.gather(*racers), timeout=60)
        assert sorted(outcomes) == [False] * (RACERS - 1) + [True]
        async with sessions() as session:
            spent = await session.scalar(
                text("SELECT spent FROM budget_periods WHERE budget_id = :id"), {"id": budget.id}
            )
        assert Decimal(str(spent)).quantize(Decimal("0.01")) == Decimal("7.50")
    finally:
        await engine.dispose()


async def _waiting(engine: AsyncEngine) -> int:
    async with engine.connect() as connection:
        return int((await connection.execute(WAITING_ON_LOCKS)).scalar_one())


async def test_one_of_concurrent_orders_spends_the_last_remainder_on_sqlite(
    tmp_path: Path,
) -> None:
    await _race(f"sqlite+aiosqlite:///{tmp_path / 'orders.db'}", postgres=False)


@pytest.mark.postgres
async def test_one_of_concurrent_orders_spends_the_last_remainder_on_postgres(
    postgres: PostgresServer,
) -> None:
    url = postgres.create_database(f"budget_race_{uuid.uuid4().hex[:12]}")
    await _race(url, postgres=True)
