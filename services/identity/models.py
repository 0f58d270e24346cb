"""Identity's tables: organisations, users, caretakers, acting sessions, signing keys, outbox."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Boolean, ForeignKey, Integer, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from libs.common.db import UtcDateTime
from libs.common.outbox import OutboxMixin, utcnow


class Base(DeclarativeBase):
    pass


class Organization(Base):
    __tablename__ = "organizations"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    name: Mapped[str] = mapped_column(String(200), index=True)
    contract_number: Mapped[str] = mapped_column(String(64), unique=True)
    country: Mapped[str] = mapped_column(String(2))
    status: Mapped[str] = mapped_column(String(16), default="active")
    allow_assistance: Mapped[bool] = mapped_column(Boolean, default=True)
    is_seller: Mapped[bool] = mapped_column(Boolean, default=False)
    # Raised on every change of status: customer tokens issued before it are refused.
    generation: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)


class User(Base):
    __tablename__ = "users"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    # Stored lower-cased: emails are unique case-insensitively.
    email: Mapped[str] = mapped_column(String(320), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    password_hash: Mapped[str] = mapped_column(Text)
    kind: Mapped[str] = mapped_column(String(16))
    org_id: Mapped[str] = mapped_column(ForeignKey("organizations.id"), index=True)
    roles: Mapped[list[str]] = mapped_column(JSON, default=list)
    permissions: Mapped[list[str]] = mapped_column(JSON, default=list)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    # Raised on every change of roles, permissions, active flag or password: tokens issued
    # before it are refused everywhere.
    generation: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)


class Caretaker(Base):
    """A staff member who looks after a customer organisation."""

    __tablename__ = "caretakers"

    org_id: Mapped[str] = mapped_column(ForeignKey("organizations.id"), primary_key=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id"), primary_key=True, index=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)


class ActingSessionRecord(Base):
    """One acting-as session: who acted for whom, how, and how it ended."""

    __tablename__ = "acting_sessions"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    actor_id: Mapped[str] = mapped_column(ForeignKey("users.id"), index=True)
    actor_name: Mapped[str] = mapped_column(String(200))
    actor_org_id: Mapped[str] = mapped_column(String(36))
    subject_org_id: Mapped[str] = mapped_column(ForeignKey("organizations.id"), index=True)
    subject_name: Mapped[str] = mapped_column(String(200))
    mode: Mapped[str] = mapped_column(String(8))
    # The staff member's login session: a logout ends every acting session started from it.
    login_session_id: Mapped[str | None] = mapped_column(String(36), nullable=True, index=True)
    actor_roles: Mapped[list[str]] = mapped_column(JSON, default=list)
    policy_revision: Mapped[str] = mapped_column(String(32))
    started_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime)
    last_seen_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    ended_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True, index=True)
    # stopped | switched | idle_timeout | expired | revoked
    end_reason: Mapped[str | None] = mapped_column(String(32), nullable=True)
    # For a revocation: the policy's reason the session is no longer allowed.
    end_detail: Mapped[str | None] = mapped_column(Text, nullable=True)


class SigningKey(Base):
    __tablename__ = "signing_keys"

    kid: Mapped[str] = mapped_column(String(64), primary_key=True)
    private_pem: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)


class LoginFailure(Base):
    """One failed (or still running) password check: throttling counts these per account and
    per client address over a window, in the database so that every replica sees them."""

    __tablename__ = "login_failures"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    # The e-mail as typed, lower-cased: unknown accounts are throttled like known ones.
    account: Mapped[str] = mapped_column(String(320), index=True)
    address: Mapped[str] = mapped_column(String(64), index=True)
    at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow, index=True)


class OutboxMessage(OutboxMixin, Base):
    pass
