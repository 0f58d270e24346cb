"""Alembic migrations on real SQLite and PostgreSQL: no drift, data kept, old databases adopted."""

from __future__ import annotations

import asyncio
import itertools
import sys
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from subprocess import PIPE

import pytest
from sqlalchemy import insert, inspect, select, text
from sqlalchemy.ext.asyncio import AsyncConnection
from typer.testing import CliRunner

from devtools.postgres import PostgresServer
from libs.common.db import create_engine, create_tables
from libs.common.migrations import (
    SERVICES,
    MigrationError,
    baseline_revision,
    current,
    drift,
    head_revision,
    lock_key,
    migration_engine,
    script_directory,
    upgrade,
)
from onbehalf.db_cli import db_app
from onbehalf.stack import Stack
from services.cart.models import Cart
from services.cart.queries import CART_IN_VIEW
from services.orders.models import Order, OrderLine

BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
NewDatabase = Callable[[str], str]


@pytest.fixture(params=BACKENDS)
def new_database(request: pytest.FixtureRequest, tmp_path: Path) -> NewDatabase:
    """Makes an empty database on the test's backend and returns its async URL."""
    server: PostgresServer | None = (
        request.getfixturevalue("postgres") if request.param == "postgres" else None
    )
    numbers = itertools.count()

    def make(service: str) -> str:
        if server is None:
            return f"sqlite+aiosqlite:///{tmp_path / f'{service}-{next(numbers)}.db'}"
        return server.create_database(f"mig_{service}_{uuid.uuid4().hex[:12]}")

    return make


def _is_sqlite(url: str) -> bool:
    return url.startswith("sqlite")


async def _query(url: str, sql: str) -> list[tuple[object, ...]]:
    engine = migration_engine(url)
    try:
        async with engine.connect() as connection:
            return [tuple(row) for row in (await connection.execute(text(sql))).all()]
    finally:
        await engine.dispose()


async def _tables(url: str) -> set[str]:
    engine = migration_engine(url)
    try:
        async with engine.connect() as connection:
            names = await connection.run_sync(lambda c: inspect(c).get_table_names())
    finally:
        await engine.dispose()
    return set(names)


async def _as_create_all_made_it(url: str, service: str) -> None:
    """The database create_all made before migrations: the baseline's tables, no version."""
    await upgrade(url, service, baseline_revision(service).revision)
    engine = migration_engine(url)
    try:
        async with engine.begin() as connection:
            await connection.execute(text("DROP TABLE alembic_version"))
            await connection.execute(
                text(
                    "INSERT INTO outbox (id, subject, event_type, payload, created_at, attempts)"
                    " VALUES ('e-1', 'events.x', 'x.happened', :payload, :at, 0)"
                ),
                {"payload": b"{}", "at": datetime(2026, 1, 1, tzinfo=UTC)},
            )
    finally:
        await engine.dispose()


@pytest.mark.parametrize("service", SERVICES)
def test_history_is_one_line_of_numbered_revisions(service: str) -> None:
    revisions = list(reversed(list(script_directory(service).walk_revisions())))
    assert [r.revision for r in revisions] == [
        f"{service}_{n:04d}" for n in range(1, len(revisions) + 1)
    ]
    assert [r.down_revision for r in revisions[1:]] == [r.revision for r in revisions[:-1]]
    assert head_revision(service) == revisions[-1].revision
    assert baseline_revision(service).module.ADOPTED_TABLES


@pytest.mark.parametrize("service", SERVICES)
async def test_an_empty_database_upgrades_to_exactly_the_models(
    new_database: NewDatabase, service: str
) -> None:
    url = new_database(service)
    result = await upgrade(url, service)
    assert (result.before, result.after, result.adopted) == ((), (head_revision(service),), False)
    assert await drift(url, service) == []
    state = await current(url, service)
    assert state.up_to_date
    again = await upgrade(url, service)
    assert again.before == again.after == (head_revision(service),)


async def test_the_orders_history_index_arrives_and_the_orders_stay(
    new_database: NewDatabase,
) -> None:
    url = new_database("orders")
    await upgrade(url, "orders", "orders_0001")
    start = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
    orders = [
        {
            "id": f"order-{n}",
            "customer_org_id": "org-a" if n % 2 else "org-b",
            "placed_by_id": "user-1",
            "placed_by_name": "Rita Rep",
            "acting_session_id": None,
            "status": "placed",
            "currency": "EUR",
            "total": Decimal("12.50") * n,
            "purchase_order_number": None,
            "cart_id": f"cart-{n}",
            "cart_version": 1,
            "idempotency_key": f"key-{n}",
            "request_hash": "0" * 64,
            "created_at": start + timedelta(minutes=n),
        }
        for n in range(1, 6)
    ]
    lines = [
        {
            "order_id": order["id"],
            "sku": "SKU-1",
            "name": "Widget",
            "quantity": 2,
            "unit_price": Decimal("6.25"),
            "line_total": Decimal("12.50"),
            "position": 0,
        }
        for order in orders
    ]
    engine = create_engine(url)
    try:
        async with engine.begin() as connection:
            await connection.execute(insert(Order), orders)
            await connection.execute(insert(OrderLine), lines)
    finally:
        await engine.dispose()

    result = await upgrade(url, "orders")

    assert (result.before, result.after) == (("orders_0001",), (head_revision("orders"),))
    engine = create_engine(url)
    try:
        async with engine.connect() as connection:
            kept = (
                await connection.execute(
                    select(Order.id, Order.total, Order.created_at).order_by(Order.id)
                )
            ).all()
            kept_lines = (await connection.execute(select(OrderLine.order_id))).all()
            indexes = await connection.run_sync(lambda c: inspect(c).get_indexes("orders"))
            # PostgreSQL plans a five-row table with a scan whatever the indexes: not checked.
            plan = await _history_plan(connection) if _is_sqlite(url) else None
    finally:
        await engine.dispose()
    assert [(r.id, r.total, r.created_at) for r in kept] == [
        (o["id"], o["total"], o["created_at"]) for o in orders
    ]
    assert len(kept_lines) == len(lines)
    by_name = {index["name"]: index["column_names"] for index in indexes}
    assert by_name["ix_orders_customer_history"] == ["customer_org_id", "created_at", "id"]
    assert "ix_orders_customer_org_id" not in by_name
    if plan is not None:
        # SQLite reads a customer's orders in index order: no sort of all of them.
        assert "ix_orders_customer_history" in plan
        assert "USE TEMP B-TREE FOR ORDER BY" not in plan
    assert await drift(url, "orders") == []


async def _history_plan(connection: AsyncConnection) -> str:
    rows = await connection.exec_driver_sql(
        "EXPLAIN QUERY PLAN SELECT * FROM orders WHERE customer_org_id = 'org-a' "
        "ORDER BY created_at DESC, id"
    )
    return " | ".join(str(row[-1]) for row in rows)


async def test_the_carts_version_index_arrives_and_the_carts_stay(
    new_database: NewDatabase,
) -> None:
    """cart_0003: a new cart's version (the highest its organisation reached) is read from the
    end of (org_id, version), not from every past cart of the organisation: one per order."""
    url = new_database("cart")
    await upgrade(url, "cart", "cart_0002")
    at = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
    carts = [
        {
            "id": f"cart-{n}",
            "org_id": "org-a" if n % 2 else "org-b",
            "active_org_id": None,
            "status": "checked_out",
            "version": n,
            "created_at": at,
            "updated_at": at,
        }
        for n in range(1, 9)
    ]
    engine = create_engine(url)
    try:
        async with engine.begin() as connection:
            await connection.execute(insert(Cart), carts)
    finally:
        await engine.dispose()

    result = await upgrade(url, "cart")

    assert (result.before, result.after) == (("cart_0002",), (head_revision("cart"),))
    engine = create_engine(url)
    try:
        async with engine.connect() as connection:
            kept = (await connection.execute(select(Cart.id, Cart.version).order_by(Cart.id))).all()
            indexes = await connection.run_sync(lambda c: inspect(c).get_indexes("carts"))
            in_view = (await connection.execute(CART_IN_VIEW, {"org_id": "org-a"})).all()
            plan = await _cart_in_view_plan(connection) if _is_sqlite(url) else None
    finally:
        await engine.dispose()
    assert [(r.id, r.version) for r in kept] == [(c["id"], c["version"]) for c in carts]
    by_name = {index["name"]: index["column_names"] for index in indexes}
    assert by_name["ix_carts_org_version"] == ["org_id", "version"]
    assert "ix_carts_org_id" not in by_name
    # No active cart: the next one continues from org-a's highest version.
    assert [(row.id, row.version) for row in in_view] == [(None, 7)]
    if plan is not None:
        # PostgreSQL plans an eight-row table with a scan whatever the indexes: not checked.
        assert "COVERING INDEX ix_carts_org_version" in plan
    assert await drift(url, "cart") == []


async def _cart_in_view_plan(connection: AsyncConnection) -> str:
    compiled = CART_IN_VIEW.compile(connection.engine)
    rows = await connection.exec_driver_sql(
        f"EXPLAIN QUERY PLAN {compiled}",
        tuple(compiled.construct_params({"org_id": "org-a"}).values()),
    )
    return " | ".join(str(row[-1]) for row in rows)


@pytest.mark.parametrize("service", SERVICES)
async def test_a_database_made_by_create_all_is_adopted(
    new_database: NewDatabase, service: str
) -> None:
    url = new_database(service)
    await _as_create_all_made_it(url, service)

    result = await upgrade(url, service)

    assert result.adopted
    assert (result.before, result.after) == ((), (head_revision(service),))
    assert await _query(url, "SELECT id FROM outbox") == [("e-1",)]
    assert await drift(url, service) == []


# What a create_all of today's models makes beyond the baseline, per later migration, and the
# statements that take it back to what create_all made before migrations existed.
UNDO_AFTER_BASELINE: dict[str, tuple[str, ...]] = {
    "outbox_traceparent.py": ("ALTER TABLE outbox DROP COLUMN traceparent",),
    "carts_org_version_index.py": (
        "DROP INDEX ix_carts_org_version",
        "CREATE INDEX ix_carts_org_id ON carts (org_id)",
    ),
}


def _later_migrations(service: str) -> list[str]:
    later = [r for r in script_directory(service).walk_revisions() if r.down_revision]
    return [Path(r.path).name.split("_", 2)[-1] for r in later]


# A real create_all, for the services whose models changed since the baseline only in ways
# undone above (undone below: create_all before migrations did not make them).
AT_BASELINE = [
    s for s in SERVICES if all(name in UNDO_AFTER_BASELINE for name in _later_migrations(s))
]


@pytest.mark.parametrize("service", AT_BASELINE)
async def test_a_real_create_all_database_is_adopted_without_drift(
    new_database: NewDatabase, service: str
) -> None:
    from importlib import import_module

    url = new_database(service)
    engine = create_engine(url)
    try:
        await create_tables(engine, import_module(f"services.{service}.models").Base.metadata)
        async with engine.begin() as connection:
            for name in _later_migrations(service):
                for statement in UNDO_AFTER_BASELINE[name]:
                    await connection.execute(text(statement))
    finally:
        await engine.dispose()

    result = await upgrade(url, service)

    assert result.adopted and result.after == (head_revision(service),)
    assert await drift(url, service) == []


async def test_a_database_with_only_some_of_the_tables_is_refused(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'cart.db'}"
    engine = migration_engine(url)
    try:
        async with engine.begin() as connection:
            await connection.execute(text("CREATE TABLE carts (id VARCHAR(36) PRIMARY KEY)"))
    finally:
        await engine.dispose()

    with pytest.raises(MigrationError, match="refusing to adopt"):
        await upgrade(url, "cart")

    # Nothing was stamped or created: the upgrade's transaction rolled back.
    assert await _tables(url) == {"carts"}


REPLICA = (
    "import asyncio, sys\n"
    "from libs.common.migrations import upgrade\n"
    "result = asyncio.run(upgrade(sys.argv[1], 'catalog'))\n"
    "print(','.join(result.before) or 'empty')\n"
)


async def _start_replicas(url: str, count: int) -> list[asyncio.subprocess.Process]:
    """Processes that each do what a starting service does first: upgrade its database."""
    return [
        await asyncio.create_subprocess_exec(
            sys.executable, "-c", REPLICA, url, stdout=PIPE, stderr=PIPE
        )
        for _ in range(count)
    ]


async def _outputs(replicas: list[asyncio.subprocess.Process]) -> list[str]:
    outputs = []
    for replica in replicas:
        out, err = await asyncio.wait_for(replica.communicate(), timeout=120)
        assert replica.returncode == 0, err.decode()
        outputs.append(out.decode().strip().splitlines()[-1])
    return outputs


async def test_replicas_starting_together_migrate_once(new_database: NewDatabase) -> None:
    url = new_database("catalog")

    outputs = await _outputs(await _start_replicas(url, 3))

    # One replica migrates; the others find the database at head (had two created the
    # tables at once, one would have failed or both would have stamped).
    assert sorted(outputs) == sorted(["empty", *[head_revision("catalog")] * 2])
    assert await drift(url, "catalog") == []


WAITING_ON_ADVISORY_LOCKS = text(
    "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
    " AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
)


@pytest.mark.postgres
async def test_replicas_queue_on_the_advisory_lock(postgres: PostgresServer) -> None:
    url = postgres.create_database(f"mig_catalog_{uuid.uuid4().hex[:12]}")
    holder = create_engine(url)
    try:
        async with holder.connect() as connection:
            # Hold the migration lock the way a replica in the middle of an upgrade does.
            await connection.execute(
                text("SELECT pg_advisory_lock(:key)"), {"key": lock_key("catalog")}
            )
            await connection.commit()
            replicas = await _start_replicas(url, 3)
            deadline = asyncio.get_running_loop().time() + 60
            # Wait until every replica has reached the lock and queues on it.
            while (await connection.execute(WAITING_ON_ADVISORY_LOCKS)).scalar_one() < 3:
                await connection.commit()
                assert asyncio.get_running_loop().time() < deadline, "replicas never queued"
                await asyncio.sleep(0.05)  # poll interval of the condition above
            await connection.commit()
            # None of them migrated past the lock.
            assert (
                await connection.execute(
                    text("SELECT count(*) FROM pg_tables WHERE tablename = 'products'")
                )
            ).scalar_one() == 0
            await connection.execute(
                text("SELECT pg_advisory_unlock(:key)"), {"key": lock_key("catalog")}
            )
            await connection.commit()
    finally:
        await holder.dispose()

    outputs = await _outputs(replicas)

    assert sorted(outputs) == sorted(["empty", *[head_revision("catalog")] * 2])
    assert await drift(url, "catalog") == []


def test_the_db_command_upgrades_and_reports(tmp_path: Path) -> None:
    runner = CliRunner()
    env: dict[str, str | None] = {"DATABASE_URL": None}

    before = runner.invoke(db_app, ["current", "--data-dir", str(tmp_path)], env=env)
    assert before.exit_code == 1
    assert "orders: no database at" in before.output

    done = runner.invoke(db_app, ["upgrade", "--data-dir", str(tmp_path)], env=env)
    assert done.exit_code == 0, done.output
    for service in SERVICES:
        assert f"{service}: empty -> {head_revision(service)}" in done.output
        assert (tmp_path / "db" / f"{service}.db").is_file()

    after = runner.invoke(db_app, ["current", "--data-dir", str(tmp_path), "-s", "orders"])
    assert after.exit_code == 0
    assert after.output.strip() == f"orders: {head_revision('orders')} (up to date)"

    one_url_for_all = runner.invoke(
        db_app, ["upgrade", "--database-url", f"sqlite+aiosqlite:///{tmp_path / 'x.db'}"]
    )
    assert one_url_for_all.exit_code == 2


async def test_services_migrate_their_databases_at_start_up(stack: Stack) -> None:
    for service in SERVICES:
        url = stack.database_urls.get(service) or (
            f"sqlite+aiosqlite:///{stack.workdir / 'db' / f'{service}.db'}"
        )
        state = await current(url, service)
        assert state.up_to_date, state


async def test_a_database_from_a_newer_release_stops_the_start(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'orders.db'}"
    await upgrade(url, "orders")
    engine = migration_engine(url)
    try:
        async with engine.begin() as connection:
            await connection.execute(text("UPDATE alembic_version SET version_num = 'orders_9999'"))
    finally:
        await engine.dispose()

    # Old code must not run on a schema it does not know; the message names the revision.
    with pytest.raises(MigrationError, match="orders_9999"):
        await upgrade(url, "orders")
