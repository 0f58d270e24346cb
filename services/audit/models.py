"""Audit's tables: the hash-chained log of every event, refused events (findings), the outbox."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Integer, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from libs.common.clock import utcnow
from libs.common.db import UtcDateTime
from libs.common.outbox import OutboxMixin


class Base(DeclarativeBase):
    pass


class AuditRecord(Base):
    """One event as received. `envelope` is the canonical JSON the hash covers; the other
    columns are copies of it, for querying, and are checked against it by verify."""

    __tablename__ = "audit_records"

    seq: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    id: Mapped[str] = mapped_column(String(36), unique=True)
    type: Mapped[str] = mapped_column(String(200), index=True)
    time: Mapped[datetime] = mapped_column(UtcDateTime, index=True)
    source: Mapped[str] = mapped_column(String(200))
    actor_id: Mapped[str | None] = mapped_column(String(36), index=True, nullable=True)
    actor_org_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    subject_org_id: Mapped[str | None] = mapped_column(String(36), index=True, nullable=True)
    subject_user_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    acting_session_id: Mapped[str | None] = mapped_column(String(36), index=True, nullable=True)
    policy_revision: Mapped[str | None] = mapped_column(String(32), nullable=True)
    envelope: Mapped[str] = mapped_column(Text)
    # Unique: in a chain each hash is followed once; a second record after the same head
    # (a fork, e.g. two writers) is refused by the database itself.
    prev_hash: Mapped[str] = mapped_column(String(64), unique=True)
    hash: Mapped[str] = mapped_column(String(64))
    # The service whose signature audit checked on receipt (source, type and subject agree).
    emitter: Mapped[str | None] = mapped_column(String(64), nullable=True)
    recorded_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)


class OutboxMessage(OutboxMixin, Base):
    """Audit's own events: findings, on-demand checkpoints."""


class AuditFinding(Base):
    """An event refused because it did not prove who emitted it (bad or missing signature,
    a source or subject not the signer's). Kept for reviewers, outside the chain; the chain
    holds an `audit.finding.recorded` event about each one."""

    __tablename__ = "audit_findings"

    seq: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    id: Mapped[str] = mapped_column(String(36), unique=True)
    recorded_at: Mapped[datetime] = mapped_column(UtcDateTime, index=True)
    reason: Mapped[str] = mapped_column(String(300))
    # What the message claimed (attacker-controlled, truncated): for the reviewer's search.
    event_id: Mapped[str | None] = mapped_column(String(200), nullable=True)
    event_type: Mapped[str | None] = mapped_column(String(200), nullable=True)
    source: Mapped[str | None] = mapped_column(String(200), nullable=True)
    nats_subject: Mapped[str | None] = mapped_column(String(300), nullable=True)
    signature_kid: Mapped[str | None] = mapped_column(String(64), nullable=True)
    # sha256 of subject and bytes: one finding per distinct message, however often delivered.
    digest: Mapped[str] = mapped_column(String(64), unique=True)
    payload_sha256: Mapped[str] = mapped_column(String(64))
    # The message as received (UTF-8, NUL replaced, the first 16 KiB).
    payload: Mapped[str] = mapped_column(Text)
