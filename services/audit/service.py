"""Audit's business functions: append events to the hash chain, query it, verify it."""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal, cast

from cloudevents.core.v1.event import CloudEvent
from prometheus_client import Counter
from sqlalchemy import Table, insert, select, text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from libs.common.errors import Invalid
from libs.common.principals import Principal
from libs.common.resources import AuditLog
from libs.common.runtime import ServiceRuntime
from services.audit.models import AuditRecord
from services.audit.schemas import (
    ActorRead,
    AuditEventRead,
    AuditPage,
    SubjectRead,
    VerifyRead,
)

GENESIS = "0" * 64
AUDIT_LOG = AuditLog()
# Key of the PostgreSQL advisory lock that serialises appends: two writers reading the same
# head would fork the chain (the unique prev_hash would then refuse the second one).
CHAIN_LOCK_KEY = 0x6F6E6265_68616C66 & 0x7FFFFFFFFFFFFFFF

RECORDED = Counter("onbehalf_audit_recorded_total", "Events appended to the audit chain")
DUPLICATES = Counter("onbehalf_audit_duplicates_total", "Redelivered events recognised by id")

RECORDS = cast(Table, AuditRecord.__table__)

# Envelope attribute -> the queryable column that copies it.
COLUMNS = {
    "actorid": "actor_id",
    "actororgid": "actor_org_id",
    "subjectorgid": "subject_org_id",
    "subjectuserid": "subject_user_id",
    "actingsessionid": "acting_session_id",
    "policyrevision": "policy_revision",
}


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def canonical_envelope(event: CloudEvent) -> str:
    """The event as sorted, compact JSON: the same bytes every time it is recomputed."""
    attributes: dict[str, Any] = {}
    for key, value in event.get_attributes().items():
        attributes[key] = _iso(value) if isinstance(value, datetime) else value
    data = event.get_data()
    if isinstance(data, bytes | bytearray):
        # CloudEvents' own JSON spelling of binary data; JSON cannot hold bytes.
        attributes["data_base64"] = base64.b64encode(data).decode()
    else:
        attributes["data"] = data
    return json.dumps(attributes, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def chain_hash(prev_hash: str, envelope: str) -> str:
    return hashlib.sha256(f"{prev_hash}\n{envelope}".encode()).hexdigest()


def _parse_time(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def record_values(event: CloudEvent, prev_hash: str) -> dict[str, Any]:
    """The column values of `event` stored as the record after the one hashed `prev_hash`."""
    envelope = canonical_envelope(event)
    return {
        "id": event.get_id(),
        "type": event.get_type(),
        "time": event.get_time() or datetime.now(UTC),
        "source": event.get_source(),
        "envelope": envelope,
        "prev_hash": prev_hash,
        "hash": chain_hash(prev_hash, envelope),
        **{column: event.get_extension(attr) for attr, column in COLUMNS.items()},
    }


def chain_events(
    events: Iterable[CloudEvent], *, head: str, seen: set[str]
) -> list[dict[str, Any]]:
    """The records to append after `head`: events not in `seen`, in order, each chained to the
    one before. `seen` grows by the ids appended (a batch may carry the same event twice)."""
    rows: list[dict[str, Any]] = []
    for event in events:
        event_id = event.get_id()
        if event_id in seen:
            continue  # a redelivery or a relay retry: recorded already
        seen.add(event_id)
        values = record_values(event, head)
        head = values["hash"]
        rows.append(values)
    return rows


async def _head(session: AsyncSession) -> str:
    head = await session.scalar(select(AuditRecord.hash).order_by(AuditRecord.seq.desc()).limit(1))
    return head or GENESIS


async def append(*, runtime: ServiceRuntime, events: list[CloudEvent]) -> int:
    """Append the events not seen before, in order, each chained to the one before it.
    Returns how many were new. One transaction: the consumer acknowledges after it."""
    async with runtime.sessionmaker() as session, session.begin():
        # SQLite: the transaction began with BEGIN IMMEDIATE, so the head read below is the
        # head we write after. PostgreSQL: take the chain's lock for the same guarantee.
        if runtime.engine.dialect.name == "postgresql":
            await session.execute(
                text("SELECT pg_advisory_xact_lock(:key)"), {"key": CHAIN_LOCK_KEY}
            )
        ids = list({event.get_id() for event in events})
        seen = set(
            (await session.scalars(select(AuditRecord.id).where(AuditRecord.id.in_(ids)))).all()
        )
        rows = chain_events(events, head=await _head(session), seen=seen)
        if rows:
            # One executemany on the table (Core): no ORM bookkeeping per record.
            await session.execute(insert(RECORDS), rows)
    RECORDED.inc(len(rows))
    DUPLICATES.inc(len(events) - len(rows))
    return len(rows)


def _read(record: AuditRecord) -> AuditEventRead:
    envelope = json.loads(record.envelope)
    return AuditEventRead(
        id=record.id,
        seq=record.seq,
        type=record.type,
        time=_parse_time(envelope["time"]) if "time" in envelope else record.time,
        source=record.source,
        actor=ActorRead(id=record.actor_id, org_id=record.actor_org_id),
        subject=SubjectRead(org_id=record.subject_org_id, user_id=record.subject_user_id),
        acting_session_id=record.acting_session_id,
        data=envelope.get("data"),
        policy_revision=record.policy_revision,
        hash=record.hash,
        prev_hash=record.prev_hash,
    )


async def query(
    *,
    runtime: ServiceRuntime,
    principal: Principal,
    actor_id: str | None,
    subject_org_id: str | None,
    type: str | None,
    session_id: str | None,
    since: datetime | None,
    until: datetime | None,
    limit: int,
    cursor: str | None,
    order: Literal["desc", "asc"],
) -> AuditPage:
    runtime.authorizer.authorize(principal, "read", AUDIT_LOG)
    statement = select(AuditRecord)
    if actor_id:
        statement = statement.where(AuditRecord.actor_id == actor_id)
    if subject_org_id:
        statement = statement.where(AuditRecord.subject_org_id == subject_org_id)
    if type:
        statement = statement.where(AuditRecord.type == type)
    if session_id:
        statement = statement.where(AuditRecord.acting_session_id == session_id)
    if since:
        statement = statement.where(AuditRecord.time >= since)
    if until:
        statement = statement.where(AuditRecord.time < until)
    if cursor:
        if not cursor.isdigit():
            raise Invalid("cursor is not one this service issued")
        after = int(cursor)
        statement = statement.where(
            AuditRecord.seq < after if order == "desc" else AuditRecord.seq > after
        )
    statement = statement.order_by(
        AuditRecord.seq.desc() if order == "desc" else AuditRecord.seq.asc()
    ).limit(limit + 1)
    async with runtime.reading() as session:
        records = (await session.scalars(statement)).all()
    page = records[:limit]
    next_cursor = str(page[-1].seq) if len(records) > limit and page else None
    return AuditPage(items=[_read(r) for r in page], next_cursor=next_cursor)


# --- verification: pure functions over stored records, used by the API and the CLI ---------


@dataclass(frozen=True, slots=True)
class ChainRecord:
    """A stored record as verification sees it: the hashed envelope and its queryable copies."""

    seq: int
    id: str
    type: str
    time: datetime
    source: str
    actor_id: str | None
    actor_org_id: str | None
    subject_org_id: str | None
    subject_user_id: str | None
    acting_session_id: str | None
    policy_revision: str | None
    envelope: str
    prev_hash: str
    hash: str


CHAIN_COLUMNS = tuple(RECORDS.c[name] for name in ChainRecord.__slots__)


@dataclass(frozen=True, slots=True)
class ChainReport:
    """The outcome of a verification: the head reached, or the first record that does not hold."""

    ok: bool
    count: int
    head: str
    first_broken: int | None = None
    broken_id: str | None = None
    problem: str | None = None
    anchor: str | None = None
    anchor_seq: int | None = None


def record_problem(record: ChainRecord, prev_hash: str) -> str | None:
    """Why `record` does not follow a record hashed `prev_hash`, or None when it does."""
    if record.prev_hash != prev_hash:
        return "prev_hash does not match the previous record's hash"
    if chain_hash(prev_hash, record.envelope) != record.hash:
        return "hash does not match the record's content"
    try:
        envelope = json.loads(record.envelope)
    except ValueError:
        return "envelope is not JSON"
    if not isinstance(envelope, dict):
        return "envelope is not a JSON object"
    # The columns are what queries filter on: each must say what the hashed envelope says.
    for attr, column in (("id", "id"), ("type", "type"), ("source", "source")):
        if envelope.get(attr) != getattr(record, column):
            return f"{column} differs from the hashed envelope"
    if "time" in envelope:
        try:
            if _parse_time(str(envelope["time"])) != record.time:
                return "time differs from the hashed envelope"
        except ValueError:
            return "time in the hashed envelope is not a timestamp"
    for attr, column in COLUMNS.items():
        if envelope.get(attr) != getattr(record, column):
            return f"{column} differs from the hashed envelope"
    return None


@dataclass
class ChainChecker:
    """Walks records in `seq` order, one at a time, so a long chain never sits in memory."""

    anchor: str | None = None
    head: str = GENESIS
    count: int = 0
    anchor_seq: int | None = None
    broken: tuple[ChainRecord, str] | None = field(default=None)

    def feed(self, record: ChainRecord) -> bool:
        """Check the next record; False (and stop feeding) once the chain is broken."""
        problem = record_problem(record, self.head)
        if problem is not None:
            self.broken = (record, problem)
            return False
        self.head, self.count = record.hash, self.count + 1
        if self.anchor is not None and record.hash == self.anchor:
            self.anchor_seq = record.seq
        return True

    def report(self) -> ChainReport:
        if self.broken is not None:
            record, problem = self.broken
            return ChainReport(
                ok=False,
                count=self.count,
                head=self.head,
                first_broken=record.seq,
                broken_id=record.id,
                problem=problem,
                anchor=self.anchor,
                anchor_seq=self.anchor_seq,
            )
        if self.anchor is not None and self.anchor_seq is None:
            return ChainReport(
                ok=False,
                count=self.count,
                head=self.head,
                problem="the anchor is not in the chain: records up to it were removed or rewritten",
                anchor=self.anchor,
            )
        return ChainReport(
            ok=True,
            count=self.count,
            head=self.head,
            anchor=self.anchor,
            anchor_seq=self.anchor_seq,
        )


def check_chain(records: Iterable[ChainRecord], *, anchor: str | None = None) -> ChainReport:
    """Recompute the chain over `records` (in `seq` order); a pure function, no I/O."""
    checker = ChainChecker(anchor=anchor)
    for record in records:
        if not checker.feed(record):
            break
    return checker.report()


async def verify_engine(
    engine: AsyncEngine, *, anchor: str | None = None, chunk: int = 2000
) -> ChainReport:
    """Verify the chain stored behind `engine`, reading `chunk` records per transaction (the
    chain only grows at its end, so short reads see a consistent prefix and never hold up
    the writer)."""
    checker = ChainChecker(anchor=anchor)
    last_seq = 0
    while True:
        async with engine.connect() as connection:
            rows = (
                await connection.execute(
                    select(*CHAIN_COLUMNS)
                    .where(AuditRecord.seq > last_seq)
                    .order_by(AuditRecord.seq)
                    .limit(chunk)
                )
            ).all()
        if not rows:
            return checker.report()
        for row in rows:
            if not checker.feed(ChainRecord(**row._mapping)):
                return checker.report()
            last_seq = row.seq


def verify_read(report: ChainReport) -> VerifyRead:
    return VerifyRead(
        ok=report.ok,
        count=report.count,
        head=report.head,
        first_broken=report.first_broken,
        broken_id=report.broken_id,
        problem=report.problem,
        anchor_seq=report.anchor_seq,
    )


async def verify(
    *, runtime: ServiceRuntime, principal: Principal, anchor: str | None = None
) -> VerifyRead:
    """Recompute the chain from the first record; report the first that does not hold."""
    runtime.authorizer.authorize(principal, "read", AUDIT_LOG)
    return verify_read(await verify_engine(runtime.engine, anchor=anchor))
