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
