"""Audit's business functions: append events to the hash chain, query it, verify it."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from typing import Any, Literal

from cloudevents.core.v1.event import CloudEvent
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

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
    attributes["data"] = event.get_data()
    return json.dumps(attributes, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def chain_hash(prev_hash: str, envelope: str) -> str:
    return hashlib.sha256(f"{prev_hash}\n{envelope}".encode()).hexdigest()


def _parse_time(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


async def _head(session: AsyncSession) -> str:
    head = await session.scalar(select(AuditRecord.hash).order_by(AuditRecord.seq.desc()).limit(1))
    return head or GENESIS


async def append(*, runtime: ServiceRuntime, events: list[CloudEvent]) -> int:
    """Append the events not seen before, in order, each chained to the one before it.
    Returns how many were new. One transaction: the consumer acknowledges after it."""
    async with runtime.unit_of_work() as uow:
        session = uow.session
        ids = [event.get_id() for event in events]
        seen = set(
            (await session.scalars(select(AuditRecord.id).where(AuditRecord.id.in_(ids)))).all()
        )
        prev = await _head(session)
        added = 0
        for event in events:
            if event.get_id() in seen:
                continue  # a redelivery or a relay retry: recorded already
            seen.add(event.get_id())
            envelope = canonical_envelope(event)
            digest = chain_hash(prev, envelope)
            time = event.get_time() or datetime.now(UTC)
            session.add(
                AuditRecord(
                    id=event.get_id(),
                    type=event.get_type(),
                    time=time,
                    source=event.get_source(),
                    envelope=envelope,
                    prev_hash=prev,
                    hash=digest,
                    **{column: event.get_extension(attr) for attr, column in COLUMNS.items()},
                )
            )
            prev = digest
            added += 1
    return added


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


def _problem(record: AuditRecord, prev: str) -> str | None:
    if record.prev_hash != prev:
        return "prev_hash does not match the previous record's hash"
    if chain_hash(prev, record.envelope) != record.hash:
        return "hash does not match the record's content"
    try:
        envelope = json.loads(record.envelope)
    except ValueError:
        return "envelope is not JSON"
    if envelope.get("id") != record.id or envelope.get("type") != record.type:
        return "id or type differs from the hashed envelope"
    for attr, column in COLUMNS.items():
        if envelope.get(attr) != getattr(record, column):
            return f"{column} differs from the hashed envelope"
    return None


async def verify(*, runtime: ServiceRuntime, principal: Principal) -> VerifyRead:
    """Recompute the chain from the first record; report the first that does not hold."""
    runtime.authorizer.authorize(principal, "read", AUDIT_LOG)
    return await verify_chain(runtime=runtime)


async def verify_chain(*, runtime: ServiceRuntime) -> VerifyRead:
    prev, count, last_seq = GENESIS, 0, 0
    async with runtime.reading() as session:
        while True:
            chunk = (
                await session.scalars(
                    select(AuditRecord)
                    .where(AuditRecord.seq > last_seq)
                    .order_by(AuditRecord.seq)
                    .limit(1000)
                )
            ).all()
            if not chunk:
                return VerifyRead(ok=True, count=count, head=prev)
            for record in chunk:
                problem = _problem(record, prev)
                if problem:
                    return VerifyRead(
                        ok=False, count=count, head=prev, first_broken=record.seq, problem=problem
                    )
                prev, count, last_seq = record.hash, count + 1, record.seq
