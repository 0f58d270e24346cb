"""Audit's business functions: append events to the hash chain, query it, verify it."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal, cast

from cloudevents.core.v1.event import CloudEvent
from prometheus_client import Counter
from sqlalchemy import Table, bindparam, insert, select

# The pure chain lives in libs/common/audit_chain.py (the CLI verifies with it too); these
# names are re-exported for the callers that know them from here.
from libs.common.audit_chain import (
    COLUMNS,
    GENESIS,
    ChainReport,
    canonical_envelope,
    chain_hash,
    parse_time,
    report_json,
    verify_engine,
)
from libs.common.audit_chain import (
    ChainRecord as ChainRecord,
)
from libs.common.audit_chain import (
    check_chain as check_chain,
)
from libs.common.clock import utcnow
from libs.common.consumer import PoisonMessage
from libs.common.db import transaction_lock
from libs.common.paging import decode_sequence_cursor
from libs.common.principals import Principal
from libs.common.resources import AuditLog
from libs.common.runtime import ServiceRuntime
from libs.common.signing import EventPublicKey, SignatureProblem, canonical_json, envelope_object
from libs.common.statements import Statements
from libs.contracts.base import cloudevents_type, event_name
from services.audit import checkpoints
from services.audit.models import AuditRecord
from services.audit.provenance import Genuine, Incoming, record_findings, screen
from services.audit.schemas import (
    ActorRead,
    AuditEventRead,
    AuditPage,
    SubjectRead,
    VerifyRead,
)

AUDIT_LOG = AuditLog()
# Key of the PostgreSQL advisory lock that serialises appends: two writers reading the same
# head would fork the chain (the unique prev_hash would then refuse the second one).
CHAIN_LOCK_KEY = 0x6F6E6265_68616C66 & 0x7FFFFFFFFFFFFFFF

RECORDED = Counter("onbehalf_audit_recorded_total", "Events appended to the audit chain")
DUPLICATES = Counter("onbehalf_audit_duplicates_total", "Redelivered events recognised by id")

RECORDS = cast(Table, AuditRecord.__table__)
# The append's statements, built once (it runs per batch of events).
_SEEN = select(RECORDS.c.id).where(RECORDS.c.id.in_(bindparam("ids", expanding=True)))
_HEAD = select(RECORDS.c.hash).order_by(RECORDS.c.seq.desc()).limit(1)
# Inline: no implicit RETURNING of `seq` (nobody reads it back), which on PostgreSQL kept the
# batch insert off the bare asyncpg path (statements.bare_asyncpg) and on SQLAlchemy's
# multi-row insert with its per-row sentinel bookkeeping.
_INSERT = insert(RECORDS).inline()


def record_values(
    event: CloudEvent,
    prev_hash: str,
    *,
    emitter: str | None = None,
    envelope_object: dict[str, Any] | None = None,
    envelope_text: str | None = None,
) -> dict[str, Any]:
    """The column values of `event` stored as the record after the one hashed `prev_hash`;
    `emitter` is the service its signature proved, `envelope_object` its envelope if known,
    `envelope_text` its canonical JSON if already written."""
    if envelope_text is not None:
        envelope = envelope_text
    elif envelope_object is not None:
        envelope = canonical_json(envelope_object)
    else:
        envelope = canonical_envelope(event)
    return {
        "id": event.get_id(),
        "type": event.get_type(),
        "time": event.get_time() or datetime.now(UTC),
        "source": event.get_source(),
        "envelope": envelope,
        "prev_hash": prev_hash,
        "hash": chain_hash(prev_hash, envelope),
        "emitter": emitter,
        **{column: event.get_extension(attr) for attr, column in COLUMNS.items()},
    }


def unstorable(event: CloudEvent) -> str | None:
    """Why `event` can never be stored as a record (it would fail every attempt), or None."""
    return _storable_envelope(event)[0]


# What each text column of a record takes: (may it be null, its length if it has one).
_TEXT_COLUMNS = {
    column: (RECORDS.c[column].nullable, getattr(RECORDS.c[column].type, "length", None))
    for column in ("id", "type", "source", *COLUMNS.values())
}


def _storable_envelope(
    event: CloudEvent, envelope: dict[str, Any] | None = None
) -> tuple[str | None, str | None]:
    """(why `event` can never be stored, None) or (None, its canonical envelope);
    `envelope`: its envelope object, if already built."""
    moment = event.get_time()
    if moment is not None:
        if moment.utcoffset() is None:
            return "time has no time zone", None
        try:
            moment.astimezone(UTC)
        except (OverflowError, ValueError):
            return "time is out of range", None
    values = {"id": event.get_id(), "type": event.get_type(), "source": event.get_source()}
    values |= {column: event.get_extension(attr) for attr, column in COLUMNS.items()}
    for column, value in values.items():
        nullable, length = _TEXT_COLUMNS[column]
        if value is None and nullable:
            continue
        if not isinstance(value, str) or "\x00" in value:
            return f"{column} is not a text without NUL characters", None
        if length is not None and len(value) > length:
            return f"{column} is longer than {length} characters", None
    try:
        text = canonical_envelope(event) if envelope is None else canonical_json(envelope)
        text.encode()
    except (TypeError, ValueError) as exc:  # not JSON, or a lone surrogate: cannot be hashed
        return f"the envelope cannot be written as UTF-8 JSON ({type(exc).__name__})", None
    return None, text


def chain_events(
    events: Iterable[CloudEvent | Genuine],
    *,
    head: str,
    seen: set[str],
    envelopes: dict[str, str] | None = None,
) -> list[dict[str, Any]]:
    """The records to append after `head`: events not in `seen`, in order, each chained to the
    one before. `seen` grows by the ids appended (a batch may carry the same event twice).
    A `Genuine` event's record names its emitter. `envelopes`: canonical envelopes already
    written, by event id (the same text `record_values` would write)."""
    rows: list[dict[str, Any]] = []
    for item in events:
        event = item.event if isinstance(item, Genuine) else item
        event_id = event.get_id()
        if event_id in seen:
            continue  # a redelivery or a relay retry: recorded already
        seen.add(event_id)
        envelope = envelopes.get(event_id) if envelopes is not None else None
        if isinstance(item, Genuine):
            values = record_values(
                event,
                head,
                emitter=item.emitter,
                envelope_object=item.envelope if envelope is None else None,
                envelope_text=envelope,
            )
        else:
            values = record_values(event, head, envelope_text=envelope)
        head = values["hash"]
        rows.append(values)
    return rows


async def _head(written: Statements) -> str:
    head = (await written.execute(_HEAD)).scalar()
    return str(head) if head else GENESIS


async def append(
    *, runtime: ServiceRuntime, incoming: list[Incoming], keys: dict[str, EventPublicKey]
) -> int:
    """Append the events not seen before, in order, each chained to the one before it, if
    their signature proves their emitter (`keys`); the others become findings, not records.
    Returns how many were new. One transaction: the consumer acknowledges after it."""
    envelopes: dict[str, str] = {}
    objects: list[dict[str, Any] | None] = []
    for item in incoming:
        event = item.event
        try:
            built: dict[str, Any] | None = envelope_object(event)
        except (TypeError, ValueError, OverflowError):
            built = None  # said below, or by the screen, as a problem of its own
        objects.append(built)
        problem, envelope = _storable_envelope(event, built)
        if problem is not None:
            raise PoisonMessage(f"event {event.get_id()!r:.60} cannot be stored: {problem}")
        if envelope is not None:
            envelopes[event.get_id()] = envelope
    # Each envelope object is built once: the screen checks signatures over the same one.
    genuine, refused = screen(incoming, keys, envelopes=objects)
    async with runtime.unit_of_work() as uow:
        # SQLite: the transaction began with BEGIN IMMEDIATE, so the head read below is the
        # head we write after. PostgreSQL: take the chain's lock for the same guarantee.
        written = await uow.statements()
        await transaction_lock(written, CHAIN_LOCK_KEY)
        ids = list({item.event.get_id() for item in genuine})
        seen = set((await written.execute(_SEEN, {"ids": ids})).scalars().all()) if ids else set()
        rows = chain_events(genuine, head=await _head(written), seen=seen, envelopes=envelopes)
        if rows:
            # Given, not left to the column's default: SQLAlchemy computes a default per row,
            # which keeps the insert off the bare driver (statements.bare).
            now = utcnow()
            for row in rows:
                row["recorded_at"] = now
            # One executemany on the table (Core): no ORM bookkeeping per record.
            await written.execute(_INSERT, rows)
        if refused:
            await record_findings(uow.session, uow, refused)
    RECORDED.inc(len(rows))
    DUPLICATES.inc(len(genuine) - len(rows))
    return len(rows)


def _read(record: AuditRecord) -> AuditEventRead:
    envelope = json.loads(record.envelope)
    return AuditEventRead(
        id=record.id,
        seq=record.seq,
        type=record.type,
        time=parse_time(envelope["time"]) if "time" in envelope else record.time,
        source=record.source,
        emitter=record.emitter,
        actor=ActorRead(id=record.actor_id, org_id=record.actor_org_id),
        subject=SubjectRead(org_id=record.subject_org_id, user_id=record.subject_user_id),
        acting_session_id=record.acting_session_id,
        data=envelope.get("data"),
        policy_revision=record.policy_revision,
        hash=record.hash,
        prev_hash=record.prev_hash,
    )


@dataclass(frozen=True, slots=True)
class Filters:
    """The audit query: who, for whom, what, which session, when; a page of it."""

    actor_id: str | None = None
    subject_org_id: str | None = None
    type: str | None = None
    session_id: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    limit: int = 100
    cursor: str | None = None
    order: Literal["desc", "asc"] = "desc"


async def _records(
    runtime: ServiceRuntime, principal: Principal, filters: Filters
) -> tuple[list[AuditRecord], str | None]:
    runtime.authorizer.authorize(principal, "read", AUDIT_LOG)
    statement = select(AuditRecord)
    if filters.actor_id:
        statement = statement.where(AuditRecord.actor_id == filters.actor_id)
    if filters.subject_org_id:
        statement = statement.where(AuditRecord.subject_org_id == filters.subject_org_id)
    if filters.type:
        # Either form finds both: `orders.order.placed` and `com.onbehalf.orders.order.placed`
        # (the records keep the type they were signed with; v1 events have the bare name).
        forms = (cloudevents_type(filters.type), event_name(filters.type))
        statement = statement.where(AuditRecord.type.in_(forms))
    if filters.session_id:
        statement = statement.where(AuditRecord.acting_session_id == filters.session_id)
    if filters.since:
        statement = statement.where(AuditRecord.time >= filters.since)
    if filters.until:
        statement = statement.where(AuditRecord.time < filters.until)
    desc = filters.order == "desc"
    if filters.cursor:
        after = decode_sequence_cursor(filters.cursor)
        statement = statement.where(AuditRecord.seq < after if desc else AuditRecord.seq > after)
    statement = statement.order_by(AuditRecord.seq.desc() if desc else AuditRecord.seq.asc()).limit(
        filters.limit + 1
    )
    async with runtime.reading() as session:
        records = list((await session.scalars(statement)).all())
    page = records[: filters.limit]
    next_cursor = str(page[-1].seq) if len(records) > filters.limit and page else None
    return page, next_cursor


async def query(*, runtime: ServiceRuntime, principal: Principal, filters: Filters) -> AuditPage:
    page, next_cursor = await _records(runtime, principal, filters)
    return AuditPage(items=[_read(r) for r in page], next_cursor=next_cursor)


@dataclass(frozen=True, slots=True)
class CloudEventBatch:
    """A page of stored envelopes exactly as their emitters signed them (CloudEvents 1.0 JSON),
    with where the page sits in the chain: `prev_hash` before its first record, `head` the
    hash after its last (docs/audit.md#cloudevents-out)."""

    body: str
    count: int
    prev_hash: str | None
    head: str | None
    next_cursor: str | None


async def query_cloudevents(
    *, runtime: ServiceRuntime, principal: Principal, filters: Filters
) -> CloudEventBatch:
    page, next_cursor = await _records(runtime, principal, filters)
    # The stored text itself, not a re-serialisation: hashing it again gives the chain's hash.
    body = "[" + ",".join(record.envelope for record in page) + "]"
    first, last = (page[0], page[-1]) if page else (None, None)
    if filters.order == "desc":
        first, last = last, first
    return CloudEventBatch(
        body=body,
        count=len(page),
        prev_hash=first.prev_hash if first else None,
        head=last.hash if last else None,
        next_cursor=next_cursor,
    )


def verify_read(report: ChainReport) -> VerifyRead:
    return VerifyRead(**report_json(report))


async def verify(
    *,
    runtime: ServiceRuntime,
    principal: Principal,
    keys: dict[str, EventPublicKey],
    anchor: str | None = None,
) -> VerifyRead:
    """Recompute the chain from the first record, each record's signature and emitter, and
    hold it against the latest signed checkpoint; report the first record that does not hold."""
    runtime.authorizer.authorize(principal, "read", AUDIT_LOG)
    try:
        checkpoint = await checkpoints.latest_published(runtime, keys)
    except (SignatureProblem, ValueError) as exc:
        return VerifyRead(
            ok=False,
            count=0,
            head=GENESIS,
            problem=f"the latest published checkpoint does not verify: {exc}",
            signatures_checked=True,
        )
    report = await verify_engine(runtime.engine, anchor=anchor, keys=keys, checkpoint=checkpoint)
    return verify_read(report)
