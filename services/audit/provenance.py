"""Who emitted each incoming event: signature, source and subject checks, and security findings."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import uuid4

from cloudevents.core.v1.event import CloudEvent
from prometheus_client import Counter
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from libs.common.audit_chain import emitter_of
from libs.common.clock import utcnow
from libs.common.events import EventContext
from libs.common.paging import decode_sequence_cursor
from libs.common.principals import Principal
from libs.common.resources import AuditLog
from libs.common.runtime import ServiceRuntime, UnitOfWork
from libs.common.signing import SIGNATURE_KID, EventPublicKey, SignatureProblem, envelope_object
from services.audit.events import FindingRecorded
from services.audit.models import AuditFinding
from services.audit.schemas import FindingPage, FindingRead

# How much of an offending message a finding keeps for a reviewer (the hash covers all of it).
PAYLOAD_KEPT = 16 * 1024

FINDINGS = Counter(
    "onbehalf_audit_findings_total", "Events refused as not provably from their emitter"
)


@dataclass(frozen=True)
class AuditParts:
    """What audit loads at start-up beyond the runtime (app.py): every service's public event
    key, hung on the runtime (`runtime.parts`) and reached through `event_keys(runtime)`."""

    event_keys: dict[str, EventPublicKey]


def event_keys(runtime: ServiceRuntime) -> dict[str, EventPublicKey]:
    return runtime.parts_as(AuditParts).event_keys


@dataclass(frozen=True, slots=True)
class Incoming:
    """An event as it arrived: the decoded CloudEvent, its NATS subject and its raw bytes.
    `subject`/`payload` are None only where they are not known (tests of the pure parts)."""

    event: CloudEvent
    subject: str | None = None
    payload: bytes | None = None


@dataclass(frozen=True, slots=True)
class Genuine:
    """An event whose signature proves `emitter` sent it; `envelope` is reused for the chain."""

    event: CloudEvent
    emitter: str
    envelope: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Refused:
    incoming: Incoming
    reason: str


def screen(
    incoming: list[Incoming],
    keys: dict[str, EventPublicKey],
    *,
    envelopes: list[dict[str, Any] | None] | None = None,
) -> tuple[list[Genuine], list[Refused]]:
    """Split a batch into events that prove their emitter and events that do not;
    `envelopes`: each event's envelope object, where the caller built it already."""
    genuine: list[Genuine] = []
    refused: list[Refused] = []
    for index, item in enumerate(incoming):
        built = envelopes[index] if envelopes is not None else None
        try:
            envelope = built if built is not None else envelope_object(item.event)
            emitter = emitter_of(envelope, keys, subject=item.subject)
        except SignatureProblem as exc:
            refused.append(Refused(item, str(exc)))
            continue
        except (TypeError, ValueError, OverflowError) as exc:
            refused.append(Refused(item, f"unreadable envelope ({type(exc).__name__})"))
            continue
        genuine.append(Genuine(item.event, emitter, envelope))
    return genuine, refused


def _text(value: Any, limit: int) -> str | None:
    """An attacker's string, made storable anywhere: text, no NUL, bounded."""
    if value is None:
        return None
    return str(value).replace("\x00", "\ufffd")[:limit]


def _digest(item: Incoming) -> str:
    payload = item.payload if item.payload is not None else repr(item.event).encode()
    return hashlib.sha256(payload).hexdigest()


def _finding_values(refusal: Refused) -> dict[str, Any]:
    item, event = refusal.incoming, refusal.incoming.event
    payload = item.payload or b""
    return {
        "id": str(uuid4()),
        "recorded_at": utcnow(),
        "reason": _text(refusal.reason, 300),
        "event_id": _text(event.get_id(), 200),
        "event_type": _text(event.get_type(), 200),
        "source": _text(event.get_source(), 200),
        "nats_subject": _text(item.subject, 300),
        "signature_kid": _text(event.get_extension(SIGNATURE_KID), 64),
        # One finding per distinct message on a subject: a redelivery is not a second attack.
        "digest": hashlib.sha256(f"{item.subject}\n{_digest(item)}".encode()).hexdigest(),
        "payload_sha256": _digest(item),
        "payload": _text(payload.decode("utf-8", errors="replace"), PAYLOAD_KEPT),
    }


async def record_findings(session: AsyncSession, uow: UnitOfWork, refused: list[Refused]) -> int:
    """Store each refused event as a finding and chain an `audit.finding.recorded` event about
    it (signed by audit, through its outbox): in the caller's transaction. Returns how many new."""
    rows = [_finding_values(refusal) for refusal in refused]
    known = set(
        (
            await session.scalars(
                select(AuditFinding.digest).where(
                    AuditFinding.digest.in_([r["digest"] for r in rows])
                )
            )
        ).all()
    )
    context = EventContext(
        actor_id=None,
        actor_org_id=None,
        subject_org_id=None,
        subject_user_id=None,
        acting_session_id=None,
        policy_revision=uow.runtime.authorizer.revision,
    )
    new = 0
    for row in rows:
        if row["digest"] in known:
            continue
        known.add(row["digest"])
        session.add(AuditFinding(**row))
        finding = FindingRecorded(
            finding_id=row["id"],
            reason=row["reason"],
            event_id=row["event_id"],
            claimed_type=row["event_type"],
            source=row["source"],
            nats_subject=row["nats_subject"],
            signature_kid=row["signature_kid"],
            payload_sha256=row["payload_sha256"],
        )
        uow.publish(finding, context)
        new += 1
    FINDINGS.inc(new)
    return new


def _read(finding: AuditFinding) -> FindingRead:
    return FindingRead.model_validate(finding, from_attributes=True)


async def list_findings(
    *,
    runtime: ServiceRuntime,
    principal: Principal,
    since: datetime | None,
    limit: int,
    cursor: str | None,
) -> FindingPage:
    """Findings, newest first: events refused because they did not prove their emitter."""
    runtime.authorizer.authorize(principal, "read", AuditLog())
    statement = select(AuditFinding)
    if since:
        statement = statement.where(AuditFinding.recorded_at >= since)
    if cursor:
        statement = statement.where(AuditFinding.seq < decode_sequence_cursor(cursor))
    statement = statement.order_by(AuditFinding.seq.desc()).limit(limit + 1)
    async with runtime.reading() as session:
        found = (await session.scalars(statement)).all()
    page = found[:limit]
    next_cursor = str(page[-1].seq) if len(found) > limit and page else None
    return FindingPage(items=[_read(f) for f in page], next_cursor=next_cursor)
