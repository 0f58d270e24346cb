"""Async SQLAlchemy engines and sessions: SQLite by default, PostgreSQL when DATABASE_URL says so."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from sqlalchemy import (
    BigInteger,
    DateTime,
    Dialect,
    MetaData,
    Select,
    bindparam,
    event,
    func,
    make_url,
    select,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.types import TypeDecorator
from sqlalchemy.util import await_only

from libs.common.sqlite_driver import DRIVER, one_hop_dbapi

if TYPE_CHECKING:
    from libs.common.statements import Statements


def is_sqlite(url: str) -> bool:
    return url.startswith("sqlite")


# What differs between PostgreSQL and SQLite is decided here, never in service code.

_T = TypeVar("_T")


def has_row_locks(url: str) -> bool:
    """Whether several workers on one table can each lock a disjoint batch of rows
    (`FOR UPDATE SKIP LOCKED`, PostgreSQL): the outbox and mail relays then hold their rows
    while they send; SQLite has one writer at a time (BEGIN IMMEDIATE), so they must not."""
    return not is_sqlite(url)


def skipping_locked(query: Select[_T], url: str) -> Select[_T]:
    """`FOR UPDATE SKIP LOCKED` where several instances may work the same rows (PostgreSQL);
    SQLite has one writer at a time (BEGIN IMMEDIATE), so there is nothing to skip."""
    return query.with_for_update(skip_locked=True) if has_row_locks(url) else query


async def insert_if_absent(
    session: AsyncSession, table: type[Any], values: dict[str, Any], *, key: list[str]
) -> None:
    """INSERT .. ON CONFLICT (key) DO NOTHING: two first uses at once never fail; on
    PostgreSQL the second waits for the first and then finds its row."""
    connection = await session.connection()
    dialect = postgresql if connection.dialect.name == "postgresql" else sqlite
    await session.execute(
        dialect.insert(table).values(**values).on_conflict_do_nothing(index_elements=key)
    )


# A Core SELECT, not text(): the bare asyncpg path runs it without SQLAlchemy's greenlet and
# execution context (statements.bare_asyncpg); the audit takes it for every batch it appends.
_ADVISORY_LOCK = select(
    func.pg_advisory_xact_lock(bindparam("key", type_=BigInteger)).label("locked")
)


async def transaction_lock(connection: Statements, key: int) -> None:
    """Serialise writers of one thing until the transaction ends: an advisory lock on
    PostgreSQL; on SQLite the transaction's BEGIN IMMEDIATE already holds the write lock.
    `connection`: the unit of work's (`await uow.statements()`)."""
    if connection.dialect.name == "postgresql":
        await connection.execute(_ADVISORY_LOCK, {"key": key})


def _ping_asyncpg(dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
    """A pooled connection is alive before it is handed out, or is replaced (SQLAlchemy's
    pessimistic disconnect handling: DisconnectionError makes the pool take a fresh one).
    SQLAlchemy's own `pool_pre_ping` on asyncpg wraps its ping in a transaction (BEGIN, the
    ping, ROLLBACK: three round trips per check-out, for pgbouncer's transaction mode, which
    this system does not use); an empty statement outside one is a single round trip."""
    try:
        await_only(dbapi_connection.driver_connection.fetchrow(";"))
    except Exception as exc:
        raise DisconnectionError(f"a pooled connection failed its ping: {exc!r}") from exc


# Connections kept per SQLite engine: more than the requests one process has in flight.
SQLITE_POOL_SIZE = 32


def create_engine(url: str, *, for_writes: bool = True) -> AsyncEngine:
    """An engine; on SQLite, `for_writes=False` gives plain (deferred) transactions that in
    WAL mode read beside the writer instead of queueing behind it."""
    if not is_sqlite(url):
        if make_url(url).get_driver_name() != "asyncpg":
            return create_async_engine(url, pool_size=10, max_overflow=20, pool_pre_ping=True)
        server = create_async_engine(url, pool_size=10, max_overflow=20)
        event.listen(server.sync_engine, "checkout", _ping_asyncpg)
        return server
    path = url.split("///", 1)[-1]
    if path and path != ":memory:":
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    # Statements run on the event loop's thread (sqlite_driver): the hop to aiosqlite's
    # thread cost more than a statement. Reads in WAL mode never wait for the writer; writers
    # of this process queue on the engine's write gate (an asyncio lock) before BEGIN, so
    # SQLite's busy wait, which would block the loop, only ever waits for another process.
    engine = create_async_engine(
        # The dialect issues BEGIN itself: IMMEDIATE for writers, so that concurrent writers
        # queue instead of failing at once with "database is locked" when a deferred
        # transaction starts to write (sqlite_driver.InLoopSQLiteDialect).
        make_url(url).set(drivername=f"sqlite+{DRIVER}"),
        connect_args={"timeout": 30},
        module=one_hop_dbapi(mode="write" if for_writes else "read"),
        # A connection goes back to the pool a loop turn after its work (SQLAlchemy closes
        # it in a shielded task), so every request in flight holds one; with the default 5
        # the rest were opened and closed per request (a thread started each time).
        pool_size=SQLITE_POOL_SIZE,
        max_overflow=SQLITE_POOL_SIZE,
    )

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # The dialect issues BEGIN itself; WAL lets readers run beside the one writer.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    return engine


def bound_engine(sessionmaker: async_sessionmaker[AsyncSession]) -> AsyncEngine | None:
    """The engine `sessionmaker` is bound to, if one: what a snapshot read runs on (a
    sessionmaker bound otherwise, or not at all, reads through its sessions)."""
    bind = sessionmaker.kw.get("bind")
    return bind if isinstance(bind, AsyncEngine) else None


def create_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)


async def create_tables(engine: AsyncEngine, metadata: MetaData) -> None:
    async with engine.begin() as connection:
        await connection.run_sync(metadata.create_all)


class UtcDateTime(TypeDecorator[datetime]):
    """A timestamp that is always timezone-aware UTC, on SQLite (which drops the zone) too."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime: every stored time must be timezone-aware")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
