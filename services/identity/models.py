"""Identity's tables: organisations, users, caretakers, acting sessions, signing keys, outbox."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Boolean, ForeignKey, Index, Integer, String, Text, text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from libs.common.clock import utcnow
from libs.common.db import UtcDateTime
from libs.common.inbox import InboxMixin
from libs.common.mail import MailOutboxMixin
from libs.common.outbox import OutboxMixin


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


# ---------------------------------------------------------------- customer organisations' people
# (invitations.py, employees.py, acting_notices.py; docs/customer-organisations.md)


class Invitation(Base):
    """An invitation of a contact to become a user of a customer organisation. Only the hash
    of its single-use token is stored; `status` is pending, accepted, expired or revoked (a
    pending one past `expires_at` is expired, and is marked so when someone meets it)."""

    __tablename__ = "invitations"
    __table_args__ = (
        # One open invitation per address, whatever the race: a partial unique index.
        Index(
            "uq_invitations_pending_email",
            "email",
            unique=True,
            sqlite_where=text("status = 'pending'"),
            postgresql_where=text("status = 'pending'"),
        ),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    org_id: Mapped[str] = mapped_column(ForeignKey("organizations.id"), index=True)
    # Lower-cased, like users' e-mails.
    email: Mapped[str] = mapped_column(String(320))
    name: Mapped[str] = mapped_column(String(200))
    roles: Mapped[list[str]] = mapped_column(JSON, default=list)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    invited_by_id: Mapped[str] = mapped_column(String(36))
    invited_by_name: Mapped[str] = mapped_column(String(200))
    invited_by_email: Mapped[str] = mapped_column(String(320))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    sent_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime)
    sends: Mapped[int] = mapped_column(Integer, default=1)
    closed_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    user_id: Mapped[str | None] = mapped_column(String(36), nullable=True)


class MailTemplate(Base):
    """A mail's text as an admin changed it (`$placeholders`); absent: the built-in text."""

    __tablename__ = "mail_templates"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    subject: Mapped[str] = mapped_column(String(300))
    body: Mapped[str] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    updated_by_id: Mapped[str] = mapped_column(String(36))


class OrgPreferences(Base):
    """A customer organisation's choices: how its admins hear of acting sessions."""

    __tablename__ = "org_preferences"

    org_id: Mapped[str] = mapped_column(ForeignKey("organizations.id"), primary_key=True)
    # every_session | daily_digest | none
    acting_notices: Mapped[str] = mapped_column(String(16), default="every_session")
    # The choice before the last change (at `updated_at`): a session started before it is
    # told as the organisation had chosen then, however late the notifier reads it.
    previous_notices: Mapped[str | None] = mapped_column(String(16), nullable=True)
    # The last digest covered sessions started before this moment.
    digest_until: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)


class NoticeInbox(InboxMixin, Base):
    """Acting-session events the notifier has handled (each sends its mails once)."""

    __tablename__ = "notice_inbox"  # type: ignore[misc]


class MailOutbox(MailOutboxMixin, Base):
    pass


class UserPreferences(Base):
    """A user's own choices: the default customer a staff member acts for after login
    (preferences.py), and whether they want a personal login link (login_links.py)."""

    __tablename__ = "user_preferences"

    user_id: Mapped[str] = mapped_column(
        ForeignKey("users.id", name="fk_user_preferences_user_id"), primary_key=True
    )
    default_customer_org_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    # company_selection | default_customer
    after_login: Mapped[str] = mapped_column(String(32), default="company_selection")
    acting_mode: Mapped[str] = mapped_column(String(8), default="full")
    login_link_opt_in: Mapped[bool] = mapped_column(Boolean, default=False)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)


class LoginLink(Base):
    """A user's personal login link: one per user (regenerating replaces the secret); only
    the secret's SHA-256 is stored."""

    __tablename__ = "login_links"
    __table_args__ = (Index("ix_login_links_secret_hash", "secret_hash", unique=True),)

    user_id: Mapped[str] = mapped_column(
        ForeignKey("users.id", name="fk_login_links_user_id"), primary_key=True
    )
    secret_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
