"""Audit's response bodies."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel


class ActorRead(BaseModel):
    id: str | None
    org_id: str | None


class SubjectRead(BaseModel):
    org_id: str | None
    user_id: str | None


class AuditEventRead(BaseModel):
    id: str
    seq: int
    type: str
    time: datetime
    source: str
    # The service whose signature proved it emitted this event.
    emitter: str | None = None
    actor: ActorRead
    subject: SubjectRead
    acting_session_id: str | None
    data: Any
    policy_revision: str | None
    hash: str
    prev_hash: str


class AuditPage(BaseModel):
    items: list[AuditEventRead]
    next_cursor: str | None


class VerifyRead(BaseModel):
    """`head` is the hash of the last good record; `first_broken` the seq of the first bad one,
    `broken_id` its event id. `anchor_seq` is where a requested anchor hash was found."""

    ok: bool
    count: int
    head: str
    first_broken: int | None = None
    broken_id: str | None = None
    problem: str | None = None
    anchor_seq: int | None = None
    # Every record's signature and emitter were checked; the signed checkpoint (the latest in
    # the AUDIT_CHECKPOINTS stream) the chain was held against, by its seq.
    signatures_checked: bool = False
    checkpoint_seq: int | None = None


class FindingRead(BaseModel):
    """An event refused because it did not prove its emitter; what it claimed, and why."""

    id: str
    seq: int
    recorded_at: datetime
    reason: str
    event_id: str | None
    event_type: str | None
    source: str | None
    nats_subject: str | None
    signature_kid: str | None
    payload_sha256: str
    payload: str


class FindingPage(BaseModel):
    items: list[FindingRead]
    next_cursor: str | None


class CheckpointRead(BaseModel):
    """A signed checkpoint: `document` is exactly what was published (verify it with audit's
    event key: docs/audit.md)."""

    seq: int
    head: str
    time: str
    document: dict[str, Any]
