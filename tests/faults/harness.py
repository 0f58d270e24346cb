"""A stack of its own per fault test, and direct reads of every outbox, the audit chain and the stream."""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import sqlite3
from collections.abc import Coroutine, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TypeVar
from uuid import uuid4

import httpx
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from devtools.postgres import PostgresServer
from devtools.stacks import connect_bus, start_replica
from libs.common.bus import EVENTS_STREAM
from libs.common.events import EventContext, build_event, encode, nats_subject
from libs.common.signing import load_signing_key, signing_key_path
from onbehalf.stack import SERVICES, Stack, start_stack, wait_healthy
from services.audit.service import CHAIN_LOCK_KEY, ChainReport, verify_engine
from tests.support import Api

T = TypeVar("T")
Backend = Literal["sqlite", "postgres"]

ADMIN_EMAIL = "admin@faults.test"
# Synthetic events are catalog's: signed with its key and published on its subject, as its
# relay would, so that audit records them as genuine (an unsigned event is a finding).
SYNTHETIC_EMITTER = "catalog"
SYNTHETIC_TYPE = f"{SYNTHETIC_EMITTER}.faults.synthetic"
# Short, so that a batch in flight when audit is killed comes back within the test.
FAULT_ENV = {"ONBEHALF_CONSUME_ACK_WAIT_SECONDS": "2"}


@dataclass
class Snapshot:
    """Every event id the services wrote (by service) and every id the audit chain holds."""

    outbox: dict[str, list[str]]
    pending: dict[str, list[str]]
    audit: list[str]
    # Pending event id -> how many relay rounds failed to publish it.
    attempts: dict[str, int] = field(default_factory=dict)

    @property
    def written(self) -> set[str]:
        return {event_id for ids in self.outbox.values() for event_id in ids}

    @property
    def pending_ids(self) -> set[str]:
        return {event_id for ids in self.pending.values() for event_id in ids}


@dataclass
class FaultStack:
    """NATS and the five services for one test (on SQLite, or on PostgreSQL with a second
    process of orders and of catalog), plus a private event loop for reading databases."""

    stack: Stack
    backend: Backend
    database_urls: dict[str, str]
    http: httpx.Client
    admin: Api
    loop: asyncio.AbstractEventLoop
    engines: dict[str, AsyncEngine] = field(default_factory=dict)

    def run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        return self.loop.run_until_complete(coroutine)

    def engine(self, service: str) -> AsyncEngine:
        if service not in self.engines:
            self.engines[service] = create_async_engine(self.database_urls[service])
        return self.engines[service]

    async def _rows(self, service: str, sql: str) -> list[Any]:
        async with self.engine(service).connect() as connection:
            return list((await connection.execute(text(sql))).all())

    def snapshot(self) -> Snapshot:
        """Outboxes first, then audit: an id written after the outbox read cannot make an
        audit id look unexplained."""

        async def read() -> Snapshot:
            outbox: dict[str, list[str]] = {}
            pending: dict[str, list[str]] = {}
            attempts: dict[str, int] = {}
            for service in SERVICES:
                rows = await self._rows(service, "SELECT id, published_at, attempts FROM outbox")
                outbox[service] = [row[0] for row in rows]
                pending[service] = [row[0] for row in rows if row[1] is None]
                attempts.update({row[0]: row[2] for row in rows if row[1] is None})
            audit = [row[0] for row in await self._rows("audit", "SELECT id FROM audit_records")]
            return Snapshot(outbox=outbox, pending=pending, audit=audit, attempts=attempts)

        return self.run(read())

    def audit_count(self) -> int:
        rows = self.run(self._rows("audit", "SELECT count(*) FROM audit_records"))
        return int(rows[0][0])

    def execute(self, service: str, sql: str, **params: Any) -> None:
        async def change() -> None:
            async with self.engine(service).begin() as connection:
                await connection.execute(text(sql), params)

        self.run(change())

    def audit_rows(self, sql: str, **params: Any) -> list[Any]:
        async def read() -> list[Any]:
            async with self.engine("audit").connect() as connection:
                return list((await connection.execute(text(sql), params)).all())

        return self.run(read())

    def verify_database(self, anchor: str | None = None) -> ChainReport:
        return self.run(verify_engine(self.engine("audit"), anchor=anchor))

    @contextlib.contextmanager
    def sqlite_writes_held(self, service: str) -> Iterator[None]:
        """`service` cannot commit while this is open (SQLite only): its write lock is held
        here, as a stalled database would; reads beside it go on (WAL)."""
        path = self.database_urls[service].split("///", 1)[1]
        holder = sqlite3.connect(path, isolation_level=None)
        holder.execute("BEGIN IMMEDIATE")
        try:
            yield
        finally:
            holder.rollback()
            holder.close()

    @contextlib.contextmanager
    def audit_writes_held(self) -> Iterator[None]:
        """Audit cannot commit while this is open: its SQLite write lock or its PostgreSQL
        chain lock is held here (audit waits, as it would on a stalled database)."""
        if self.backend == "sqlite":
            with self.sqlite_writes_held("audit"):
                yield
            return
        connection = self.run(self.engine("audit").connect().start())
        lock = text("SELECT pg_advisory_lock(:key)")
        self.run(connection.execute(lock, {"key": CHAIN_LOCK_KEY}))
        try:
            yield
        finally:
            # Explicitly: closing only returns the connection to the pool, lock and all.
            self.run(
                connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": CHAIN_LOCK_KEY})
            )
            self.run(connection.close())

    def consumer_state(self, durable: str) -> tuple[int, int]:
        """(last stream seq delivered to `durable`, how many it has not acknowledged)."""

        async def read() -> tuple[int, int]:
            nc = await connect_bus(self.stack, "operator")
            try:
                info = await nc.jetstream().consumer_info(EVENTS_STREAM, durable)
                delivered = info.delivered.stream_seq if info.delivered else 0
                return delivered or 0, info.num_ack_pending or 0
            finally:
                await nc.close()

        return self.run(read())

    def stream_ids(self) -> list[str]:
        """The Nats-Msg-Id of every message in the EVENTS stream, duplicates included."""

        async def read() -> list[str]:
            nc = await connect_bus(self.stack, "operator")
            try:
                js = nc.jetstream()
                total = (await js.stream_info(EVENTS_STREAM)).state.messages
                subscription = await js.pull_subscribe(
                    "events.>",
                    stream=EVENTS_STREAM,
                    config=ConsumerConfig(
                        ack_policy=AckPolicy.NONE,
                        deliver_policy=DeliverPolicy.ALL,
                        inactive_threshold=30.0,
                    ),
                )
                ids: list[str] = []
                while len(ids) < total:
                    for message in await subscription.fetch(1000, timeout=5.0):
                        ids.append((message.headers or {}).get("Nats-Msg-Id", ""))
                await subscription.unsubscribe()
                return ids
            finally:
                await nc.close()

        return self.run(read())

    def publish_synthetic(self, count: int) -> list[str]:
        """Publish `count` events straight to JetStream (as a relay would) and return their ids:
        a backlog far faster than HTTP changes can make one."""
        key = load_signing_key(
            signing_key_path(self.stack.secrets_dir, SYNTHETIC_EMITTER), service=SYNTHETIC_EMITTER
        )

        async def publish() -> list[str]:
            # The bus lets a service publish only its own events: these pose as catalog's.
            nc = await connect_bus(self.stack, SYNTHETIC_EMITTER)
            try:
                js = nc.jetstream()
                context = EventContext(
                    actor_id=None,
                    actor_org_id=None,
                    subject_org_id=None,
                    subject_user_id=None,
                    acting_session_id=None,
                    policy_revision="faults",
                )
                ids, futures = [], []
                for n in range(count):
                    event = build_event(
                        source=f"/onbehalf/{SYNTHETIC_EMITTER}",
                        type=SYNTHETIC_TYPE,
                        data={"n": n},
                        context=context,
                        signing_key=key,
                    )
                    ids.append(event.get_id())
                    futures.append(
                        await js.publish_async(
                            nats_subject(SYNTHETIC_TYPE),
                            encode(event),
                            headers={"Nats-Msg-Id": event.get_id()},
                        )
                    )
                await asyncio.wait_for(asyncio.gather(*futures), timeout=60.0)
                return ids
            finally:
                await nc.close()

        return self.run(publish())

    def close(self) -> None:
        for engine in self.engines.values():
            self.run(engine.dispose())
        self.loop.close()
        self.http.close()


def start_fault_stack(
    workdir: Path, backend: Backend, postgres: PostgresServer | None
) -> FaultStack:
    password = secrets.token_urlsafe(16)
    stack_urls: dict[str, str] = {}
    if backend == "postgres":
        assert postgres is not None
        prefix = f"f{uuid4().hex[:10]}"
        stack_urls = {name: postgres.create_database(f"{prefix}_{name}") for name in SERVICES}
    stack = start_stack(
        workdir,
        admin_email=ADMIN_EMAIL,
        admin_password=password,
        database_urls=stack_urls,
        extra_env=FAULT_ENV,
    )
    try:
        if backend == "postgres":
            # A second relay on the same outbox tables: orders (orders are placed against
            # both) and catalog (one of them is killed while it has events pending).
            for replica in [
                start_replica(stack, name, wait=False) for name in ("orders", "catalog")
            ]:
                wait_healthy(replica)
        database_urls = dict(stack_urls) or {
            name: f"sqlite+aiosqlite:///{workdir / 'db' / f'{name}.db'}" for name in SERVICES
        }
        http = httpx.Client(timeout=30.0)
        admin = Api(stack=stack, client=http).login(ADMIN_EMAIL, password)
    except BaseException:
        stack.stop()
        raise
    return FaultStack(
        stack=stack,
        backend=backend,
        database_urls=database_urls,
        http=http,
        admin=admin,
        loop=asyncio.new_event_loop(),
    )
