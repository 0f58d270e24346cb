"""The mail relay on a real SQLite database and a real SMTP server (the development sink's
handler): each pending mail is delivered once and marked sent, also beyond one batch of 20."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path
from typing import Any

from aiosmtpd.smtp import SMTP, Envelope, Session
from sqlalchemy import func, select
from sqlalchemy.orm import DeclarativeBase

from libs.common.db import create_engine, create_sessionmaker
from libs.common.mail import MailOutboxMixin, MailRelay, stage_mail
from onbehalf.mail_sink import FolderHandler, stored_messages


class _Base(DeclarativeBase):
    pass


class _Mail(MailOutboxMixin, _Base):
    pass


class _Counting(FolderHandler):
    """The sink, counting deliveries (it stores a re-sent message once, so files alone would
    not show a mail sent twice)."""

    def __init__(self, folder: Path) -> None:
        super().__init__(folder)
        self.deliveries = 0

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        self.deliveries += 1
        return await super().handle_DATA(server, session, envelope)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def test_every_mail_is_sent_once_and_marked(tmp_path: Path) -> None:
    handler = _Counting(tmp_path / "mail")
    port = _free_port()
    server = await asyncio.get_running_loop().create_server(
        lambda: SMTP(handler, hostname="test-sink"), host="127.0.0.1", port=port
    )
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'mail.db'}")
    try:
        async with engine.begin() as connection:
            await connection.run_sync(_Base.metadata.create_all)
        sessions = create_sessionmaker(engine)
        async with sessions() as session, session.begin():
            for index in range(25):
                stage_mail(
                    session, _Mail, to=f"a{index}@example.test", subject="s", body="b", kind="k"
                )
        relay = MailRelay(
            sessionmaker=sessions, model=_Mail, smtp_url=f"smtp://127.0.0.1:{port}", row_locks=False
        )
        rounds: list[Any] = [await relay.send_pending() for _ in range(3)]
        assert rounds == [20, 5, 0]
        async with sessions() as session:
            unsent = await session.scalar(
                select(func.count()).select_from(_Mail).where(_Mail.sent_at.is_(None))
            )
        assert unsent == 0
        assert handler.deliveries == 25
        assert len(stored_messages(tmp_path / "mail")) == 25
    finally:
        server.close()
        await server.wait_closed()
        await engine.dispose()
