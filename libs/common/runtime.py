"""What a running service holds: database, NATS, policy, token verifier, outbox relay."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import gc
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, TypeVar

import structlog
from nats.aio.client import Client as NATS
from nats.js import JetStreamContext
from sqlalchemy import Connection, MetaData
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession, async_sessionmaker

from libs.common import snapshots
from libs.common.activity import ActivityReporter
from libs.common.authz import Authorizer
from libs.common.bus import await_provisioned_streams, connect
from libs.common.db import (
    create_engine,
    create_sessionmaker,
    create_tables,
    has_row_locks,
    is_sqlite,
)
from libs.common.events import EventContext, new_signed_event, service_source
from libs.common.logging import configure_logging
from libs.common.metrics import count_committed
from libs.common.migrations import has_migrations, upgrade
from libs.common.outbox import (
    Staged,
    hand_over_committed,
    outbox_row,
    stage_in,
    take_staged,
    write_staged,
    write_staged_through,
)
from libs.common.outbox_retention import OutboxPruner
from libs.common.pg_writer import PostgresWriter
from libs.common.principals import Principal
from libs.common.relay import OutboxRelay
from libs.common.revocation import RevocationSet, RevocationWatcher
from libs.common.settings import ServiceSettings
from libs.common.signing import EventSigningKey, load_signing_key
from libs.common.sqlite_writer import Writer
from libs.common.statements import HeldWrites, Statements
from libs.common.tokens import TokenVerifier
from libs.contracts.base import Event

log = structlog.get_logger("runtime")
Own = TypeVar("Own")


@dataclass
class UnitOfWork:
    """One database transaction and the events it stages; both commit or neither does.

    The transaction begins with the first statement, as an ORM session's would: through
    `statements()` it is, on SQLite, the process's Writer connection (sqlite_writer.Writer: no
    pool, no greenlet for BEGIN and COMMIT), on PostgreSQL one of the connections the
    process's PostgresWriter keeps (pg_writer: no pool check-out, no greenlet for COMMIT), and
    `session` is then an ORM session joined to it; through `session`
    first it is a session of the pool, and `statements()` its connection. Nothing is begun
    for a unit of work that neither reads nor writes nor stages an event."""

    runtime: ServiceRuntime
    staged: int = 0
    # The contracts staged, for the metrics counted once the transaction committed.
    events: list[Event] = field(default_factory=list)
    # The outbox rows staged before a session existed to hold them.
    outbox: Staged = field(default_factory=list)
    _session: AsyncSession | None = None
    _written: Connection | None = None  # the Writer's connection, in this transaction
    _connected: AsyncConnection | None = (
        None  # PostgreSQL: the PostgresWriter's, in this transaction
    )
    # PostgreSQL: writes held back to go with the next statement or the commit
    # (Statements.execute_at_commit); never while an ORM session takes part.
    _pending: HeldWrites = field(default_factory=HeldWrites)

    @property
    def session(self) -> AsyncSession:
        """The ORM session of this transaction (created on first use)."""
        if self._session is None:
            if self._pending:
                # Its queries would not see them, and its flush would overtake them.
                raise RuntimeError("an ORM session after writes held back for the commit")
            self._pending.open = False  # from now on every write runs when it is made
            if self._written is not None:
                # Joined to the Writer's transaction: it never commits it, and its close
                # leaves it alone (join_transaction_mode "rollback_only", SQLAlchemy's default
                # for a connection already in a transaction).
                bind = AsyncConnection(self.runtime.engine, self._written)
                self._session = AsyncSession(bind=bind, expire_on_commit=False)
            elif self._connected is not None:
                # The same join, to the pool connection statements began on (PostgreSQL).
                self._session = AsyncSession(bind=self._connected, expire_on_commit=False)
            else:
                self._session = self.runtime.sessionmaker()
        return self._session

    def publish(
        self,
        event: Event,
        principal: Principal | EventContext,
        *,
        subject_org_id: str | None = None,
    ) -> None:
        """Stage `event` (a contract from libs.contracts, which names its type); `principal`
        may be the context of the event that caused this one."""
        if isinstance(principal, EventContext):
            context = principal
        else:
            context = EventContext.of(
                principal,
                policy_revision=self.runtime.authorizer.revision,
                subject_org_id=subject_org_id,
            )
        # Signed here, so the outbox holds (and the relay publishes) the signed bytes.
        signed = new_signed_event(
            source=self.runtime.source,
            type=event.event_type,
            data=event.data(),
            context=context,
            signing_key=self.runtime.signing_key,
        )
        self.outbox.append(outbox_row(self.runtime.outbox_model, signed))
        self.staged += 1
        self.events.append(event)

    async def statements(self) -> Statements:
        """This transaction's connection, for Core statements (libs/common/statements.py)."""
        if self._written is not None:
            return Statements(sync=self._written)
        if self._connected is not None:
            return self._statements_of(self._connected)
        writer = self.runtime.writer
        if self._session is None:
            if writer is not None:
                self._written = await writer.begin()
                return Statements(sync=self._written)
            self._connected = await self._begin_connection()
            return self._statements_of(self._connected)
        return Statements.of(await self.session.connection())

    def _statements_of(self, connection: AsyncConnection) -> Statements:
        """PostgreSQL: writes may be held back for the commit while no ORM session joins."""
        return Statements(async_=connection, pending=self._pending)

    async def _begin_connection(self) -> AsyncConnection:
        if self.runtime.pg_writer is not None:
            return await self.runtime.pg_writer.begin()
        connection = await self.runtime.engine.connect()
        try:
            await connection.begin()
        except BaseException:
            await connection.close()
            raise
        return connection

    async def _commit(self) -> Staged:
        """Commit what the body did; returns the outbox rows written."""
        writer = self.runtime.writer
        if self._written is None and self._session is None and self._connected is None:
            if not self.outbox:
                return []
            if writer is None:
                self._connected = await self._begin_connection()
            else:
                self._written = await writer.begin()
        if self._connected is not None:
            # A failure leaves the transaction to _close, which rolls it back.
            if self._session is not None:
                await self._session.flush()
                self.outbox += take_staged(self._session)
            # The held-back writes and the outbox rows: one statement, one round trip.
            await write_staged_through(self._statements_of(self._connected), self.outbox)
            if self.runtime.pg_writer is not None:
                await self.runtime.pg_writer.commit(self._connected)
            else:
                await self._connected.commit()
            hand_over_committed(self.runtime.engine.sync_engine, self.outbox)
            return self.outbox
        if self._written is not None:
            assert writer is not None
            try:
                if self._session is not None:
                    await self._session.flush()
                    self.outbox += take_staged(self._session)
                write_staged(self._written, self.outbox)
            except BaseException:
                writer.end(self._written, commit=False)
                raise
            writer.end(self._written, commit=True)
            hand_over_committed(self.runtime.engine.sync_engine, self.outbox)
            return self.outbox
        assert self._session is not None
        # The session's commit writes the rows and hands them over (libs/common/outbox.py).
        stage_in(self._session, self.outbox)
        await self._session.commit()
        return self.outbox

    async def _roll_back(self) -> None:
        if self._written is not None:
            assert self.runtime.writer is not None
            self.runtime.writer.end(self._written, commit=False)
        elif self._connected is not None:
            if self.runtime.pg_writer is not None:
                await self.runtime.pg_writer.roll_back(self._connected)
            else:
                await self._connected.rollback()
        elif self._session is not None:
            await self._session.rollback()

    async def _close(self) -> None:
        if self._session is not None:
            await self._session.close()
        if self._connected is not None:
            if self.runtime.pg_writer is not None:
                await self.runtime.pg_writer.give_back(self._connected)
            else:
                await self._connected.close()  # rolls back what did not commit


@dataclass
class ServiceRuntime:
    settings: ServiceSettings
    engine: AsyncEngine
    sessionmaker: async_sessionmaker[AsyncSession]
    # For reads only: on SQLite they must not queue behind writers (see db.create_engine).
    read_sessionmaker: async_sessionmaker[AsyncSession]
    # The engine behind it, for hot reads in Core without an ORM session (cart, catalog).
    read_engine: AsyncEngine
    nc: NATS
    js: JetStreamContext
    authorizer: Authorizer
    revoked: RevocationSet
    verifier: TokenVerifier
    relay: OutboxRelay
    outbox_model: type[Any]
    reconnect_hooks: list[Callable[[], None]]
    activity: ActivityReporter
    # Signs every event this service emits; audit checks it against the published public key.
    signing_key: EventSigningKey
    # SQLite: the connection units of work write through (None on PostgreSQL).
    writer: Writer | None = None
    # PostgreSQL on asyncpg: the connections units of work write through (else the pool's).
    pg_writer: PostgresWriter | None = None
    tasks: list[asyncio.Task[Any]] = field(default_factory=list)
    # What the service itself builds at start-up beyond this chassis (identity: its token
    # signer, password pool, login gate, mail relay), set once by its app.py; business code
    # reaches it through the service's typed accessor (`identity_parts(runtime)`), so the
    # runtime stays the one dependency every route and function takes.
    parts: object | None = None

    @functools.cached_property
    def row_locks(self) -> bool:
        """Whether the database locks rows (PostgreSQL; see db.has_row_locks), asked once."""
        return has_row_locks(self.settings.sqlalchemy_url)

    @property
    def source(self) -> str:
        return service_source(self.settings.service_name)

    def settings_as(self, kind: type[Own]) -> Own:
        """The service's own settings (a ServiceSettings subclass), as app.py started the
        runtime with them; behind each service's accessor (`cart_settings(runtime)`)."""
        if not isinstance(self.settings, kind):
            raise TypeError(f"expected {kind.__name__}, not {type(self.settings).__name__}")
        return self.settings

    def parts_as(self, kind: type[Own]) -> Own:
        """The service's start-up parts (see `parts`), typed; behind its accessor."""
        if not isinstance(self.parts, kind):
            raise TypeError(f"expected {kind.__name__} parts, not {type(self.parts).__name__}")
        return self.parts

    def spawn(self, coroutine: Coroutine[Any, Any, Any], *, name: str) -> asyncio.Task[Any]:
        """A background task that lives as long as the service."""
        task = asyncio.create_task(coroutine, name=name)
        self.tasks.append(task)
        return task

    @asynccontextmanager
    async def unit_of_work(self) -> AsyncIterator[UnitOfWork]:
        uow = UnitOfWork(runtime=self)
        try:
            try:
                yield uow
            except BaseException:
                await uow._roll_back()
                raise
            await uow._commit()
        finally:
            await uow._close()
        if uow.staged:
            self.relay.notify()
            count_committed(uow.events)

    @asynccontextmanager
    async def reading(self) -> AsyncIterator[AsyncSession]:
        """A read-only transaction (a consistent snapshot); never write through it."""
        async with self.read_sessionmaker() as session, session.begin():
            yield session


class MissingSigningKey(RuntimeError):
    """A service must not start unable to sign its events (audit would refuse them all)."""


def load_service_signing_key(settings: ServiceSettings) -> EventSigningKey:
    path = settings.event_signing_key_file
    if path is None:
        raise MissingSigningKey(
            f"{settings.service_name}: no event-signing key: set ONBEHALF_EVENT_SIGNING_KEY_FILE "
            "(`onbehalf run` and the test stack make one per service in <data>/secrets/events/)"
        )
    try:
        return load_signing_key(path, service=settings.service_name)
    except (OSError, ValueError) as exc:
        raise MissingSigningKey(
            f"{settings.service_name}: cannot load the event-signing key {path}: {exc}"
        ) from exc


@asynccontextmanager
async def start_runtime(
    *,
    settings: ServiceSettings,
    metadata: MetaData,
    outbox_model: type[Any],
    fetch_jwks: bool = True,
) -> AsyncIterator[ServiceRuntime]:
    """Start everything a service needs, in an order that fails fast on a bad policy."""
    configure_logging(settings.log_level, service=settings.service_name, fmt=settings.log_format)
    authorizer = Authorizer(settings.policy_dir)
    signing_key = load_service_signing_key(settings)
    engine = create_engine(settings.sqlalchemy_url)
    if has_migrations(settings.service_name):
        # Alembic, under a lock, instead of create_all: see docs/operations.md, Migrations.
        await upgrade(settings.sqlalchemy_url, settings.service_name)
    else:
        await create_tables(engine, metadata)
    sessionmaker = create_sessionmaker(engine)
    read_engine = (
        create_engine(settings.sqlalchemy_url, for_writes=False)
        if is_sqlite(settings.sqlalchemy_url)
        else engine
    )
    hooks: list[Callable[[], None]] = []
    nc = await connect(
        settings.nats_url,
        name=settings.service_name,
        timeout=settings.startup_timeout_seconds,
        reconnect_hooks=hooks,
        seed_file=settings.nats_seed_file,
    )
    js = nc.jetstream()
    await await_provisioned_streams(js, timeout=settings.startup_timeout_seconds)
    revoked = RevocationSet()
    verifier = TokenVerifier(
        issuer=settings.token_issuer, audience=settings.token_audience, revoked=revoked
    )
    if fetch_jwks:
        # A token signed with a key we do not know yet: identity rotated; fetch again.
        verifier.identity_url = settings.identity_url
        verifier.refetch_min_seconds = settings.jwks_refetch_min_seconds
    read_sessionmaker = create_sessionmaker(read_engine)
    relay = OutboxRelay(
        sessionmaker=sessionmaker,
        read_sessionmaker=read_sessionmaker,
        model=outbox_model,
        js=js,
        row_locks=has_row_locks(settings.sqlalchemy_url),
        batch_size=settings.relay_batch_size,
        poll_seconds=settings.relay_poll_seconds,
    )
    runtime = ServiceRuntime(
        settings=settings,
        engine=engine,
        sessionmaker=sessionmaker,
        read_sessionmaker=read_sessionmaker,
        read_engine=read_engine,
        nc=nc,
        js=js,
        authorizer=authorizer,
        revoked=revoked,
        verifier=verifier,
        relay=relay,
        outbox_model=outbox_model,
        reconnect_hooks=hooks,
        activity=ActivityReporter(nc, interval=settings.acting_activity_report_seconds),
        signing_key=signing_key,
        writer=Writer(engine) if is_sqlite(settings.sqlalchemy_url) else None,
        pg_writer=PostgresWriter(engine) if engine.dialect.driver == "asyncpg" else None,
    )
    watcher = RevocationWatcher(
        js=js, revoked=revoked, ttl=float(settings.acting_session_max_seconds)
    )
    hooks.append(watcher.on_reconnect)
    # Pending events leave as soon as NATS is back, not after the relay's back-off.
    hooks.append(relay.on_reconnect)
    runtime.spawn(watcher.run(), name="revocation-watcher")
    try:
        await asyncio.wait_for(revoked.ready.wait(), timeout=settings.startup_timeout_seconds)
        if fetch_jwks:
            await verifier.fetch_jwks(
                settings.identity_url, timeout=settings.startup_timeout_seconds
            )
        runtime.spawn(relay.run(), name="outbox-relay")
        pruner = OutboxPruner.of(settings, sessionmaker=sessionmaker, model=outbox_model)
        if pruner is not None:
            runtime.spawn(pruner.run(), name="outbox-pruner")
        # What start-up built (modules, the policy, schemas, compiled statements) lives as
        # long as the process: frozen, the collector stops scanning it. Unfrozen, audit's
        # first full collection under load scanned it all in one ≈ 0.1 s pause.
        gc.collect()
        gc.freeze()
        log.info("service_started", policy_revision=authorizer.revision)
        yield runtime
    finally:
        for task in reversed(runtime.tasks):
            task.cancel()
        for task in runtime.tasks:
            with contextlib.suppress(BaseException):
                await task
        with contextlib.suppress(Exception):
            await nc.drain()
        if runtime.writer is not None:
            await runtime.writer.close()
        if runtime.pg_writer is not None:
            await runtime.pg_writer.close()
        await snapshots.release(read_engine)
        await engine.dispose()
        await read_engine.dispose()
