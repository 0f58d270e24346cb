"""Outgoing mail with the events' guarantee: a mail is a row written in the transaction of the
change that calls for it (a mail outbox), and a relay sends pending rows over SMTP (aiosmtplib),
retrying with back-off, so that a mail server away loses nothing and a rolled-back change
sends nothing.

Delivery is at least once: a crash between the server's acceptance and our commit sends the
mail again, with the same Message-ID (`<row id@onbehalf>`), which a mail store can de-duplicate
(the development sink does).
"""

from __future__ import annotations

import asyncio
import contextlib
import string
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.message import EmailMessage
from email.utils import format_datetime
from typing import Any, ClassVar
from urllib.parse import unquote, urlsplit
from uuid import uuid4

import aiosmtplib
import structlog
from prometheus_client import Counter
from sqlalchemy import Integer, String, Text, bindparam, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import Mapped, mapped_column

from libs.common import snapshots
from libs.common.clock import utcnow
from libs.common.db import UtcDateTime, bound_engine

log = structlog.get_logger("mail")

MAILS_SENT = Counter("onbehalf_mail_sent_total", "Mails accepted by the SMTP server")
MAIL_FAILURES = Counter("onbehalf_mail_failures_total", "Failed attempts to send a mail")

DEFAULT_SENDER = "onbehalf <no-reply@onbehalf.invalid>"


class MailOutboxMixin:
    """Columns of a service's `mail_outbox` table; the service maps it on its own Base."""

    __tablename__: ClassVar[str] = "mail_outbox"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    to_address: Mapped[str] = mapped_column(String(320))
    subject: Mapped[str] = mapped_column(String(300))
    body: Mapped[str] = mapped_column(Text)
    # What the mail is about (invitation, acting_notice, ...): for logs and `onbehalf mail`.
    kind: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True, index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)


def stage_mail(
    session: AsyncSession, model: type[Any], *, to: str, subject: str, body: str, kind: str
) -> str:
    """Stage a mail in the caller's transaction; it is sent only if that commits."""
    now = utcnow()
    mail_id = str(uuid4())
    session.add(
        model(
            id=mail_id,
            to_address=to,
            subject=subject[:300],
            body=body,
            kind=kind,
            created_at=now,
            next_attempt_at=now,
            attempts=0,
        )
    )
    return mail_id


def render(template: str, values: dict[str, str]) -> str:
    """`$name` placeholders (string.Template); an unknown one is left as written, so an
    admin's typo shows in the mail instead of failing the change that sends it."""
    return string.Template(template).safe_substitute(values)


@dataclass(frozen=True)
class SmtpTarget:
    hostname: str
    port: int
    use_tls: bool
    start_tls: bool
    username: str | None
    password: str | None


def parse_smtp_url(url: str) -> SmtpTarget:
    """`smtp://[user:password@]host[:port]` (STARTTLS when the server offers it),
    `smtp+starttls://...` (STARTTLS required) or `smtps://...` (TLS from the start)."""
    parts = urlsplit(url)
    if parts.scheme not in ("smtp", "smtps", "smtp+starttls") or not parts.hostname:
        raise ValueError(f"not an SMTP URL (smtp://, smtps://, smtp+starttls://): {url!r}")
    default_port = 465 if parts.scheme == "smtps" else 587 if parts.scheme.endswith("tls") else 25
    return SmtpTarget(
        hostname=parts.hostname,
        port=parts.port or default_port,
        use_tls=parts.scheme == "smtps",
        start_tls=parts.scheme == "smtp+starttls",
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password else None,
    )


def build_message(row: Any, *, sender: str) -> EmailMessage:
    message = EmailMessage()
    message["From"] = sender
    message["To"] = row.to_address
    message["Subject"] = row.subject
    message["Date"] = format_datetime(row.created_at)
    message["Message-ID"] = f"<{row.id}@onbehalf>"
    message["X-Onbehalf-Kind"] = row.kind
    message.set_content(row.body)
    return message


class MailRelay:
    """Sends pending mail rows, oldest first; a failure is retried with doubling delays."""

    def __init__(
        self,
        *,
        sessionmaker: async_sessionmaker[AsyncSession],
        model: type[Any],
        smtp_url: str | None,
        read_sessionmaker: async_sessionmaker[AsyncSession] | None = None,
        sender: str = DEFAULT_SENDER,
        row_locks: bool,
        poll_seconds: float = 1.0,
        max_backoff_seconds: float = 300.0,
        timeout: float = 10.0,
    ) -> None:
        self._sessionmaker = sessionmaker
        self._read_sessionmaker = read_sessionmaker or sessionmaker
        self._read_engine = bound_engine(self._read_sessionmaker)
        self._model = model
        self._target = parse_smtp_url(smtp_url) if smtp_url else None
        self._sender = sender
        self._row_locks = row_locks
        self._poll = poll_seconds
        self._max_backoff = max_backoff_seconds
        self._timeout = timeout
        self._wakeup = asyncio.Event()
        # Is any mail due? Asked every poll, almost always answered no: one statement on the
        # bare driver (through a session the question cost ≈ 1.5 ms of CPU a poll).
        self._any_due = snapshots.SnapshotRead(
            select(model.id)
            .where(model.sent_at.is_(None), model.next_attempt_at <= bindparam("now"))
            .limit(1)
        )

    def notify(self) -> None:
        """After a commit that staged mail: send it now rather than at the next poll."""
        self._wakeup.set()

    async def run(self) -> None:
        if self._target is None:
            log.warning("mail_not_configured", hint="set SMTP_URL; mail stays in the outbox")
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wakeup.wait(), timeout=self._poll)
            self._wakeup.clear()
            if self._target is None:
                continue
            try:
                while await self.send_pending() == 20:
                    pass
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the next poll tries again
                log.exception("mail_relay_error", error=repr(exc))

    async def send_pending(self, batch: int = 20) -> int:
        """One round; returns how many rows it looked at."""
        assert self._target is not None
        model = self._model
        now = utcnow()
        query = (
            select(model)
            .where(model.sent_at.is_(None), model.next_attempt_at <= now)
            .order_by(model.created_at, model.id)
            .limit(batch)
        )
        if self._read_engine is not None and not await self._any_due.rows(
            self._read_engine, {"now": now}
        ):
            return 0
        if self._row_locks:
            # PostgreSQL, several replicas: each sends a disjoint batch.
            query = query.with_for_update(skip_locked=True)
            async with self._sessionmaker() as session, session.begin():
                rows = (await session.scalars(query)).all()
                for row in rows:
                    await self._send(row)
            return len(rows)
        # SQLite: never hold the write lock while talking to the mail server, and read beside
        # the writers (on the writers' engine every transaction begins IMMEDIATE: a poll every
        # second took the write lock, and waited out another process's write with the loop
        # blocked in SQLite's busy wait).
        async with self._read_sessionmaker() as reading, reading.begin():
            rows = (await reading.scalars(query)).all()
            # Detached while the server is talked to, and written back through a session of
            # the writers' engine (recording an outcome on an attached row would autobegin a
            # transaction on the read session; past 20 such rows, newer mail never went out).
            reading.expunge_all()
        if not rows:
            return 0
        for row in rows:
            await self._send(row)
        async with self._sessionmaker() as session, session.begin():
            for row in rows:
                await session.merge(row)
        return len(rows)

    async def _send(self, row: Any) -> None:
        target = self._target
        assert target is not None
        try:
            await aiosmtplib.send(
                build_message(row, sender=self._sender),
                hostname=target.hostname,
                port=target.port,
                use_tls=target.use_tls,
                start_tls=True if target.start_tls else None,
                username=target.username,
                password=target.password,
                timeout=self._timeout,
            )
        except Exception as exc:
            row.attempts += 1
            delay = min(self._max_backoff, 2.0 ** min(row.attempts, 20))
            row.next_attempt_at = utcnow() + timedelta(seconds=delay)
            row.last_error = repr(exc)[:2000]
            MAIL_FAILURES.inc()
            log.warning("mail_send_failed", mail_id=row.id, attempts=row.attempts, error=repr(exc))
            return
        row.sent_at = utcnow()
        row.attempts += 1
        MAILS_SENT.inc()
        log.info("mail_sent", mail_id=row.id, kind=row.kind)
